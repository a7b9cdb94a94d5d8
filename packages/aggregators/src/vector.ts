/**
 * Allocation-free vector kernels. Every loop runs over typed arrays with the output passed in,
 * so aggregation costs O(model) memory however many updates stream through.
 */

/** `acc[i] += w * x[i]` over the whole vector (float64 accumulation keeps sums of many float32s exact enough). */
export function axpyInto(acc: Float64Array, x: Float32Array, w: number): void {
  axpyRange(acc, x, w, 0, acc.length);
}

/** `acc[i] += w * x[i]` for i in [from, to), unrolled by 4 (V8 keeps the four chains in registers). */
function axpyRange(acc: Float64Array, x: Float32Array, w: number, from: number, to: number): void {
  let i = from;
  const m = to - ((to - from) & 3);
  for (; i < m; i += 4) {
    acc[i] += w * x[i];
    acc[i + 1] += w * x[i + 1];
    acc[i + 2] += w * x[i + 2];
    acc[i + 3] += w * x[i + 3];
  }
  for (; i < to; i++) acc[i] += w * x[i];
}

/**
 * A float64 running sum of float32 vectors: `sum[i] += w * x[i]`, bit-identical to
 * {@link axpyInto}. Large buffers live in their own WebAssembly memory and are updated by a
 * SIMD kernel (f64x2, two lanes, promote + mul + add: the same IEEE operations as the JS loop,
 * so the result does not change); each update is first copied into a small staging area there
 * in cache-sized chunks, since wasm cannot read a JS ArrayBuffer in place.
 */
export interface SumBuffer {
  /** The running sum (a view that stays valid: the wasm memory never grows). */
  readonly sum: Float64Array;
  /** `sum[i] += w * x[i]` for all i; `x.length` must equal `sum.length`. */
  axpy(x: Float32Array, w: number): void;
}

/** Below this many elements the JS loop wins (no staging, no instance). */
const WASM_MIN_LENGTH = 4096;
/** Staging chunk in float32 elements (64 KB: stays in L2 between the copy and the kernel). */
const CHUNK = 16384;

/**
 * The kernel, hand-assembled (no wat tooling needed): `axpy(acc: i32, x: i32, end: i32, w: f64)`
 * processes four float32s of x (at byte address x up to end, a multiple of 16 bytes) per step:
 * acc[0..1] += w * promote(x[0..1]); acc[2..3] += w * promote(x[2..3]).
 */
const AXPY_WASM = new Uint8Array([
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
  // type section: (i32 i32 i32 f64) -> ()
  0x01, 0x08, 0x01, 0x60, 0x04, 0x7f, 0x7f, 0x7f, 0x7c, 0x00,
  // import section: env.mem, memory, min 1 page
  0x02, 0x0c, 0x01, 0x03, 0x65, 0x6e, 0x76, 0x03, 0x6d, 0x65, 0x6d, 0x02, 0x00, 0x01,
  // function section: one function of type 0
  0x03, 0x02, 0x01, 0x00,
  // export section: "axpy" = func 0
  0x07, 0x08, 0x01, 0x04, 0x61, 0x78, 0x70, 0x79, 0x00, 0x00,
  // code section
  0x0a, 0x64, 0x01, 0x62,
  0x01, 0x01, 0x7b, // one v128 local ($ws)
  0x20, 0x03, 0xfd, 0x14, 0x21, 0x04, // ws = f64x2.splat(w)
  0x02, 0x40, // block
  0x20, 0x01, 0x20, 0x02, 0x4f, 0x0d, 0x00, // if x >= end: break
  0x03, 0x40, // loop
  0x20, 0x00, 0x20, 0x00, 0xfd, 0x00, 0x04, 0x00, // acc, v128.load acc+0
  0x20, 0x01, 0xfd, 0x0a, 0x03, 0x00, 0xfd, 0x5f, // v128.load64_splat x+0, f64x2.promote_low_f32x4
  0x20, 0x04, 0xfd, 0xf2, 0x01, 0xfd, 0xf0, 0x01, // * ws, +
  0xfd, 0x0b, 0x04, 0x00, // v128.store acc+0
  0x20, 0x00, 0x20, 0x00, 0xfd, 0x00, 0x04, 0x10, // acc, v128.load acc+16
  0x20, 0x01, 0xfd, 0x0a, 0x03, 0x08, 0xfd, 0x5f, // v128.load64_splat x+8, promote
  0x20, 0x04, 0xfd, 0xf2, 0x01, 0xfd, 0xf0, 0x01, // * ws, +
  0xfd, 0x0b, 0x04, 0x10, // v128.store acc+16
  0x20, 0x00, 0x41, 0x20, 0x6a, 0x21, 0x00, // acc += 32
  0x20, 0x01, 0x41, 0x10, 0x6a, 0x22, 0x01, // x += 16
  0x20, 0x02, 0x49, 0x0d, 0x00, // continue while x < end
  0x0b, 0x0b, 0x0b,
]);

