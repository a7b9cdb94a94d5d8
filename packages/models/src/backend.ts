import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { blasKernelsLabel, enableBlasKernels, type BlasMode } from './blas/openblas.js';
import { registerPatchedWasmKernels } from './wasm/index.js';
import { noopLogger, type Logger } from './types.js';

/** A learner's `device` setting. */
export type DeviceRequest = 'auto' | 'cpu' | 'cuda' | `cuda:${number}`;

/** What `selectBackend` chose. */
export interface BackendInfo {
  /** tfjs backend name: 'tensorflow' | 'wasm' | 'cpu'. */
  backend: string;
  /** 'cpu' or 'cuda:N'. */
  device: string;
  /** Package that provides the backend. */
  package: string;
  /** Whether OiaFed's corrected wasm training kernels are registered. */
  patchedKernels: boolean;
  /**
   * Which kernels run the convolutions and matmuls: on wasm 'openblas (SkylakeX, 1 thread)' or
   * 'xnnpack'; 'tensorflow' on tfjs-node; 'js' on the pure-JS cpu backend. A snapshot taken at
   * selection (setBlasThreads may change the thread count later).
   */
  kernels: string;
  /** Why this backend runs (also logged). */
  detail: string;
}

/** Options of `selectBackend`. */
export interface SelectBackendOptions {
  logger?: Logger;
  /** Allow the last-resort pure-JS 'cpu' backend (very slow for CNNs). Default true. */
  allowPureJs?: boolean;
  /** The wasm backend's OpenBLAS kernel path (`learner.args.blas`): see enableBlasKernels. Default 'auto'. */
  blas?: BlasMode;
}

/** A requested compute backend cannot run here; the message says what to install. */
export class BackendUnavailableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'BackendUnavailableError';
  }
}

const TFJS_VERSION = '4.22.0';
const NODE_PKG = '@tensorflow/tfjs-node';
const GPU_PKG = '@tensorflow/tfjs-node-gpu';
const WASM_PKG = '@tensorflow/tfjs-backend-wasm';
const CPU_PKG = '@tensorflow/tfjs-backend-cpu';
const GPU_REQUIREMENTS = 'an NVIDIA GPU with CUDA 11.2 and cuDNN 8.1 libraries on the host';

interface BackendState {
  cache: Map<string, BackendInfo>;
  wasmPrepared: boolean;
  /** Value of CUDA_VISIBLE_DEVICES when tfjs-node-gpu was loaded (it cannot change later). */
  gpuVisibleDevices?: string;
}

const STATE_KEY = Symbol.for('@oiafed/models/backend-state');

function state(): BackendState {
  const g = globalThis as { [STATE_KEY]?: BackendState };
  g[STATE_KEY] ??= { cache: new Map(), wasmPrepared: false };
  return g[STATE_KEY];
}

interface ParsedDevice {
  kind: 'auto' | 'cpu' | 'cuda';
  index?: number;
}

function parseDevice(device: unknown): ParsedDevice {
  if (device === 'auto' || device === 'cpu' || device === 'cuda') return { kind: device };
  if (typeof device === 'string') {
    const m = /^cuda:(\d+)$/.exec(device);
    if (m) return { kind: 'cuda', index: Number(m[1]) };
  }
  throw new Error(`device: expected 'auto', 'cpu', 'cuda' or 'cuda:N' (N = GPU index), got ${JSON.stringify(device)}`);
}

function forcedBackend(): 'cpu' | 'wasm' | undefined {
  const raw = process.env.OIAFED_BACKEND;
  if (raw === undefined || raw === '') return undefined;
  if (raw === 'cpu' || raw === 'wasm') return raw;
  throw new Error(`OIAFED_BACKEND: expected 'cpu' or 'wasm' (or unset), got ${JSON.stringify(raw)}`);
}

function describe(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as { code?: string }).code;
    if (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND' || /Cannot find (module|package)|Failed to load url|Could not resolve/i.test(err.message)) {
      return 'not installed';
    }
    return err.message.split('\n')[0];
  }
  return String(err);
}

/** Loads a package by a name TypeScript must not resolve at compile time (optional peers). */
async function importOptional(name: string): Promise<unknown> {
  return import(name);
}

/** Loads tfjs-node or tfjs-node-gpu and activates the 'tensorflow' backend. */
async function activateTensorflow(pkg: string): Promise<{ ok: true; gpu: boolean } | { ok: false; reason: string; cause?: unknown }> {
  try {
    await importOptional(pkg);
  } catch (err) {
    return { ok: false, reason: describe(err), cause: err };
  }
  try {
    if (!(await tf.setBackend('tensorflow'))) return { ok: false, reason: `${pkg} loaded but its 'tensorflow' backend failed to initialize` };
    await tf.ready();
  } catch (err) {
    return { ok: false, reason: describe(err), cause: err };
  }
  const gpu = (tf.backend() as { isUsingGpuDevice?: boolean }).isUsingGpuDevice === true;
  return { ok: true, gpu };
}

