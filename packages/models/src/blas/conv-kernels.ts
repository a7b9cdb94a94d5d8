/**
 * Conv2D, FusedConv2D, Conv2DBackpropInput and Conv2DBackpropFilter of backend 'wasm' (NHWC) on
 * cblas_sgemm: im2col in blocks of whole images, then one GEMM per block against the filter read
 * in place on the wasm heap ([kh,kw,Ci,Co] is already the [K, Co] matrix). Any stride and padding;
 * dilation, NCHW, non-float32 data and unsupported fused activations fall back to the kernel
 * registered before (the patched XNNPACK one).
 *
 * Why im2col and not the implicit "shifted GEMM" (stride 1: pad x once, one GEMM per filter
 * offset over the whole padded batch with K = Ci): measured forward, OpenBLAS 1 thread, CPU ms,
 * batch 64 (bench/train-throughput/blas-kernels.ts), shifted vs im2col: fmnist_cnn 32->64 14x14
 * 6.4 vs 8.1, simple_cnn 32->64 6.5 vs 6.6, 64->64 5x5 1.5 vs 0.8, cifar10_cnn 64->128 50.6 vs
 * 35.9, 128->256 35.6 vs 24.4, 256->512 55.0 vs 23.2: a GEMM with K = 9 Ci runs faster than nine
 * with K = Ci, and the padded grid wastes rows on small images.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';
import { inputGradientUnneeded, noteForward, zeros } from '../wasm/input-grad-kernels.js';
import { asWasm, f32Index, nhwcConv2DInfo } from '../wasm/wasm-internals.js';
import type { ConvPad, KernelArgs, WasmBackendInternals } from '../wasm/wasm-internals.js';
import { addBiasActivate, fusedEpilogue } from './epilogue.js';
import { col2imAdd, im2col, imagesPerBlock, scratch } from './im2col.js';
import type { ConvInfo } from './im2col.js';
import type { Sgemm } from './library.js';

/** Conv geometry, or null for what this path does not handle (so the caller falls back). */
function convInfo(xShape: number[], filterShape: number[], attrs: Record<string, unknown>): ConvInfo | null {
  const dataFormat = (attrs['dataFormat'] as string | undefined) ?? 'NHWC';
  const dil = attrs['dilations'] as number | number[] | undefined;
  const dilations = dil == null ? [1, 1] : typeof dil === 'number' ? [dil, dil] : dil;
  if (dataFormat !== 'NHWC' || dilations.some((d) => d !== 1)) return null;
  if (xShape.length !== 4 || filterShape.length !== 4) return null;
  // Empty tensors: OpenBLAS rejects zero leading dimensions; the previous kernel copes.
  if ([...xShape, ...filterShape].some((d) => d === 0)) return null;
  return nhwcConv2DInfo(xShape, filterShape, attrs);
}

const kOf = (info: ConvInfo): number => info.filterHeight * info.filterWidth * info.inChannels;
const rowsOf = (info: ConvInfo): number => info.outHeight * info.outWidth;

/** Whether the filter window is the pixel itself (1x1, stride 1, no padding): x is already cols. */
function pointwise(info: ConvInfo): boolean {
  const p = info.padInfo;
  return info.filterHeight === 1 && info.filterWidth === 1 && info.strideHeight === 1 && info.strideWidth === 1 && p.top === 0 && p.left === 0;
}

/** y (heap, float index `oi`) [B*Ho*Wo, Co] = cols(x) [.., K] @ w [K, Co], x at float index `xi`. */
function convGemm(sgemm: Sgemm, heap: Float32Array, xi: number, info: ConvInfo, w: Float32Array, oi: number): void {
  const K = kOf(info);
  const Co = info.outChannels;
  const per = rowsOf(info);
  if (pointwise(info)) {
    const m = info.batchSize * per;
    sgemm(false, false, m, Co, K, 1, heap.subarray(xi, xi + m * K), K, w, Co, 0, heap.subarray(oi, oi + m * Co), Co);
    return;
  }
  const group = imagesPerBlock(info);
  for (let b0 = 0; b0 < info.batchSize; b0 += group) {
    const b1 = Math.min(info.batchSize, b0 + group);
    const m = (b1 - b0) * per;
    const cols = scratch(m * K);
    im2col(heap, xi, info, b0, b1, cols);
    const o = oi + b0 * per * Co;
    sgemm(false, false, m, Co, K, 1, cols, K, w, Co, 0, heap.subarray(o, o + m * Co), Co);
  }
}

/** The forward convolution of x by filter (both on the heap) into a new tensor. */
function forward(sgemm: Sgemm, backend: WasmBackendInternals, x: TensorInfo, filter: TensorInfo, info: ConvInfo): TensorInfo {
  const out = backend.makeOutput([info.batchSize, info.outHeight, info.outWidth, info.outChannels], 'float32');
  const heap = backend.wasm.HEAPF32;
  const fi = f32Index(backend, filter);
  convGemm(sgemm, heap, f32Index(backend, x), info, heap.subarray(fi, fi + kOf(info) * info.outChannels), f32Index(backend, out));
  return out;
}

