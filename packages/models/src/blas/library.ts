/**
 * Loads OpenBLAS through koffi (both optional) and exposes the few entry points the BLAS kernels
 * use. Loading is lazy and never throws: a failure is kept as a reason string. The library is
 * loaded once per process (dlopen), so the record lives on one globalThis key shared by every copy
 * of this module and by every worker thread's view of it.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';

/** Row-major single-precision GEMM: C = alpha * op(A) op(B) + beta * C. */
export type Sgemm = (
  transA: boolean,
  transB: boolean,
  m: number,
  n: number,
  k: number,
  alpha: number,
  a: Float32Array,
  lda: number,
  b: Float32Array,
  ldb: number,
  beta: number,
  c: Float32Array,
  ldc: number,
) => void;

/** A loaded OpenBLAS. */
export interface BlasLibrary {
  /** Path or soname it was loaded from. */
  library: string;
  /** The core type OpenBLAS runs its kernels for (from openblas_get_config). */
  coreType: string;
  /** OPENBLAS_CORETYPE as set from /proc/cpuinfo, or undefined when the user set it or none fits. */
  coreTypeSetByUs?: string;
  config: string;
  sgemm: Sgemm;
  setThreads(n: number): void;
  getThreads(): number;
}

export type LoadResult = { ok: true; lib: BlasLibrary } | { ok: false; reason: string };

const KEY = Symbol.for('oiafed.models.openblas');
const CBLAS_ROW_MAJOR = 101;
const CBLAS_NO_TRANS = 111;
const CBLAS_TRANS = 112;

/** Where the library is looked for: OIAFED_OPENBLAS, else the soname of Debian's libopenblas0-pthread. */
export function libraryPath(): string {
  const p = process.env.OIAFED_OPENBLAS;
  return p !== undefined && p !== '' ? p : 'libopenblas.so.0';
}

/**
 * The OPENBLAS_CORETYPE this CPU should use. OpenBLAS 0.3.21's DYNAMIC_ARCH detection takes a
 * hypervisor's generic "Intel Xeon Processor" for Prescott and then runs 3-5x slower, so the
 * core is chosen from the instruction-set flags instead.
 */
export function coreTypeFromCpuinfo(cpuinfo: string): string | undefined {
  const line = /^flags\s*:(.*)$/m.exec(cpuinfo)?.[1] ?? '';
  const flags = new Set(line.trim().split(/\s+/));
  if (flags.has('avx512f')) return 'SkylakeX';
  if (flags.has('avx2') && flags.has('fma')) return 'Haswell';
  return undefined;
}

type Koffi = {
  load(path: string): { func(decl: string): (...args: unknown[]) => unknown };
};

/**
 * Sets OPENBLAS_CORETYPE in the C environment (libc setenv: in a worker thread process.env is a
 * copy that OpenBLAS's getenv never sees) unless the user set it.
 */
function chooseCoreType(koffi: Koffi): string | undefined {
  if (process.env.OPENBLAS_CORETYPE !== undefined && process.env.OPENBLAS_CORETYPE !== '') return undefined;
  let cpuinfo = '';
  try {
    cpuinfo = readFileSync('/proc/cpuinfo', 'utf8');
  } catch {
    return undefined;
  }
  const core = coreTypeFromCpuinfo(cpuinfo);
  if (core === undefined) return undefined;
  process.env.OPENBLAS_CORETYPE = core;
  try {
    const setenv = koffi.load('libc.so.6').func('int setenv(const char *name, const char *value, int overwrite)');
    setenv('OPENBLAS_CORETYPE', core, 0);
  } catch {
    // No glibc: process.env (set above) reaches the C environment on the main thread.
  }
  return core;
}

/** Longest reduction handed to one OpenBLAS call (see reductionChunked). */
export const MAX_REDUCTION = 256;

/**
 * Splits the reduction dimension into equal chunks of at most MAX_REDUCTION, accumulated with
 * beta = 1 in a fixed order. OpenBLAS 0.3.21 blocks a long reduction differently with one thread
 * and with several (measured: sgemm 288x64 with K = 500..10000 differs in about 20% of the
 * outputs between 1 and 2 threads), which would make results depend on the thread count; a
 * reduction no longer than its block size is summed the same way by both paths.
 */
function reductionChunked(sgemm: Sgemm): Sgemm {
  return (ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc) => {
    if (k <= MAX_REDUCTION) return sgemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    const chunks = Math.ceil(k / MAX_REDUCTION);
    const step = Math.ceil(k / chunks);
    for (let k0 = 0; k0 < k; k0 += step) {
      const kc = Math.min(step, k - k0);
      const ac = a.subarray(ta ? k0 * lda : k0);
      const bc = b.subarray(tb ? k0 : k0 * ldb);
      sgemm(ta, tb, m, n, kc, alpha, ac, lda, bc, ldb, k0 === 0 ? beta : 1, c, ldc);
    }
  };
}

function bind(koffi: Koffi, path: string): BlasLibrary {
  const coreTypeSetByUs = chooseCoreType(koffi);
  const lib = koffi.load(path);
  const raw = lib.func(
    'void cblas_sgemm(int order, int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc)',
  );
  const setThreads = lib.func('void openblas_set_num_threads(int n)');
  const getThreads = lib.func('int openblas_get_num_threads()');
  const config = String(lib.func('const char *openblas_get_config()')());
  const known = ['SkylakeX', 'Haswell', 'Cooperlake', 'SapphireRapids', 'Zen', 'Sandybridge', 'Prescott', 'Nehalem', 'Core2', 'Atom'];
  const coreType = known.find((c) => config.includes(` ${c}`)) ?? config.split(' ').pop() ?? 'unknown';
  return {
    library: path,
    coreType,
    coreTypeSetByUs,
    config,
    sgemm: reductionChunked((ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc) =>
      raw(CBLAS_ROW_MAJOR, ta ? CBLAS_TRANS : CBLAS_NO_TRANS, tb ? CBLAS_TRANS : CBLAS_NO_TRANS, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc),
    ),
    setThreads: (n) => void setThreads(n),
    getThreads: () => Number(getThreads()),
  };
}

function load(): LoadResult {
  let koffi: Koffi;
  try {
    koffi = createRequire(import.meta.url)('koffi') as Koffi;
  } catch (err) {
    return { ok: false, reason: `koffi (optional dependency of @oiafed/models) is not installed (${firstLine(err)})` };
  }
  const path = libraryPath();
  try {
    return { ok: true, lib: bind(koffi, path) };
  } catch (err) {
    return { ok: false, reason: `OpenBLAS could not be loaded from '${path}' (${firstLine(err)})` };
  }
}

function firstLine(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).split('\n')[0]!;
}

/** The process's OpenBLAS, loaded on first call; the answer (library or reason) is then fixed. */
export function loadBlas(): LoadResult {
  const g = globalThis as Record<symbol, LoadResult | undefined>;
  g[KEY] ??= load();
  return g[KEY];
}
