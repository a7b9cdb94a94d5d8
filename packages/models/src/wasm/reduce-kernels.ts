/**
 * Sum and Mean over leading axes (the batch-norm and bias-gradient reductions: [B,H,W,C] ->
 * [C]). Stock wasm transposes the whole tensor before reducing. Here the [outer, inner] matrix is
 * folded in half with wasm's vectorized Add until one row is left (pairwise summation, so the
 * float32 rounding error grows with log2(outer), not outer); small inputs take a float64 loop
 * straight off the heap. Other axis patterns go to the stock kernel.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { KernelConfig, KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';
import { asWasm, f32Index, free, run } from './wasm-internals.js';
import type { KernelArgs, WasmBackendInternals } from './wasm-internals.js';

/** Below this many elements the per-kernel cost of the folds outweighs their speed. */
const FOLD_MIN_SIZE = 1 << 15;

/**
 * A tensor aliasing `rows` rows of `inner` floats of `t` starting at row `row` (no copy). It must
 * be released with `releaseView`, never freed: the memory belongs to `t`.
 */
function view(backend: WasmBackendInternals, t: TensorInfo, row: number, rows: number, inner: number): TensorInfo {
  const offset = backend.dataIdMap.get(t.dataId)!.memoryOffset + row * inner * 4;
  return backend.makeOutput([rows, inner], 'float32', offset);
}

function releaseView(backend: WasmBackendInternals, v: TensorInfo): void {
  const data = backend.dataIdMap.get(v.dataId);
  if (data == null) return;
  (backend.wasm as unknown as { tfjs: { disposeData(id: number): void } }).tfjs.disposeData(data.id);
  (backend.dataIdMap as unknown as Map<unknown, unknown>).delete(v.dataId);
}

/** Sums the rows of x viewed as [outer, inner] into a fresh [1, inner] tensor by folding. */
function foldRows(backend: WasmBackendInternals, x: TensorInfo, outer: number, inner: number): TensorInfo {
  let cur = x;
  let rows = outer;
  while (rows > 1) {
    const half = rows >> 1;
    const a = view(backend, cur, 0, half, inner);
    const b = view(backend, cur, half, half, inner);
    const next = run('Add', backend, { a, b });
    releaseView(backend, a);
    releaseView(backend, b);
    if (rows & 1) {
      // The odd last row is added into row 0 of the folded result.
      const r0 = view(backend, next, 0, 1, inner);
      const last = view(backend, cur, rows - 1, 1, inner);
      const s = run('Add', backend, { a: r0, b: last });
      releaseView(backend, r0);
      releaseView(backend, last);
      const src = f32Index(backend, s);
      backend.wasm.HEAPF32.copyWithin(f32Index(backend, next), src, src + inner);
      free(backend, s);
    }
    if (cur !== x) free(backend, cur);
    cur = next;
    rows = half;
  }
  if (cur === x) {
    const out = backend.makeOutput([1, inner], 'float32');
    const src = f32Index(backend, x);
    backend.wasm.HEAPF32.copyWithin(f32Index(backend, out), src, src + inner);
    return out;
  }
  return cur;
}

function reduceLeading(kernel: 'Sum' | 'Mean', stock: KernelFunc): KernelFunc {
  return ((args: KernelArgs) => {
    const x = args.inputs['x']!;
    const attrs = (args.attrs ?? {}) as Record<string, unknown>;
    const axes = tf.util.parseAxisParam(attrs['axis'] as number | number[], x.shape).sort((a, b) => a - b);
    const leading = axes.every((a, i) => a === i);
    if (x.dtype !== 'float32' || axes.length === 0 || !leading) return stock(args as never) as TensorInfo;
    const backend = asWasm(args.backend);
    const outer = x.shape.slice(0, axes.length).reduce((p, d) => p * d, 1);
    const rest = x.shape.slice(axes.length);
    const inner = rest.reduce((p, d) => p * d, 1);
    const outShape = attrs['keepDims'] === true ? [...axes.map(() => 1), ...rest] : rest;
    if (outer * inner >= FOLD_MIN_SIZE && outer > 1 && inner > 0) {
      const out = foldRows(backend, x, outer, inner);
      if (kernel === 'Mean') {
        const heap = backend.wasm.HEAPF32;
        const dst = f32Index(backend, out);
        for (let j = 0; j < inner; j++) heap[dst + j] = heap[dst + j]! / outer;
      }
      out.shape = outShape;
      return out;
    }
    const out = backend.makeOutput(outShape, 'float32');
    const heap = backend.wasm.HEAPF32;
    const src = f32Index(backend, x);
    const acc = new Float64Array(inner);
    for (let o = 0; o < outer; o++) {
      const base = src + o * inner;
      for (let j = 0; j < inner; j++) acc[j] += heap[base + j]!;
    }
    const dst = f32Index(backend, out);
    const scale = kernel === 'Mean' ? 1 / outer : 1;
    for (let j = 0; j < inner; j++) heap[dst + j] = kernel === 'Mean' ? acc[j]! * scale : acc[j]!;
    return out;
  }) as unknown as KernelFunc;
}

/** Kernel configs wrapping stock Sum and Mean. */
export function reduceKernels(stock: (name: string) => KernelConfig | undefined): KernelConfig[] {
  return (['Sum', 'Mean'] as const).map((name) => {
    const s = stock(name);
    if (s == null) throw new Error(`patched wasm: stock wasm kernel '${name}' is missing; expected tfjs-backend-wasm 4.22.0`);
    return { kernelName: name, backendName: 'wasm', kernelFunc: reduceLeading(name, s.kernelFunc) };
  });
}
