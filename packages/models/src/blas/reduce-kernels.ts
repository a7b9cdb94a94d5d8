/**
 * Sum and Mean of backend 'wasm' over leading axes (the bias-gradient and batch-norm reductions:
 * NHWC [B,H,W,C] -> [C]) as one cblas_sgemm: [1, C] = ones[1, outer] @ x[outer, C], x read in
 * place on the heap. The reduction is split by the library wrapper into fixed chunks
 * (reductionChunked), so the sum order, and the result, do not depend on the OpenBLAS thread
 * count. Other axes, dtypes and small inputs go to the kernel registered before (the patched
 * pairwise fold / float64 loop of wasm/reduce-kernels.ts).
 */
import * as tf from '@tensorflow/tfjs-core';
import type { KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';
import { asWasm, f32Index } from '../wasm/wasm-internals.js';
import type { KernelArgs } from '../wasm/wasm-internals.js';
import type { Sgemm } from './library.js';

/** Below this many elements the previous kernel's plain loop is as fast as the call into OpenBLAS. */
export const blasReduceMinSize = { value: 1 << 12 };

let ones = new Float32Array(0);

/** A JS buffer (outside the heap, so heap growth never detaches it) of >= n ones. */
function onesOf(n: number): Float32Array {
  if (ones.length < n) ones = new Float32Array(Math.max(n, ones.length * 2)).fill(1);
  return ones;
}

function reduceLeading(sgemm: Sgemm, kernel: 'Sum' | 'Mean', previous: KernelFunc): KernelFunc {
  return ((args: KernelArgs) => {
    const x = args.inputs['x']!;
    const attrs = (args.attrs ?? {}) as Record<string, unknown>;
    const axes = tf.util.parseAxisParam(attrs['axis'] as number | number[], x.shape).sort((a, b) => a - b);
    const leading = axes.length > 0 && axes.every((a, i) => a === i);
    const size = tf.util.sizeFromShape(x.shape);
    if (x.dtype !== 'float32' || !leading || size < blasReduceMinSize.value) return previous(args as never) as TensorInfo;
    const outer = tf.util.sizeFromShape(x.shape.slice(0, axes.length));
    const rest = x.shape.slice(axes.length);
    const inner = tf.util.sizeFromShape(rest);
    const backend = asWasm(args.backend);
    const out = backend.makeOutput(attrs['keepDims'] === true ? [...axes.map(() => 1), ...rest] : rest, 'float32');
    const heap = backend.wasm.HEAPF32;
    const xi = f32Index(backend, x);
    const oi = f32Index(backend, out);
    const alpha = kernel === 'Mean' ? 1 / outer : 1;
    sgemm(false, false, 1, inner, outer, alpha, onesOf(outer), outer, heap.subarray(xi, xi + size), inner, 0, heap.subarray(oi, oi + inner), inner);
    return out;
  }) as unknown as KernelFunc;
}

/** The BLAS Sum and Mean, each falling back to `previous(name)`. */
export function blasReduceKernels(sgemm: Sgemm, previous: (name: string) => KernelFunc): Array<{ name: string; func: KernelFunc }> {
  return (['Sum', 'Mean'] as const).map((name) => ({ name, func: reduceLeading(sgemm, name, previous(name)) }));
}
