/**
 * Batch normalization on the wasm backend.
 *
 * Forward: stock wasm FusedBatchNorm is a scalar loop with per-element index arithmetic (20 CPU-ms
 * on cifar10_cnn's [64,32,32,64], 6x the XNNPACK element-wise ops). For per-channel statistics
 * it runs here as (x - mean) * coef + offset, coef = scale / sqrt(variance + epsilon) computed
 * per channel, with the wasm Sub, Multiply and Add kernels (the cpu backend's order of operations).
 *
 * Gradient: one kernel. tfjs-core's gradient builds each
 * of dx, dMean, dVariance, dScale and dOffset from separate element-wise ops and sums over the
 * whole activation (about 13 passes over [B,H,W,C] per layer, most of cifar10_cnn's 100
 * Multiply calls per step). Here the per-channel sums sum(dy) and sum(dy * (x - mean)) take four
 * passes, and one Multiply by a per-channel vector gives dx:
 *   dOffset = sum(dy)                   dScale = invStd * sum(dy * (x - mean))
 *   dMean = -scale * invStd * sum(dy)   dVariance = -scale * invStd^3 / 2 * sum(dy * (x - mean))
 *   dx = dy * scale * invStd,           invStd = 1 / sqrt(variance + epsilon).
 * The gradient of FusedBatchNorm is re-registered with a wrapper that takes this path on 'wasm'
 * for channel-vector statistics (what tfjs-layers' batchNormalization passes) and calls
 * tfjs-core's gradient everywhere else. The Mean gradient (tf.moments' backward pass) is wrapped
 * likewise (meanGradConfig).
 */
import * as tf from '@tensorflow/tfjs-core';
import type { GradConfig, KernelConfig, KernelFunc, NamedAttrMap, Tensor, TensorInfo } from '@tensorflow/tfjs-core';
import { asWasm, f32Index, free, run } from './wasm-internals.js';
import type { KernelArgs, WasmBackendInternals } from './wasm-internals.js';

/** The kernel's name (registered for backend 'wasm' only). */
export const BATCH_NORM_GRAD_KERNEL = 'OiafedFusedBatchNormGrad';

/**
 * Per-channel sums of dy and of dy * (x - mean) over every leading axis, with the registered wasm
 * kernels (Sub and Multiply: XNNPACK; Sum: OpenBLAS or the pairwise fold). A JS loop over the
 * heap doing the same in one pass measured 3x slower (about 28 vs 10 CPU-ms on [64,32,32,64]).
 */
function channelSums(backend: WasmBackendInternals, x: TensorInfo, dy: TensorInfo, mean: TensorInfo): [TensorInfo, TensorInfo] {
  const axis = x.shape.slice(0, -1).map((_, i) => i);
  const s1 = run('Sum', backend, { x: dy }, { axis, keepDims: false });
  const xm = run('Sub', backend, { a: x, b: mean });
  const p = run('Multiply', backend, { a: dy, b: xm });
  free(backend, xm);
  const s2 = run('Sum', backend, { x: p }, { axis, keepDims: false });
  free(backend, p);
  return [s1, s2];
}

