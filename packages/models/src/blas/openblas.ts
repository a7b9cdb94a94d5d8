/**
 * The OpenBLAS kernel path of the wasm backend: public switches and status. With OpenBLAS loaded
 * (koffi + libopenblas.so.0, both optional), convolutions and matrix products of backend 'wasm'
 * run their multiply-adds through cblas_sgemm directly on the wasm heap; without it the patched
 * XNNPACK kernels run as before.
 */
import { isMainThread } from 'node:worker_threads';
import { loadBlas } from './library.js';
import type { BlasLibrary } from './library.js';
import { installBlasKernels, uninstallBlasKernels } from './register.js';

/** Which kernel path the wasm backend's convolutions and matmuls take. */
export interface BlasStatus {
  /** Whether the OpenBLAS kernels are registered (and so run). */
  active: boolean;
  /** Path or soname OpenBLAS was loaded from (when loaded). */
  library?: string;
  /** Core type OpenBLAS runs (SkylakeX, Haswell, ...; when loaded). */
  coreType?: string;
  /** OpenBLAS threads (process-global); 0 when not active. */
  threads: number;
  /** Why the path is inactive, or how the core type was chosen. */
  reason?: string;
}

export type BlasMode = 'auto' | 'on' | 'off';

interface ModeState {
  active: boolean;
  reason?: string;
  /** The mode last asked for by a caller (undefined: none yet, so the default applies). */
  chosen?: BlasMode;
  /** Whether loading OpenBLAS has been attempted (it happens at most once per process). */
  tried: boolean;
}

const KEY = Symbol.for('oiafed.models.blasMode');

function modeState(): ModeState {
  const g = globalThis as Record<symbol, ModeState | undefined>;
  g[KEY] ??= { active: false, reason: 'enableBlasKernels has not run', tried: false };
  return g[KEY];
}

const MISSING_HINT =
  "install Debian's libopenblas0-pthread (apt-get install libopenblas0-pthread) or point OIAFED_OPENBLAS at a libopenblas.so, " +
  'and keep the optional dependency koffi of @oiafed/models installed';

/** The mode OIAFED_BLAS asks for, or undefined when unset. */
function envMode(): BlasMode | undefined {
  const raw = process.env.OIAFED_BLAS;
  if (raw === undefined || raw === '') return undefined;
  if (raw === 'auto' || raw === 'on' || raw === 'off') return raw;
  throw new Error(`OIAFED_BLAS: expected 'auto', 'on' or 'off' (or unset), got ${JSON.stringify(raw)}`);
}

/** Where the OpenBLAS kernel path stands now. */
export function blasStatus(): BlasStatus {
  const s = modeState();
  const loaded = loadedLibrary();
  const base: BlasStatus = { active: s.active, threads: s.active && loaded != null ? loaded.getThreads() : 0 };
  if (loaded != null) {
    base.library = loaded.library;
    base.coreType = loaded.coreType;
  }
  if (s.reason !== undefined) base.reason = s.reason;
  return base;
}

/** OpenBLAS if a caller has loaded it; never loads it. */
function loadedLibrary(): BlasLibrary | null {
  if (!modeState().tried) return null;
  const r = loadBlas();
  return r.ok ? r.lib : null;
}

/** Sets OpenBLAS's thread count (process-global: every worker thread shares it). No-op when not loaded. */
export function setBlasThreads(n: number): void {
  if (!Number.isInteger(n) || n < 1) throw new Error(`setBlasThreads: expected an integer >= 1, got ${n}`);
  loadedLibrary()?.setThreads(n);
}

/** A short name of the kernel path, for logs and BackendInfo: 'openblas (SkylakeX, 2 threads)' or 'xnnpack'. */
export function blasKernelsLabel(): string {
  const st = blasStatus();
  return st.active ? `openblas (${st.coreType ?? 'unknown core'}, ${st.threads} thread${st.threads === 1 ? '' : 's'})` : 'xnnpack';
}

/**
 * Switches the wasm backend's Conv2D, FusedConv2D, Conv2DBackpropInput, Conv2DBackpropFilter,
 * BatchMatMul and _FusedMatMul between OpenBLAS and the patched XNNPACK kernels.
 * - 'auto': OpenBLAS when it loads, else XNNPACK (the reason is in the status). OIAFED_BLAS
 *   (off|on|auto) overrides 'auto'.
 * - 'on': OpenBLAS or an Error naming what is missing.
 * - 'off': the patched XNNPACK kernels.
 * On first load OpenBLAS runs one thread (the rest of the backend is single-threaded, and worker
 * pools need one) unless OPENBLAS_NUM_THREADS is set; setBlasThreads changes it. In a worker
 * thread every call sets one thread (the count is process-global).
 */
export function enableBlasKernels(mode: BlasMode): BlasStatus {
  if (mode !== 'auto' && mode !== 'on' && mode !== 'off') {
    throw new Error(`enableBlasKernels: expected 'auto', 'on' or 'off', got ${JSON.stringify(mode)}`);
  }
  const effective = mode === 'auto' ? (envMode() ?? 'auto') : mode;
  const s = modeState();
  s.chosen = mode;
  if (effective === 'off') {
    uninstallBlasKernels();
    s.active = false;
    s.reason = mode === 'off' ? "blas 'off'" : 'OIAFED_BLAS=off';
    return blasStatus();
  }
  const firstTry = !s.tried;
  s.tried = true;
  const r = loadBlas();
  if (!r.ok) {
    uninstallBlasKernels();
    s.active = false;
    s.reason = r.reason;
    if (effective === 'on') throw new Error(`OpenBLAS kernels requested (blas 'on') but unavailable: ${r.reason}; ${MISSING_HINT}`);
    return blasStatus();
  }
  // A worker thread (data-parallel shard, learner pool) always runs one OpenBLAS thread: the
  // count is process-global and the workers already occupy the cores.
  if (!isMainThread || (firstTry && (process.env.OPENBLAS_NUM_THREADS ?? '') === '')) r.lib.setThreads(1);
  installBlasKernels(r.lib.sgemm);
  s.active = true;
  s.reason =
    r.lib.coreTypeSetByUs !== undefined
      ? `OPENBLAS_CORETYPE=${r.lib.coreTypeSetByUs} chosen from /proc/cpuinfo flags`
      : `core ${r.lib.coreType} (${process.env.OPENBLAS_CORETYPE ? 'OPENBLAS_CORETYPE set by the user' : 'detected by OpenBLAS'})`;
  return blasStatus();
}

/**
 * enableBlasKernels('auto') unless a caller already chose a mode: what backend start-up runs, so
 * that a learner's `blas: off` stays off when the backend is initialized again.
 */
export function applyDefaultBlasMode(): BlasStatus {
  return modeState().chosen === undefined ? enableBlasKernels('auto') : blasStatus();
}
