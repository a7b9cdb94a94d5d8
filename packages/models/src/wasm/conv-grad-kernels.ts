/**
 * Convolution gradients for the wasm backend, expressed as forward convolutions so they run on
 * XNNPACK instead of the scalar loops (or nothing) that tfjs-backend-wasm 4.22 ships.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { KernelConfig, KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';
import { inputGradientUnneeded, zeros } from './input-grad-kernels.js';
import { asWasm, f32Index, free, nhwcConv2DInfo, run, transpose } from './wasm-internals.js';
import type { ConvPad, KernelArgs, WasmBackendInternals } from './wasm-internals.js';

type Info = ReturnType<typeof tf.backend_util.computeConv2DInfo>;

function explicitPad(top: number, bottom: number, left: number, right: number): ConvPad {
  return [
    [0, 0],
    [top, bottom],
    [left, right],
    [0, 0],
  ];
}

function convInfo(xShape: number[], filterShape: number[], attrs: Record<string, unknown>, kernel: string): Info {
  const dataFormat = (attrs['dataFormat'] as 'NHWC' | 'NCHW' | undefined) ?? 'NHWC';
  if (dataFormat !== 'NHWC') {
    throw new Error(`patched wasm ${kernel}: dataFormat '${dataFormat}' is not supported, expected 'NHWC'`);
  }
  return nhwcConv2DInfo(xShape, filterShape, attrs);
}

let stockBatchMatMul: KernelFunc | null = null;

/**
 * Which filter-gradient formulation runs: 'conv' (the batch-as-channels convolution, default) or
 * 'gemm' (im2col + chunked XNNPACK GEMMs). Measured on cifar10_cnn's four layers (CPU time,
 * bench/train-throughput/kernel-bench.ts) the two are within noise of each other in total (GEMM
 * wins on the 3-channel first layer, the convolution on the 256->512 one), so the tested
 * convolution stays the default. Exposed for the kernel benchmark and the tests.
 */
export const filterGradMode: { value: 'gemm' | 'conv' } = { value: 'conv' };

/**
 * Size (floats) of the im2col block per GEMM. XNNPACK's GEMM does not block the reduction
 * dimension, so one product over all B*Ho*Wo rows streams operands far larger than the caches;
 * blocks of about this many floats (whole images, so rows = budget / K) stay cache-resident, and
 * the partial products are summed.
 */
export const gemmBlockFloats: { value: number } = { value: 131072 };

/**
 * x images [b0, b1) -> cols [(b1-b0)*Ho*Wo, kh*kw*Ci]: row (b,i,j) holds the receptive field of
 * output pixel (i,j) in filter layout order, zeros where the window hangs over the padding.
 */
function im2col(backend: WasmBackendInternals, x: TensorInfo, info: Info, b0: number, b1: number): TensorInfo {
  const { inHeight: H, inWidth: W, inChannels: C, outHeight: Ho, outWidth: Wo } = info;
  const { filterHeight: kh, filterWidth: kw, strideHeight: sh, strideWidth: sw } = info;
  const pt = info.padInfo.top;
  const pl = info.padInfo.left;
  const K = kh * kw * C;
  const out = backend.makeOutput([1, (b1 - b0) * Ho * Wo, K], 'float32');
  const heap = backend.wasm.HEAPF32;
  const src = f32Index(backend, x);
  let dst = f32Index(backend, out);
  for (let b = b0; b < b1; b++) {
    for (let i = 0; i < Ho; i++) {
      for (let j = 0; j < Wo; j++) {
        for (let a = 0; a < kh; a++) {
          const r = i * sh + a - pt;
          const rowOk = r >= 0 && r < H;
          for (let c = 0; c < kw; c++) {
            const col = j * sw + c - pl;
            if (!rowOk || col < 0 || col >= W) {
              heap.fill(0, dst, dst + C);
            } else {
              const s = src + ((b * H + r) * W + col) * C;
              if (C >= 16) {
                heap.copyWithin(dst, s, s + C);
              } else {
                for (let ch = 0; ch < C; ch++) heap[dst + ch] = heap[s + ch]!;
              }
            }
            dst += C;
          }
        }
      }
    }
  }
  return out;
}

/**
 * dW = cols^T dy computed as (dy^T cols)^T, in chunks of whole images: per chunk dy^T [Co, n]
 * (the small operand to transpose) times cols [n, K] on XNNPACK's fully-connected GEMM (the
 * stock BatchMatMul; every operand is a fresh tensor, so its operator cache cannot be stale),
 * partial products summed with wasm Add, the sum [Co, K] transposed to [kh,kw,Ci,Co].
 */