/** Inputs x, mean, variance, scale (optional), dy; outputs [dx, dMean, dVariance, dScale, dOffset]. */
function batchNormGrad(args: KernelArgs): TensorInfo[] {
  const backend = asWasm(args.backend);
  const { x, mean, variance, scale, dy } = args.inputs as Record<string, TensorInfo>;
  const eps = ((args.attrs ?? {}) as Record<string, unknown>)['varianceEpsilon'] as number;
  const C = mean!.shape[0]!;
  const [sumDy, sumDyXm] = channelSums(backend, x!, dy!, mean!);
  const outs = [0, 1, 2].map(() => backend.makeOutput([C], 'float32'));
  const coef = backend.makeOutput([C], 'float32');
  // Read the heap view only now: makeOutput may have grown the heap.
  const h = backend.wasm.HEAPF32;
  const vi = f32Index(backend, variance!);
  const si = scale == null ? -1 : f32Index(backend, scale);
  const [dMean, dVar, dScale] = outs.map((t) => f32Index(backend, t));
  const s1 = f32Index(backend, sumDy);
  const s2 = f32Index(backend, sumDyXm);
  const ci = f32Index(backend, coef);
  for (let c = 0; c < C; c++) {
    const inv = 1 / Math.sqrt(h[vi + c]! + eps);
    const g = si < 0 ? 1 : h[si + c]!;
    h[dScale! + c] = inv * h[s2 + c]!;
    h[dMean! + c] = -g * inv * h[s1 + c]!;
    h[dVar! + c] = -0.5 * g * inv * inv * inv * h[s2 + c]!;
    h[ci + c] = g * inv;
  }
  const dx = run('Multiply', backend, { a: dy, b: coef });
  free(backend, coef, sumDyXm);
  // dOffset is sum(dy) itself.
  return [dx, outs[0]!, outs[1]!, outs[2]!, sumDy];
}

/** Whether stock's statistics, scale and offset are one float32 value per last-axis channel of x. */
function perChannel(x: TensorInfo, ...vectors: (TensorInfo | undefined)[]): boolean {
  const C = x.shape[x.shape.length - 1];
  return x.dtype === 'float32' && x.shape.length >= 2 && vectors.every((t) => t == null || (t.shape.length === 1 && t.shape[0] === C && t.dtype === 'float32'));
}

function batchNormForward(stock: KernelFunc): KernelFunc {
  return ((args: KernelArgs) => {
    const { x, mean, variance, scale, offset } = args.inputs;
    if (!perChannel(x!, mean!, variance!, scale, offset)) return stock(args as never) as TensorInfo;
    const backend = asWasm(args.backend);
    const eps = ((args.attrs ?? {}) as Record<string, unknown>)['varianceEpsilon'] as number;
    const C = mean!.shape[0]!;
    const coef = backend.makeOutput([C], 'float32');
    const h = backend.wasm.HEAPF32;
    const [ci, vi] = [f32Index(backend, coef), f32Index(backend, variance!)];
    const si = scale == null ? -1 : f32Index(backend, scale);
    for (let c = 0; c < C; c++) h[ci + c] = (si < 0 ? 1 : h[si + c]!) / Math.sqrt(h[vi + c]! + eps);
    const centered = run('Sub', backend, { a: x, b: mean });
    const scaled = run('Multiply', backend, { a: centered, b: coef });
    free(backend, centered, coef);
    if (offset == null) return scaled;
    const out = run('Add', backend, { a: scaled, b: offset });
    free(backend, scaled);
    return out;
  }) as unknown as KernelFunc;
}

/** The forward kernel config, wrapping stock FusedBatchNorm. */
export function batchNormKernel(stock: (name: string) => KernelConfig | undefined): KernelConfig {
  const s = stock('FusedBatchNorm');
  if (s == null) throw new Error("patched wasm: stock wasm kernel 'FusedBatchNorm' is missing; expected tfjs-backend-wasm 4.22.0");
  return { kernelName: 'FusedBatchNorm', backendName: 'wasm', kernelFunc: batchNormForward(s.kernelFunc) };
}

/** The kernel config of the fused gradient for backend 'wasm'. */
export function batchNormGradKernel(): KernelConfig {
  return { kernelName: BATCH_NORM_GRAD_KERNEL, backendName: 'wasm', kernelFunc: batchNormGrad as unknown as KernelFunc };
}