/** Maps 'cuda:N' onto CUDA_VISIBLE_DEVICES, respecting a list the environment already set. */
function pinGpu(index: number | undefined): string | undefined {
  if (index === undefined) return process.env.CUDA_VISIBLE_DEVICES;
  const current = process.env.CUDA_VISIBLE_DEVICES;
  const listed = current?.split(',').map((s) => s.trim()).filter((s) => s !== '');
  const chosen = listed !== undefined && listed.length > 0 ? listed[index] : String(index);
  if (chosen === undefined) {
    throw new BackendUnavailableError(`device 'cuda:${index}': CUDA_VISIBLE_DEVICES=${current} lists only ${listed?.length} GPU(s)`);
  }
  const s = state();
  if (s.gpuVisibleDevices !== undefined && s.gpuVisibleDevices !== chosen) {
    throw new BackendUnavailableError(
      `device 'cuda:${index}': ${GPU_PKG} is already loaded with CUDA_VISIBLE_DEVICES=${s.gpuVisibleDevices}; one process uses one GPU selection`,
    );
  }
  process.env.CUDA_VISIBLE_DEVICES = chosen;
  return chosen;
}

function gpuInstallHint(): string {
  return `install it next to @oiafed/models with \`npm install ${GPU_PKG}@${TFJS_VERSION}\` (needs ${GPU_REQUIREMENTS}; its install downloads libtensorflow), or set device: cpu`;
}

async function selectGpu(req: ParsedDevice, strict: boolean): Promise<BackendInfo | { reason: string }> {
  const requested = req.index === undefined ? 'cuda' : `cuda:${req.index}`;
  const visible = pinGpu(req.index);
  const res = await activateTensorflow(GPU_PKG);
  if (!res.ok) {
    if (strict) {
      throw new BackendUnavailableError(`device '${requested}' needs ${GPU_PKG}@${TFJS_VERSION}, which could not be loaded (${res.reason}): ${gpuInstallHint()}`, {
        cause: res.cause,
      });
    }
    return { reason: `${GPU_PKG}: ${res.reason}` };
  }
  state().gpuVisibleDevices = visible ?? '';
  if (!res.gpu) {
    if (strict) {
      throw new BackendUnavailableError(
        `device '${requested}': ${GPU_PKG} loaded but TensorFlow sees no usable GPU (CUDA_VISIBLE_DEVICES=${visible ?? 'unset'}). ` +
          `It needs ${GPU_REQUIREMENTS} (check nvidia-smi and LD_LIBRARY_PATH), or set device: cpu`,
      );
    }
    return {
      backend: 'tensorflow',
      device: 'cpu',
      package: GPU_PKG,
      patchedKernels: false,
      kernels: 'tensorflow',
      detail: `device '${req.kind}': ${GPU_PKG} loaded but sees no GPU, running TensorFlow on the CPU`,
    };
  }
  return {
    backend: 'tensorflow',
    device: 'cuda:0',
    package: GPU_PKG,
    patchedKernels: false,
    kernels: 'tensorflow',
    detail: `device '${requested}': TensorFlow on GPU (CUDA_VISIBLE_DEVICES=${visible ?? 'unset'})`,
  };
}

async function activateWasm(): Promise<void> {
  const wasm = (await import('@tensorflow/tfjs-backend-wasm')) as typeof import('@tensorflow/tfjs-backend-wasm');
  const s = state();
  if (!s.wasmPrepared) {
    const dir = dirname(createRequire(import.meta.url).resolve(`${WASM_PKG}/package.json`)) + '/dist/';
    try {
      wasm.setWasmPaths(dir);
      // Threaded wasm does not start in Node as shipped; one thread is what runs anyway.
      wasm.setThreadsCount(1);
    } catch {
      // Already initialized (e.g. by another caller): its paths are in place.
    }
    s.wasmPrepared = true;
  }
  registerPatchedWasmKernels();
  if (!(await tf.setBackend('wasm'))) throw new Error("tf.setBackend('wasm') returned false");
  await tf.ready();
}

const WASM_INFO_BASE = { backend: 'wasm', device: 'cpu', package: WASM_PKG, patchedKernels: true } as const;

/** Switches the OpenBLAS kernel path; blas 'on' without OpenBLAS is a BackendUnavailableError. */
function applyBlas(blas: BlasMode): void {
  try {
    enableBlasKernels(blas);
  } catch (err) {
    throw new BackendUnavailableError(describe(err), { cause: err });
  }
}