function filterGradGemm(backend: WasmBackendInternals, x: TensorInfo, dy: TensorInfo, info: Info, filterShape: number[]): TensorInfo {
  const { batchSize: B, outHeight: Ho, outWidth: Wo, outChannels: Co } = info;
  const K = info.filterHeight * info.filterWidth * info.inChannels;
  const perImage = Ho * Wo;
  const group = Math.max(1, Math.min(B, Math.floor(gemmBlockFloats.value / K / perImage)));
  const dyStart = f32Index(backend, dy);
  let acc: TensorInfo | null = null;
  for (let b0 = 0; b0 < B; b0 += group) {
    const b1 = Math.min(B, b0 + group);
    const n = (b1 - b0) * perImage;
    const cols = im2col(backend, x, info, b0, b1);
    const dyChunk = backend.makeOutput([1, n, Co], 'float32');
    const from = dyStart + b0 * perImage * Co;
    backend.wasm.HEAPF32.copyWithin(f32Index(backend, dyChunk), from, from + n * Co);
    const dyT = transpose(backend, dyChunk, [0, 2, 1]);
    const prod = stockBatchMatMul!({ inputs: { a: dyT, b: cols }, attrs: { transposeA: false, transposeB: false }, backend } as never) as TensorInfo;
    free(backend, cols, dyChunk, dyT);
    if (acc == null) {
      acc = prod;
    } else {
      const sum = run('Add', backend, { a: acc, b: prod });
      free(backend, acc, prod);
      acc = sum;
    }
  }
  const out = transpose(backend, { ...acc!, shape: [Co, K] }, [1, 0]);
  free(backend, acc);
  out.shape = filterShape.slice();
  return out;
}

/**
 * dW[kh,kw,ci,co] = sum_{b,i,j} x[b, i*s+kh-pt, j*s+kw-pl, ci] * dy[b,i,j,co].
 * Default: read as a convolution with the batch as channels: x' = [Ci,H,W,B], filter
 * dy' = [Ho,Wo,B,Co], dilation = stride; the output [Ci,kh,kw,Co] is transposed to the filter
 * layout. With filterGradMode 'gemm': im2col + GEMM (filterGradGemm).
 */
function conv2DBackpropFilter(args: KernelArgs): TensorInfo {
  const backend = asWasm(args.backend);
  const x = args.inputs['x']!;
  const dy = args.inputs['dy']!;
  const attrs = (args.attrs ?? {}) as Record<string, unknown>;
  const filterShape = attrs['filterShape'] as number[];
  const info = convInfo(x.shape, filterShape, attrs, 'Conv2DBackpropFilter');
  const { filterHeight: kh, filterWidth: kw, strideHeight: sh, strideWidth: sw } = info;
  const { inHeight: H, inWidth: W, outHeight: Ho, outWidth: Wo } = info;
  const pt = info.padInfo.top;
  const pl = info.padInfo.left;
  // Bottom/right padding that makes the output exactly kh x kw; negative means the last input
  // rows are never read, in which case the conv yields extra rows that are sliced off.
  if (filterGradMode.value === 'gemm' && stockBatchMatMul != null && x.dtype === 'float32') {
    return filterGradGemm(backend, x, dy, info, filterShape);
  }
  const pb = kh + (Ho - 1) * sh - H - pt;
  const pr = kw + (Wo - 1) * sw - W - pl;

  const xT = transpose(backend, x, [3, 1, 2, 0]);
  const dyT = transpose(backend, dy, [1, 2, 0, 3]);
  const conv = run(
    'Conv2D',
    backend,
    { x: xT, filter: dyT },
    {
      strides: [1, 1],
      pad: explicitPad(pt, Math.max(pb, 0), pl, Math.max(pr, 0)),
      dilations: [sh, sw],
      dataFormat: 'NHWC',
    },
  );
  free(backend, xT, dyT);
  let result = conv;
  if (conv.shape[1] !== kh || conv.shape[2] !== kw) {
    result = run('Slice', backend, { x: conv }, { begin: [0, 0, 0, 0], size: [conv.shape[0]!, kh, kw, conv.shape[3]!] });
    free(backend, conv);
  }
  const out = transpose(backend, result, [1, 2, 0, 3]);
  free(backend, result);
  return out;
}

