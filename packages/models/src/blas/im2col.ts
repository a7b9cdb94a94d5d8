/**
 * The lowering between NHWC images and GEMM rows that the BLAS convolutions use. A row (b,i,j)
 * holds the receptive field of output pixel (i,j) of image b in filter order [kh, kw, Ci], zeros
 * where the window hangs over the padding. Inside one filter row the window is contiguous in x
 * (kw * Ci floats at any stride), so each (row, filter-row) is one run.
 */
import * as tf from '@tensorflow/tfjs-core';

export type ConvInfo = ReturnType<typeof tf.backend_util.computeConv2DInfo>;

/** Runs shorter than this are copied by a scalar loop: a subarray per run costs more. */
const SHORT_RUN = 48;

/** Float budget of the im2col block per GEMM: keeps it cache-sized and bounded in memory. */
export const im2colBlockFloats: { value: number } = { value: 1 << 20 };

const scratchBufs = { cols: new Float32Array(0), weights: new Float32Array(0) };

/**
 * A reused JS buffer (outside the wasm heap, so heap growth never detaches it) of >= n floats;
 * one per slot, so the im2col block and a rearranged filter can be live at once.
 */
export function scratch(n: number, slot: keyof typeof scratchBufs = 'cols'): Float32Array {
  const buf = scratchBufs[slot];
  if (buf.length >= n) return buf;
  scratchBufs[slot] = new Float32Array(Math.max(n, buf.length * 2));
  return scratchBufs[slot];
}

/** Whole images per GEMM block so that the block stays within im2colBlockFloats. */
export function imagesPerBlock(info: ConvInfo): number {
  const rowFloats = info.outHeight * info.outWidth * info.filterHeight * info.filterWidth * info.inChannels;
  return Math.max(1, Math.min(info.batchSize, Math.floor(im2colBlockFloats.value / Math.max(1, rowFloats))));
}

/** x (heap, float index `xi`) images [b0, b1) -> cols rows. */
export function im2col(heap: Float32Array, xi: number, info: ConvInfo, b0: number, b1: number, cols: Float32Array): void {
  const { inHeight: H, inWidth: W, inChannels: C, outHeight: Ho, outWidth: Wo } = info;
  const { filterHeight: kh, filterWidth: kw, strideHeight: sh, strideWidth: sw } = info;
  const pt = info.padInfo.top;
  const pl = info.padInfo.left;
  const run = kw * C;
  let dst = 0;
  for (let b = b0; b < b1; b++) {
    for (let i = 0; i < Ho; i++) {
      for (let j = 0; j < Wo; j++) {
        // Valid filter columns [lo, hi) of the window starting at input column col0.
        const col0 = j * sw - pl;
        const lo = col0 < 0 ? -col0 : 0;
        const hi = W - col0 < kw ? W - col0 : kw;
        for (let a = 0; a < kh; a++, dst += run) {
          const r = i * sh + a - pt;
          if (r < 0 || r >= H || hi <= lo) {
            cols.fill(0, dst, dst + run);
            continue;
          }
          if (lo > 0) cols.fill(0, dst, dst + lo * C);
          if (hi < kw) cols.fill(0, dst + hi * C, dst + run);
          const s = xi + ((b * H + r) * W + col0 + lo) * C;
          const n = (hi - lo) * C;
          const d = dst + lo * C;
          if (n < SHORT_RUN) for (let t = 0; t < n; t++) cols[d + t] = heap[s + t]!;
          else cols.set(heap.subarray(s, s + n), d);
        }
      }
    }
  }
}

/** The adjoint of im2col: adds the rows of `cols` (images [b0, b1)) into dx (heap, float index `dxi`). */
export function col2imAdd(cols: Float32Array, heap: Float32Array, dxi: number, info: ConvInfo, b0: number, b1: number): void {
  const { inHeight: H, inWidth: W, inChannels: C, outHeight: Ho, outWidth: Wo } = info;
  const { filterHeight: kh, filterWidth: kw, strideHeight: sh, strideWidth: sw } = info;
  const pt = info.padInfo.top;
  const pl = info.padInfo.left;
  const run = kw * C;
  let src = 0;
  for (let b = b0; b < b1; b++) {
    for (let i = 0; i < Ho; i++) {
      for (let j = 0; j < Wo; j++) {
        const col0 = j * sw - pl;
        const lo = col0 < 0 ? -col0 : 0;
        const hi = W - col0 < kw ? W - col0 : kw;
        for (let a = 0; a < kh; a++, src += run) {
          const r = i * sh + a - pt;
          if (r < 0 || r >= H || hi <= lo) continue;
          const d = dxi + ((b * H + r) * W + col0 + lo) * C;
          const s = src + lo * C;
          const n = (hi - lo) * C;
          for (let t = 0; t < n; t++) heap[d + t]! += cols[s + t]!;
        }
      }
    }
  }
}