/** The wasm BackendInfo (after applying `blas`), naming the kernel path that runs now. */
function wasmInfo(detail: string, blas: BlasMode): BackendInfo {
  applyBlas(blas);
  const kernels = blasKernelsLabel();
  return { ...WASM_INFO_BASE, kernels, detail: `${detail}; ${kernels} convolutions and matmuls` };
}

async function activatePureJs(): Promise<void> {
  if (!(await tf.setBackend('cpu'))) throw new Error("tf.setBackend('cpu') returned false");
  await tf.ready();
}

async function selectCpu(why: string[], allowPureJs: boolean, blas: BlasMode): Promise<BackendInfo> {
  const node = await activateTensorflow(NODE_PKG);
  if (node.ok) {
    return { backend: 'tensorflow', device: 'cpu', package: NODE_PKG, patchedKernels: false, kernels: 'tensorflow', detail: [...why, `${NODE_PKG} (native TensorFlow)`].join('; ') };
  }
  why.push(`${NODE_PKG}: ${node.reason}`);
  let wasmOk = false;
  try {
    await activateWasm();
    wasmOk = true;
  } catch (err) {
    why.push(`${WASM_PKG}: ${describe(err)}`);
  }
  // Outside the try: blas 'on' without OpenBLAS must fail, not fall back to pure JS.
  if (wasmOk) return wasmInfo([...why, 'using wasm with patched training kernels'].join('; '), blas);
  if (!allowPureJs) {
    throw new BackendUnavailableError(
      `no fast CPU backend available (${why.join('; ')}): install ${NODE_PKG}@${TFJS_VERSION} (native TensorFlow) or ${WASM_PKG}@${TFJS_VERSION}`,
    );
  }
  await activatePureJs();
  return {
    backend: 'cpu',
    device: 'cpu',
    package: CPU_PKG,
    patchedKernels: false,
    kernels: 'js',
    detail: [...why, 'falling back to the pure-JS cpu backend (very slow for CNNs)'].join('; '),
  };
}

/**
 * Picks and activates the tfjs backend for a `device` setting:
 * - `cuda` / `cuda:N`: tfjs-node-gpu on GPU N (via CUDA_VISIBLE_DEVICES), else BackendUnavailableError;
 * - `cpu`: tfjs-node, else wasm with patched kernels, else pure-JS cpu (unless `allowPureJs` is false);
 * - `auto`: GPU when tfjs-node-gpu loads and sees one, else as `cpu`.
 * `OIAFED_BACKEND=cpu|wasm` forces that backend whatever the device. Calling again with the same
 * request returns the same answer (and re-activates that backend).
 */
export async function selectBackend(device: DeviceRequest = 'auto', options: SelectBackendOptions = {}): Promise<BackendInfo> {
  const logger = options.logger ?? noopLogger;
  const allowPureJs = options.allowPureJs ?? true;
  const blas = options.blas ?? 'auto';
  const req = parseDevice(device);
  const forced = forcedBackend();
  const key = `${forced ?? ''}|${device}|${allowPureJs}|${blas}`;
  const cached = state().cache.get(key);
  if (cached !== undefined) {
    if (tf.getBackend() !== cached.backend) await tf.setBackend(cached.backend);
    await tf.ready();
    if (cached.backend !== 'wasm') return { ...cached };
    applyBlas(blas);
    return { ...cached, kernels: blasKernelsLabel() };
  }

  let info: BackendInfo;
  if (forced === 'cpu') {
    await activatePureJs();
    info = { backend: 'cpu', device: 'cpu', package: CPU_PKG, patchedKernels: false, kernels: 'js', detail: `OIAFED_BACKEND=cpu forces the pure-JS cpu backend (device '${device}' ignored)` };
  } else if (forced === 'wasm') {
    try {
      await activateWasm();
    } catch (err) {
      throw new BackendUnavailableError(`OIAFED_BACKEND=wasm but ${WASM_PKG}@${TFJS_VERSION} could not be started (${describe(err)})`, { cause: err });
    }
    info = wasmInfo(`OIAFED_BACKEND=wasm forces wasm with patched training kernels (device '${device}' ignored)`, blas);
  } else if (req.kind === 'cuda') {
    info = (await selectGpu(req, true)) as BackendInfo;
  } else if (req.kind === 'auto') {
    const gpu = await selectGpu(req, false);
    info = 'backend' in gpu ? gpu : await selectCpu([`device 'auto': no GPU (${gpu.reason})`], allowPureJs, blas);
  } else {
    info = await selectCpu([`device 'cpu'`], allowPureJs, blas);
  }
  const log = info.backend === 'cpu' && forced === undefined ? logger.warn.bind(logger) : logger.info.bind(logger);
  log(`compute backend: ${info.backend} on ${info.device} (${info.package}) - ${info.detail}`, { ...info });
  state().cache.set(key, info);
  return { ...info };
}
