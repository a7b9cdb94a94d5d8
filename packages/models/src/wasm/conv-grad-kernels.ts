/**
 * Convolution gradients for the wasm backend, expressed as forward convolutions so they run on
 * XNNPACK instead of the scalar loops (or nothing) that tfjs-backend-wasm 4.22 ships.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { KernelConfig, KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';
import { asWasm, f32Index, free, run, transpose } from './wasm-internals.js';
import type { KernelArgs, WasmBackendInternals } from './wasm-internals.js';

type Pad = 'same' | 'valid' | number | [[number, number], [number, number], [number, number], [number, number]];
type Info = ReturnType<typeof tf.backend_util.computeConv2DInfo>;

function explicitPad(top: number, bottom: number, left: number, right: number): Pad {
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
  return tf.backend_util.computeConv2DInfo(
    xShape as [number, number, number, number],
    filterShape as [number, number, number, number],
    attrs['strides'] as number | [number, number],
    1,
    attrs['pad'] as Pad,
    attrs['dimRoundingMode'] as 'floor' | 'round' | 'ceil' | undefined,
    false,
    'channelsLast',
  );
}

/**
 * dW[kh,kw,ci,co] = sum_{b,i,j} x[b, i*s+kh-pt, j*s+kw-pl, ci] * dy[b,i,j,co].
 * Read as a convolution with the batch as channels: x' = [Ci,H,W,B], filter dy' = [Ho,Wo,B,Co],
 * dilation = stride; the output [Ci,kh,kw,Co] is transposed to the filter layout.
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
  return [
    { kernelName: 'Conv2DBackpropFilter', backendName: 'wasm', kernelFunc: conv2DBackpropFilter as unknown as KernelFunc },
    { kernelName: 'Conv2DBackpropInput', backendName: 'wasm', kernelFunc: conv2DBackpropInput as unknown as KernelFunc },
  ];
}