/** The slice of the WebAssembly JS API used here (this package compiles without DOM or Node types). */
interface WasmApi {
  Module: new (bytes: Uint8Array) => object;
  Memory: new (descriptor: { initial: number; maximum: number }) => { buffer: ArrayBuffer };
  Instance: new (module: object, imports: object) => { exports: Record<string, unknown> };
}

const wasmApi = (globalThis as { WebAssembly?: WasmApi }).WebAssembly;
let axpyModule: object | null | undefined;

function wasmModule(): object | null {
  if (axpyModule !== undefined) return axpyModule;
  if (!wasmApi) return (axpyModule = null);
  try {
    axpyModule = new wasmApi.Module(AXPY_WASM);
  } catch {
    axpyModule = null; // no wasm SIMD in this runtime: the JS loop does the work
  }
  return axpyModule;
}

/** A {@link SumBuffer} of `length` zeros; wasm SIMD when available and large enough, else JS. */
export function createSumBuffer(length: number): SumBuffer {
  const mod = length >= WASM_MIN_LENGTH ? wasmModule() : null;
  if (mod && wasmApi) {
    const accBytes = length * 8;
    const pages = Math.ceil((accBytes + CHUNK * 4) / 65536);
    if (pages <= 65536) {
      let memory: { buffer: ArrayBuffer } | undefined;
      try {
        memory = new wasmApi.Memory({ initial: pages, maximum: pages });
      } catch {
        memory = undefined; // address space refused: fall back to a JS array
      }
      if (memory) {
        const instance = new wasmApi.Instance(mod, { env: { mem: memory } });
        const kernel = instance.exports.axpy as (acc: number, x: number, end: number, w: number) => void;
        const sum = new Float64Array(memory.buffer, 0, length);
        const stage = new Float32Array(memory.buffer, accBytes, CHUNK);
        return {
          sum,
          axpy(x: Float32Array, w: number): void {
            checkLength(x, length);
            for (let off = 0; off < length; off += CHUNK) {
              const len = Math.min(CHUNK, length - off);
              stage.set(len === CHUNK ? x.subarray(off, off + CHUNK) : x.subarray(off, off + len));
              const body = len & ~3;
              kernel(off * 8, accBytes, accBytes + body * 4, w);
              for (let i = body; i < len; i++) sum[off + i] += w * stage[i];
            }
          },
        };
      }
    }
  }
  const sum = new Float64Array(length);
  return {
    sum,
    axpy(x: Float32Array, w: number): void {
      checkLength(x, length);
      axpyRange(sum, x, w, 0, length);
    },
  };
}

function checkLength(x: Float32Array, length: number): void {
  if (x.length !== length) throw new Error(`SumBuffer.axpy: vector has length ${x.length}, expected ${length}`);
}

