/**
 * Sum and Mean over leading axes (the batch-norm and bias-gradient reductions: [B,H,W,C] ->
 * [C]). Stock wasm transposes the whole tensor before reducing; here rows are accumulated
 * straight off the heap in float64. Other axis patterns go to the stock kernel.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { KernelConfig, KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';
import { asWasm, f32Index } from './wasm-internals.js';
import type { KernelArgs } from './wasm-internals.js';

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
