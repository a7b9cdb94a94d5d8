/**
 * Two kernels that remove wasted work from a training step:
 *
 * - Identity: stock wasm copies the data; tfjs clones every tensor a gradient saves through
 *   Identity, so a step copied each saved activation once more. Here the clone shares the data
 *   (reference-counted, as the cpu backend and wasm's own Reshape do).
 * - The input gradient of a fused convolution whose input is training data: tfjs-core's fused
 *   conv2d gradient computes dx for every input although nothing consumes the gradient of a
 *   data tensor (the tape prunes it afterwards). A caller that knows its batch tensor needs no
 *   gradient marks it with `skipInputGradient`; the Conv2D/FusedConv2D wrappers then note which
 *   filter was applied to it, and Conv2DBackpropInput returns zeros (never read) for that
 *   filter and input shape instead of running a full convolution. If the same filter is also
 *   applied to an unmarked input of the same shape in the same scope, nothing is skipped.
 */
import type { DataId, KernelConfig, KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';
import { asWasm, f32Index } from './wasm-internals.js';
import type { KernelArgs } from './wasm-internals.js';

interface SkipState {
  /** Data ids of tensors whose gradient nobody needs, with a count of active marks. */
  marked: Map<DataId, number>;
  /** Filter data id -> input shape key to skip, or null once the filter met an unmarked input. */
  filters: Map<DataId, string | null>;
}

const SKIP_KEY = Symbol.for('oiafed.models.skipInputGradient');

function skipState(): SkipState {
  const g = globalThis as Record<symbol, SkipState | undefined>;
  let s = g[SKIP_KEY];
  if (s == null) {
    s = { marked: new Map(), filters: new Map() };
    g[SKIP_KEY] = s;
  }
  return s;
}

/**
 * Declares that no gradient with respect to `x` (a training batch) will be read until the
 * returned function is called, which lets the patched wasm backend skip the first layer's input
 * gradient. Harmless on other backends. Never mark a tensor whose gradient is requested
 * (tf.grads with respect to the input, adversarial training).
 */
export function skipInputGradient(x: TensorInfo): () => void {
  const s = skipState();
  s.marked.set(x.dataId, (s.marked.get(x.dataId) ?? 0) + 1);
  let released = false;
  return () => {
    if (released) return;
    released = true;
    const n = (s.marked.get(x.dataId) ?? 1) - 1;
    if (n > 0) {
      s.marked.set(x.dataId, n);
    } else {
      s.marked.delete(x.dataId);
    }
    if (s.marked.size === 0) s.filters.clear();
  };
}

const shapeKey = (shape: readonly number[]): string => shape.join(',');

/** Records which filter met which (marked or not) input; a no-op while nothing is marked. */
export function noteForward(args: KernelArgs): void {
  const s = skipState();
  if (s.marked.size === 0) return;
  const x = args.inputs['x'];
  const filter = args.inputs['filter'];
  if (x == null || filter == null) return;
  const key = shapeKey(x.shape);
  const prev = s.filters.get(filter.dataId);
  if (s.marked.has(x.dataId)) {
    if (prev === undefined) s.filters.set(filter.dataId, key);
    else if (prev !== key) s.filters.set(filter.dataId, null);
  } else if (prev === undefined || prev === key) {
    s.filters.set(filter.dataId, null);
  }
}

/** Whether Conv2DBackpropInput for this filter and input shape feeds only a marked input. */
export function inputGradientUnneeded(filter: TensorInfo, inputShape: readonly number[]): boolean {
  const s = skipState();
  if (s.marked.size === 0) return false;
  const key = s.filters.get(filter.dataId);
  return key != null && key === shapeKey(inputShape);
}

/** A zero-filled float32 tensor: stands in for a gradient nobody reads. */
export function zeros(backend: unknown, shape: number[]): TensorInfo {
  const b = asWasm(backend);
  const out = b.makeOutput(shape, 'float32');
  const start = f32Index(b, out);
  b.wasm.HEAPF32.fill(0, start, start + shape.reduce((p, d) => p * d, 1));
  return out;
}

function identity(stock: KernelFunc): KernelFunc {
  return ((args: KernelArgs) => {
    const x = args.inputs['x']!;
    if (x.dtype === 'string') return stock(args as never) as TensorInfo;
    (args.backend as { incRef(dataId: DataId): void }).incRef(x.dataId);
    return { dataId: x.dataId, shape: x.shape.slice(), dtype: x.dtype };
  }) as unknown as KernelFunc;
}

function forwardConv(stock: KernelFunc): KernelFunc {
  return ((args: KernelArgs) => {
    noteForward(args);
    return stock(args as never) as TensorInfo;
  }) as unknown as KernelFunc;
}

/** Kernel configs wrapping stock Identity, Conv2D and FusedConv2D. */
export function inputGradKernels(stock: (name: string) => KernelConfig | undefined): KernelConfig[] {
  const need = (name: string): KernelFunc => {
    const s = stock(name);
    if (s == null) throw new Error(`patched wasm: stock wasm kernel '${name}' is missing; expected tfjs-backend-wasm 4.22.0`);
    return s.kernelFunc;
  };
  return [
    { kernelName: 'Identity', backendName: 'wasm', kernelFunc: identity(need('Identity')) },
    { kernelName: 'Conv2D', backendName: 'wasm', kernelFunc: forwardConv(need('Conv2D')) },
    { kernelName: 'FusedConv2D', backendName: 'wasm', kernelFunc: forwardConv(need('FusedConv2D')) },
  ];
}