/** dy [B,Ho,Wo,C] -> [B,(Ho-1)*sh+1,(Wo-1)*sw+1,C] with zeros between the rows/columns. */
function zeroInsert(backend: WasmBackendInternals, dy: TensorInfo, sh: number, sw: number): TensorInfo {
  const [B, Ho, Wo, C] = dy.shape as [number, number, number, number];
  const Hd = (Ho - 1) * sh + 1;
  const Wd = (Wo - 1) * sw + 1;
  const out = backend.makeOutput([B, Hd, Wd, C], 'float32');
  const heap = backend.wasm.HEAPF32;
  const src = f32Index(backend, dy);
  const dst = f32Index(backend, out);
  heap.fill(0, dst, dst + B * Hd * Wd * C);
  for (let b = 0; b < B; b++) {
    for (let i = 0; i < Ho; i++) {
      for (let j = 0; j < Wo; j++) {
        const s = src + ((b * Ho + i) * Wo + j) * C;
        heap.copyWithin(dst + ((b * Hd + i * sh) * Wd + j * sw) * C, s, s + C);
      }
    }
  }
  return out;
}

/** W [kh,kw,Ci,Co] -> W' [kh,kw,Co,Ci] with W'[a,b,o,i] = W[kh-1-a, kw-1-b, i, o]. */
function flipSwap(backend: WasmBackendInternals, w: TensorInfo): TensorInfo {
  const [kh, kw, ci, co] = w.shape as [number, number, number, number];
  const swapped = transpose(backend, w, [0, 1, 3, 2]);
  const out = backend.makeOutput([kh, kw, co, ci], 'float32');
  const heap = backend.wasm.HEAPF32;
  const src = f32Index(backend, swapped);
  const dst = f32Index(backend, out);
  const block = co * ci;
  for (let a = 0; a < kh; a++) {
    for (let b = 0; b < kw; b++) {
      const s = src + ((kh - 1 - a) * kw + (kw - 1 - b)) * block;
      heap.copyWithin(dst + (a * kw + b) * block, s, s + block);
    }
  }
  free(backend, swapped);
  return out;
}

let stockBackpropInput: KernelFunc | null = null;

/**
 * dx = conv(dy zero-inserted by the stride, spatially flipped filter with in/out channels
 * swapped, stride 1, padding kh-1-pt). Falls back to the stock (slow, correct) kernel when the
 * padding would be negative (explicit pads larger than the filter).
 */
function conv2DBackpropInput(args: KernelArgs): TensorInfo {
  const backend = asWasm(args.backend);
  const dy = args.inputs['dy']!;
  const filter = args.inputs['filter']!;
  const attrs = (args.attrs ?? {}) as Record<string, unknown>;
  const inputShape = attrs['inputShape'] as number[];
  if (inputGradientUnneeded(filter, inputShape)) return zeros(backend, inputShape.slice());
  const info = convInfo(inputShape, filter.shape, attrs, 'Conv2DBackpropInput');
  const { filterHeight: kh, filterWidth: kw, strideHeight: sh, strideWidth: sw } = info;
  const { inHeight: H, inWidth: W, outHeight: Ho, outWidth: Wo } = info;
  const Hd = (Ho - 1) * sh + 1;
  const Wd = (Wo - 1) * sw + 1;
  const top = kh - 1 - info.padInfo.top;
  const left = kw - 1 - info.padInfo.left;
  const bottom = H + kh - 1 - Hd - top;
  const right = W + kw - 1 - Wd - left;
  if (top < 0 || left < 0 || bottom < 0 || right < 0) {
    if (stockBackpropInput == null) {
      throw new Error('patched wasm Conv2DBackpropInput: padding larger than the filter and no stock kernel to fall back to');
    }
    return stockBackpropInput(args as never) as TensorInfo;
  }
  const dyD = sh === 1 && sw === 1 ? dy : zeroInsert(backend, dy, sh, sw);
  const w = flipSwap(backend, filter);
  const out = run(
    'Conv2D',
    backend,
    { x: dyD, filter: w },
    { strides: [1, 1], pad: explicitPad(top, bottom, left, right), dilations: [1, 1], dataFormat: 'NHWC' },
  );
  if (dyD !== dy) free(backend, dyD);
  free(backend, w);
  out.shape = inputShape.slice();
  return out;
}

/** Kernel configs; `stock` is the kernel being replaced (used as a fallback). */
export function convGradKernels(stock: (name: string) => KernelConfig | undefined): KernelConfig[] {
  stockBackpropInput = stock('Conv2DBackpropInput')?.kernelFunc ?? null;
  stockBatchMatMul = stock('BatchMatMul')?.kernelFunc ?? null;
  return [
    { kernelName: 'Conv2DBackpropFilter', backendName: 'wasm', kernelFunc: conv2DBackpropFilter as unknown as KernelFunc },
    { kernelName: 'Conv2DBackpropInput', backendName: 'wasm', kernelFunc: conv2DBackpropInput as unknown as KernelFunc },
  ];
}
