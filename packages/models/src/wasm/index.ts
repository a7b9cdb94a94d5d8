/**
 * Patched tfjs-backend-wasm kernels that let tfjs-layers models train on the wasm backend in
 * Node, correctly and fast. @tensorflow/tfjs-backend-wasm is a dependency of this package pinned
 * at exactly 4.22.0 (the default compute path, so it must be installed with it): the kernels read
 * backend internals.
 */
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import type { KernelConfig } from '@tensorflow/tfjs-core';
import { setThreadsCount, setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import { convGradKernels } from './conv-grad-kernels.js';
import { inputGradKernels } from './input-grad-kernels.js';
import { matMulKernels } from './matmul-kernels.js';
import { poolTileKernels } from './pool-tile-kernels.js';
import { reduceKernels } from './reduce-kernels.js';

/** The names of the kernels registerPatchedWasmKernels installs for backend 'wasm'. */
export const PATCHED_WASM_KERNELS: readonly string[] = [
  'Conv2DBackpropFilter',
  'Conv2DBackpropInput',
  'MaxPoolGrad',
  'Tile',
  'BatchMatMul',
  '_FusedMatMul',
  'Sum',
  'Mean',
  'Identity',
  'Conv2D',
  'FusedConv2D',
];

interface PatchState {
  stock: Map<string, KernelConfig>;
  installed: boolean;
}

// One record per process, shared by every copy of this module, so that a second copy neither
// double-wraps the stock kernels nor loses them.
const STATE_KEY = Symbol.for('oiafed.models.patchedWasmKernels');

function state(): PatchState {
  const g = globalThis as Record<symbol, PatchState | undefined>;
  let s = g[STATE_KEY];
  if (s == null) {
    s = { stock: new Map(), installed: false };
    g[STATE_KEY] = s;
  }
  return s;
}

/**
 * Registers the corrected wasm kernels (tf.registerKernel for backend 'wasm', replacing the
 * stock kernel where one exists). Idempotent; may run before or after the wasm backend is
 * initialized.
 */
export function registerPatchedWasmKernels(): void {
  const s = state();
  if (s.installed) return;
  for (const name of PATCHED_WASM_KERNELS) {
    const cfg = tf.getKernel(name, 'wasm');
    if (cfg != null) s.stock.set(name, cfg);
  }
  const stock = (name: string): KernelConfig | undefined => s.stock.get(name);
  const configs = [...convGradKernels(stock), ...poolTileKernels(), ...matMulKernels(stock), ...reduceKernels(stock), ...inputGradKernels(stock)];
  for (const cfg of configs) {
    const old = s.stock.get(cfg.kernelName);
    if (old != null) tf.unregisterKernel(cfg.kernelName, 'wasm');
    // The stock setup (cwrap of the C entry point) must still run when the backend initializes,
    // because the patched kernels fall back to or wrap the stock function.
    tf.registerKernel(old?.setupFunc != null ? { ...cfg, setupFunc: old.setupFunc } : cfg);
  }
  s.installed = true;
}

export { skipInputGradient } from './input-grad-kernels.js';

/** Directory holding the .wasm binaries of the installed @tensorflow/tfjs-backend-wasm. */
export function wasmBinaryDir(): string {
  const require = createRequire(import.meta.url);
  return dirname(require.resolve('@tensorflow/tfjs-backend-wasm')) + '/';
}

/**
 * Prepares and selects the wasm backend for training in Node: points it at the packaged .wasm
 * files, registers the patched kernels, runs single-threaded (threaded wasm does not start in
 * Node as shipped), then `tf.setBackend('wasm')` and waits until it is ready.
 */
export async function initWasmBackend(): Promise<void> {
  // setWasmPaths throws once the backend has been initialized; the paths are in place then.
  const registry = (tf.engine() as unknown as { registry: Record<string, unknown> }).registry;
  if (registry['wasm'] == null) {
    setWasmPaths(wasmBinaryDir());
    setThreadsCount(1);
  }
  registerPatchedWasmKernels();
  const ok = await tf.setBackend('wasm');
  if (!ok) throw new Error('initWasmBackend: tf.setBackend("wasm") failed; is @tensorflow/tfjs-backend-wasm 4.22.0 installed?');
  await tf.ready();
}