function conv2D(sgemm: Sgemm, previous: KernelFunc, fused: boolean): KernelFunc {
  return ((args: KernelArgs) => {
    const x = args.inputs['x']!;
    const filter = args.inputs['filter']!;
    const attrs = (args.attrs ?? {}) as Record<string, unknown>;
    const info = x.dtype === 'float32' && filter.dtype === 'float32' ? convInfo(x.shape, filter.shape, attrs) : null;
    const epilogue = fused ? fusedEpilogue(args, filter.shape[3] ?? 0) : { bias: null, relu: false };
    if (info == null || epilogue == null || info.outChannels < blasConvTuning.minOutChannels) return previous(args as never) as TensorInfo;
    noteForward(args);
    const backend = asWasm(args.backend);
    const out = forward(sgemm, backend, x, filter, info);
    if (epilogue.bias != null || epilogue.relu) addBiasActivate(backend, out, epilogue.bias, epilogue.relu, info.outChannels);
    return out;
  }) as unknown as KernelFunc;
}

/** dW [K, Co] = sum over image blocks of cols(x)^T @ dy. */
function filterGrad(sgemm: Sgemm, backend: WasmBackendInternals, x: TensorInfo, dy: TensorInfo, info: ConvInfo, filterShape: number[]): TensorInfo {
  const out = backend.makeOutput(filterShape.slice(), 'float32');
  const heap = backend.wasm.HEAPF32;
  const xi = f32Index(backend, x);
  const dyi = f32Index(backend, dy);
  const K = kOf(info);
  const Co = info.outChannels;
  const oi = f32Index(backend, out);
  const dw = heap.subarray(oi, oi + K * Co);
  const per = rowsOf(info);
  if (info.batchSize * per === 0) {
    dw.fill(0);
    return out;
  }
  if (pointwise(info)) {
    const m = info.batchSize * per;
    sgemm(true, false, K, Co, m, 1, heap.subarray(xi, xi + m * K), K, heap.subarray(dyi, dyi + m * Co), Co, 0, dw, Co);
    return out;
  }
  const group = imagesPerBlock(info);
  for (let b0 = 0; b0 < info.batchSize; b0 += group) {
    const b1 = Math.min(info.batchSize, b0 + group);
    const m = (b1 - b0) * per;
    const cols = scratch(m * K);
    im2col(heap, xi, info, b0, b1, cols);
    const d = dyi + b0 * per * Co;
    sgemm(true, false, K, Co, m, 1, cols, K, heap.subarray(d, d + m * Co), Co, b0 === 0 ? 0 : 1, dw, Co);
  }
  return out;
}

function backpropFilter(sgemm: Sgemm, previous: KernelFunc): KernelFunc {
  return ((args: KernelArgs) => {
    const x = args.inputs['x']!;
    const dy = args.inputs['dy']!;
    const attrs = (args.attrs ?? {}) as Record<string, unknown>;
    const filterShape = attrs['filterShape'] as number[];
    const info = x.dtype === 'float32' && dy.dtype === 'float32' ? convInfo(x.shape, filterShape, attrs) : null;
    if (info == null || info.outChannels < blasConvTuning.minOutChannels) return previous(args as never) as TensorInfo;
    return filterGrad(sgemm, asWasm(args.backend), x, dy, info, filterShape);
  }) as unknown as KernelFunc;
}

/** W [kh,kw,Ci,Co] (heap) -> W' [kh,kw,Co,Ci] with W'[a,b,o,i] = W[kh-1-a, kw-1-b, i, o], in scratch. */
function flipSwap(heap: Float32Array, wi: number, kh: number, kw: number, ci: number, co: number): Float32Array {
  const out = scratch(kh * kw * ci * co, 'weights');
  for (let a = 0; a < kh; a++) {
    for (let b = 0; b < kw; b++) {
      const src = wi + ((kh - 1 - a) * kw + (kw - 1 - b)) * ci * co;
      const dst = (a * kw + b) * co * ci;
      for (let i = 0; i < ci; i++) for (let o = 0; o < co; o++) out[dst + o * ci + i] = heap[src + i * co + o]!;
    }
  }
  return out;
}

/**
 * Geometry of dx as a forward convolution (stride 1 only): dy padded by (k-1-pad) on each side,
 * convolved with the flipped filter with in/out channels swapped. Null when a padding would be
 * negative (explicit pads larger than the filter) or the stride is not 1.
 */
function inputGradAsConv(info: ConvInfo): ConvInfo | null {
  const { filterHeight: kh, filterWidth: kw, inHeight: H, inWidth: W, outHeight: Ho, outWidth: Wo } = info;
  if (info.strideHeight !== 1 || info.strideWidth !== 1) return null;
  const top = kh - 1 - info.padInfo.top;
  const left = kw - 1 - info.padInfo.left;
  const bottom = H + kh - 1 - Ho - top;
  const right = W + kw - 1 - Wo - left;
  if (Math.min(top, left, bottom, right) < 0) return null;
  const pad: ConvPad = [[0, 0], [top, bottom], [left, right], [0, 0]];
  const dInfo = tf.backend_util.computeConv2DInfo([info.batchSize, Ho, Wo, info.outChannels], [kh, kw, info.outChannels, info.inChannels], 1, 1, pad, undefined, false, 'channelsLast');
  return dInfo.outHeight === H && dInfo.outWidth === W ? dInfo : null;
}