/** Whether the fused kernel applies: wasm, float32, statistics (and scale) one value per last-axis channel. */
function fusedApplies(x: Tensor, mean: Tensor, variance: Tensor, scale: Tensor | undefined, dy: Tensor): boolean {
  if (tf.getBackend() !== 'wasm' || tf.getKernel(BATCH_NORM_GRAD_KERNEL, 'wasm') == null) return false;
  const C = x.shape[x.rank - 1];
  const vec = (t: Tensor | undefined): boolean => t == null || (t.rank === 1 && t.shape[0] === C && t.dtype === 'float32');
  return x.rank >= 2 && x.dtype === 'float32' && dy.dtype === 'float32' && mean.rank === 1 && vec(mean) && vec(variance) && (scale == null || vec(scale));
}

function fusedGradConfig(original: GradConfig): GradConfig {
  return {
    ...original,
    gradFunc: (dy: Tensor | Tensor[], saved: Tensor[], attrs: NamedAttrMap) => {
      const [x, mean, variance, scale] = saved;
      const d = dy as Tensor;
      if (!fusedApplies(x!, mean!, variance!, scale, d)) return original.gradFunc(dy, saved, attrs);
      const inputs = scale == null ? { x: x!, mean: mean!, variance: variance!, dy: d } : { x: x!, mean: mean!, variance: variance!, scale, dy: d };
      // One kernel call for all five gradients, made here (as tfjs-core's gradient makes its shared
      // intermediates) and not in a getter: each getter runs in its own tidy, which would dispose
      // the outputs the other getters hand out.
      const outs = tf.engine().runKernel(BATCH_NORM_GRAD_KERNEL, inputs as never, attrs) as unknown as Tensor[];
      return { x: () => outs[0]!, mean: () => outs[1]!, variance: () => outs[2]!, scale: () => outs[3]!, offset: () => outs[4]! };
    },
  };
}

/**
 * The Mean gradient on wasm: dy / n broadcast over the reduced axes by Tile (the patched kernel
 * copies whole runs). tfjs-core's builds ones(x.shape), multiplies dy into it and divides by n:
 * three passes over x's size, taken twice per batch-norm layer by tf.moments. The values are the
 * same bit for bit ((dy * 1) / n = dy / n).
 */
function meanGradConfig(original: GradConfig): GradConfig {
  return {
    ...original,
    gradFunc: (dy: Tensor | Tensor[], saved: Tensor[], attrs: NamedAttrMap) => {
      const x = saved[0]!;
      const d = dy as Tensor;
      if (tf.getBackend() !== 'wasm' || x.dtype !== 'float32' || d.dtype !== 'float32') return original.gradFunc(dy, saved, attrs);
      const axes = tf.util.parseAxisParam(attrs['axis'] as number | number[], x.shape);
      const expanded = x.shape.map((n, i) => (axes.includes(i) ? 1 : n));
      const reps = x.shape.map((n, i) => (axes.includes(i) ? n : 1));
      const n = axes.reduce((p, a) => p * x.shape[a]!, 1);
      return { x: () => tf.tile(tf.div(tf.reshape(d, expanded), n), reps) };
    },
  };
}

const KEYS = { FusedBatchNorm: Symbol.for('oiafed.models.fusedBatchNormGrad'), Mean: Symbol.for('oiafed.models.meanGrad') };

/** Wraps the registered gradient of `name` with `wrap`, once (a no-op while none is registered). */
function wrapGradient(name: keyof typeof KEYS, wrap: (original: GradConfig) => GradConfig): void {
  const current = tf.getGradient(name);
  const g = globalThis as Record<symbol, GradConfig | undefined>;
  if (current == null || current === g[KEYS[name]]) return;
  g[KEYS[name]] = wrap(current);
  tf.registerGradient(g[KEYS[name]]!);
}

/**
 * Wraps the registered FusedBatchNorm and Mean gradients (tfjs-core's, registered when its
 * gradients are loaded, as tfjs-layers does) with the wasm paths above. Idempotent.
 */
export function installBatchNormGradient(): void {
  wrapGradient('FusedBatchNorm', fusedGradConfig);
  wrapGradient('Mean', meanGradConfig);
}