/** `acc[i] += w * (x[i] - base[i])`: accumulates a weighted difference without a temporary. */
export function axpyDiffInto(acc: Float64Array, x: Float32Array, base: Float32Array, w: number): void {
  const n = acc.length;
  for (let i = 0; i < n; i++) acc[i] += w * (x[i] - base[i]);
}

/** `out[i] = acc[i] * scale`, narrowing to float32. */
export function scaleInto(out: Float32Array, acc: Float64Array, scale: number): Float32Array {
  const n = out.length;
  for (let i = 0; i < n; i++) out[i] = acc[i] * scale;
  return out;
}

/**
 * Weighted mean of equal-length vectors into a preallocated `out`
 * (`weights` default to 1; they are normalised by their sum).
 */
export function weightedMean(
  vectors: readonly Float32Array[],
  out: Float32Array,
  weights?: readonly number[],
  scratch: Float64Array = new Float64Array(out.length),
): Float32Array {
  if (vectors.length === 0) throw new Error('weightedMean: needs at least one vector');
  if (weights && weights.length !== vectors.length) {
    throw new Error(`weightedMean: got ${weights.length} weights for ${vectors.length} vectors`);
  }
  if (scratch.length !== out.length) throw new Error('weightedMean: scratch length must equal out length');
  scratch.fill(0);
  let total = 0;
  for (let j = 0; j < vectors.length; j++) {
    const v = vectors[j];
    if (v.length !== out.length) {
      throw new Error(`weightedMean: vector ${j} has length ${v.length}, expected ${out.length}`);
    }
    const w = weights ? weights[j] : 1;
    total += w;
    axpyInto(scratch, v, w);
  }
  if (!(total > 0)) throw new Error(`weightedMean: weights must sum to a positive number, got ${total}`);
  return scaleInto(out, scratch, 1 / total);
}

/** Squared Euclidean distance accumulated in float64; NaN anywhere gives +Infinity so it ranks last. */
export function squaredDistance(a: Float32Array, b: Float32Array): number {
  let s = 0;
  const n = a.length;
  for (let i = 0; i < n; i++) {
    const d = a[i] - b[i];
    s += d * d;
  }
  return s === s ? s : Infinity;
}

/** Whether every element is finite. */
export function allFinite(x: Float32Array): boolean {
  for (let i = 0; i < x.length; i++) {
    if (!Number.isFinite(x[i])) return false;
  }
  return true;
}

/** Max |a[i] - b[i]|, handy in tests and metrics. */
export function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) throw new Error(`maxAbsDiff: lengths differ (${a.length} vs ${b.length})`);
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (d > m || d !== d) m = d !== d ? Infinity : d;
  }
  return m;
}

/** Partially sorts `a[lo..hi]` so that `a[k]` holds the value of rank k (Hoare quickselect, median-of-three). */
export function selectKth(a: Float64Array, lo: number, hi: number, k: number): number {
  while (hi > lo) {
    if (hi - lo < 16) {
      for (let i = lo + 1; i <= hi; i++) {
        const v = a[i];
        let j = i - 1;
        while (j >= lo && a[j] > v) {
          a[j + 1] = a[j];
          j--;
        }
        a[j + 1] = v;
      }
      return a[k];
    }
    const mid = (lo + hi) >>> 1;
    if (a[mid] < a[lo]) swap(a, mid, lo);
    if (a[hi] < a[lo]) swap(a, hi, lo);
    if (a[hi] < a[mid]) swap(a, hi, mid);
    const pivot = a[mid];
    let i = lo;
    let j = hi;
    while (i <= j) {
      while (a[i] < pivot) i++;
      while (a[j] > pivot) j--;
      if (i <= j) {
        swap(a, i, j);
        i++;
        j--;
      }
    }
    if (k <= j) hi = j;
    else if (k >= i) lo = i;
    else return a[k];
  }
  return a[k];
}

function swap(a: Float64Array, i: number, j: number): void {
  const t = a[i];
  a[i] = a[j];
  a[j] = t;
}