/**
 * Which formulation the input gradient uses at stride 1: 'auto' (by `blasConvTuning`), 'conv'
 * (dy convolved with the flipped filter: im2col copies, no scatter) or 'col2im' (dy @ W^T, then a
 * scatter-add, the form every other stride uses). Exposed for the kernel benchmark and the tests.
 */
export const inputGradMode: { value: 'auto' | 'conv' | 'col2im' } = { value: 'auto' };

/**
 * Where the OpenBLAS path pays, measured per kernel at batch 64 (bench/train-throughput/
 * blas-kernels.ts, CPU time): with fewer than 32 output channels the GEMM is too narrow to
 * outrun the im2col copy, and XNNPACK's direct convolution wins the forward pass and the filter
 * gradient (lenet's 1->6 and 6->16 layers: 1.4 vs 4.5 ms, 2.6 vs 3.3 ms), so those fall back. The
 * input gradient stays on OpenBLAS at every size: as a convolution of dy from 16 input channels
 * up (fmnist_cnn's 32->64: 9.4 vs 16.9 ms scatter-add), as the scatter-add below that (the
 * convolution's GEMM would be 1 to 6 columns wide: 4.6 vs 18.9 ms on lenet's first layer).
 */
export const blasConvTuning = { minOutChannels: 32, inputGradConvMinChannels: 16 };

/** dx = col2im(dy @ W^T), block by block of images. */
function inputGrad(sgemm: Sgemm, backend: WasmBackendInternals, dy: TensorInfo, filter: TensorInfo, info: ConvInfo, inputShape: number[]): TensorInfo {
  const out = backend.makeOutput(inputShape.slice(), 'float32');
  const heap = backend.wasm.HEAPF32;
  const dxi = f32Index(backend, out);
  const dyi = f32Index(backend, dy);
  const K = kOf(info);
  const Co = info.outChannels;
  const w = heap.subarray(f32Index(backend, filter), f32Index(backend, filter) + K * Co);
  const per = rowsOf(info);
  if (pointwise(info)) {
    const m = info.batchSize * per;
    sgemm(false, true, m, K, Co, 1, heap.subarray(dyi, dyi + m * Co), Co, w, Co, 0, heap.subarray(dxi, dxi + m * K), K);
    return out;
  }
  const mode = inputGradMode.value;
  const useConv = mode === 'conv' || (mode === 'auto' && info.inChannels >= blasConvTuning.inputGradConvMinChannels);
  const asConv = useConv ? inputGradAsConv(info) : null;
  if (asConv != null) {
    const wFlip = flipSwap(heap, f32Index(backend, filter), info.filterHeight, info.filterWidth, info.inChannels, Co);
    convGemm(sgemm, heap, dyi, asConv, wFlip, dxi);
    return out;
  }
  heap.fill(0, dxi, dxi + tf.util.sizeFromShape(inputShape));
  const group = imagesPerBlock(info);
  for (let b0 = 0; b0 < info.batchSize; b0 += group) {
    const b1 = Math.min(info.batchSize, b0 + group);
    const m = (b1 - b0) * per;
    const cols = scratch(m * K);
    const d = dyi + b0 * per * Co;
    sgemm(false, true, m, K, Co, 1, heap.subarray(d, d + m * Co), Co, w, Co, 0, cols, K);
    col2imAdd(cols, heap, dxi, info, b0, b1);
  }
  return out;
}

function backpropInput(sgemm: Sgemm, previous: KernelFunc): KernelFunc {
  return ((args: KernelArgs) => {
    const dy = args.inputs['dy']!;
    const filter = args.inputs['filter']!;
    const attrs = (args.attrs ?? {}) as Record<string, unknown>;
    const inputShape = attrs['inputShape'] as number[];
    if (inputGradientUnneeded(filter, inputShape)) return zeros(args.backend, inputShape.slice());
    const info = dy.dtype === 'float32' && filter.dtype === 'float32' ? convInfo(inputShape, filter.shape, attrs) : null;
    if (info == null) return previous(args as never) as TensorInfo;
    return inputGrad(sgemm, asWasm(args.backend), dy, filter, info, inputShape);
  }) as unknown as KernelFunc;
}

/** The BLAS convolution kernels, each falling back to `previous(name)`. */
export function blasConvKernels(sgemm: Sgemm, previous: (name: string) => KernelFunc): Array<{ name: string; func: KernelFunc }> {
  return [
    { name: 'Conv2D', func: conv2D(sgemm, previous('Conv2D'), false) },
    { name: 'FusedConv2D', func: conv2D(sgemm, previous('FusedConv2D'), true) },
    { name: 'Conv2DBackpropFilter', func: backpropFilter(sgemm, previous('Conv2DBackpropFilter')) },
    { name: 'Conv2DBackpropInput', func: backpropInput(sgemm, previous('Conv2DBackpropInput')) },
  ];
}
