/**
 * JS kernels that work directly on the wasm heap where the stock kernel is wrong or slow:
 * MaxPoolGrad (stock misroutes the gradient when a window's maximum is negative; non-overlapping
 * windows, the usual 2x2/2 pooling, take a single-pass path with no per-window buffers) and Tile
 * (stock is an element-by-element loop; here contiguous runs are block-copied), and Cast to the
 * same dtype (stock copies; here the data is shared).
 */
import * as tf from '@tensorflow/tfjs-core';
import type { DataId, KernelConfig, KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';
import { asWasm, f32Index } from './wasm-internals.js';
import type { KernelArgs, WasmBackendInternals } from './wasm-internals.js';

type PoolInfo = ReturnType<typeof tf.backend_util.computePool2DInfo>;

/**
 * Whether the windows tile x without overlap or padding (stride == filter size, no top/left pad,
 * every window inside x): then each input pixel belongs to at most one window, and pixels past
 * the last window (valid padding, odd sizes) get no gradient.
 */
function nonOverlapping(info: PoolInfo): boolean {
  const { strideHeight: sh, strideWidth: sw, filterHeight: fh, filterWidth: fw } = info;
  return (
    info.dataFormat === 'channelsLast' &&
    sh === fh &&
    sw === fw &&
    info.padInfo.top === 0 &&
    info.padInfo.left === 0 &&
    info.outHeight * fh <= info.inHeight &&
    info.outWidth * fw <= info.inWidth
  );
}

/**
 * MaxPoolGrad when the windows do not overlap: dx is zeroed once, then each window is walked once
 * per channel and dy is written (not added: no other window reaches the pixel) at its first
 * maximum in scan order (row, then column; `>` as in the cpu backend, so a window of NaN or
 * -Infinity only routes nothing). `off` holds the window's pixel offsets relative to its corner.
 */
function maxPoolGradTiled(heap: Float32Array, xo: number, dyo: number, dxo: number, info: PoolInfo): void {
  const { batchSize: B, inHeight: H, inWidth: W, inChannels: C, outHeight: Ho, outWidth: Wo } = info;
  const { filterHeight: fh, filterWidth: fw } = info;
  const off = new Int32Array(fh * fw);
  for (let r = 0; r < fh; r++) for (let c = 0; c < fw; c++) off[r * fw + c] = (r * W + c) * C;
  const n = fh * fw;
  const shift = dxo - xo;
  heap.fill(0, dxo, dxo + B * H * W * C);
  if (fh === 2 && fw === 2) return maxPoolGrad2x2(heap, xo, dyo, shift, info);
  let g = dyo;
  for (let b = 0; b < B; b++) {
    for (let i = 0; i < Ho; i++) {
      let corner = xo + ((b * H + i * fh) * W) * C;
      for (let j = 0; j < Wo; j++, corner += fw * C, g += C) {
        for (let ch = 0; ch < C; ch++) {
          const base = corner + ch;
          let best = -Infinity;
          let at = -1;
          for (let t = 0; t < n; t++) {
            const v = heap[base + off[t]!]!;
            if (v > best) {
              best = v;
              at = base + off[t]!;
            }
          }
          if (at >= 0) heap[at + shift] = heap[g + ch]!;
        }
      }
    }
  }
}

/** maxPoolGradTiled's loop unrolled for 2x2 windows (the pooling of every bench model): ~2x faster. */
function maxPoolGrad2x2(heap: Float32Array, xo: number, dyo: number, shift: number, info: PoolInfo): void {
  const { batchSize: B, inHeight: H, inWidth: W, inChannels: C, outHeight: Ho, outWidth: Wo } = info;
  const o1 = C;
  const o2 = W * C;
  const o3 = W * C + C;
  let g = dyo;
  for (let b = 0; b < B; b++) {
    for (let i = 0; i < Ho; i++) {
      let corner = xo + (b * H + i * 2) * W * C;
      for (let j = 0; j < Wo; j++, corner += 2 * C, g += C) {
        for (let ch = 0; ch < C; ch++) {
          const p = corner + ch;
          let best = -Infinity;
          let at = -1;
          const v0 = heap[p]!;
          if (v0 > best) {
            best = v0;
            at = p;
          }
          const v1 = heap[p + o1]!;
          if (v1 > best) {
            best = v1;
            at = p + o1;
          }
          const v2 = heap[p + o2]!;
          if (v2 > best) {
            best = v2;
            at = p + o2;
          }
          if (heap[p + o3]! > best) at = p + o3;
          if (at >= 0) heap[at + shift] = heap[g + ch]!;
        }
      }
    }
  }
}

/**
 * Routes each dy value to the first maximum (scan order) of its window, like the cpu backend.
 * The loop keeps channels innermost so every read is contiguous.
 */
function maxPoolGrad(args: KernelArgs): TensorInfo {
  const backend = asWasm(args.backend);
  const dy = args.inputs['dy']!;
  const x = args.inputs['input']!;
  const attrs = (args.attrs ?? {}) as Record<string, unknown>;
  const info = tf.backend_util.computePool2DInfo(
    x.shape as [number, number, number, number],
    attrs['filterSize'] as [number, number] | number,
    attrs['strides'] as [number, number] | number,
    1,
    attrs['pad'] as 'same' | 'valid' | number,
    attrs['dimRoundingMode'] as 'floor' | 'round' | 'ceil' | undefined,
  );
  const { batchSize: B, inHeight: H, inWidth: W, inChannels: C, outHeight: Ho, outWidth: Wo } = info;
  const { strideHeight: sh, strideWidth: sw, filterHeight: fh, filterWidth: fw } = info;
  const pt = info.padInfo.top;
  const pl = info.padInfo.left;
  const out = backend.makeOutput(x.shape.slice(), 'float32');
  const heap = backend.wasm.HEAPF32;
  const xo = f32Index(backend, x);
  const dyo = f32Index(backend, dy);
  const dxo = f32Index(backend, out);
  if (nonOverlapping(info)) {
    maxPoolGradTiled(heap, xo, dyo, dxo, info);
    return out;
  }
  heap.fill(0, dxo, dxo + B * H * W * C);
  const best = new Float32Array(C);
  const bestAt = new Int32Array(C);
  for (let b = 0; b < B; b++) {
    for (let i = 0; i < Ho; i++) {
      const r0 = i * sh - pt;
      const rMin = Math.max(0, r0);
      const rMax = Math.min(H, r0 + fh);
      for (let j = 0; j < Wo; j++) {
        const c0 = j * sw - pl;
        const cMin = Math.max(0, c0);
        const cMax = Math.min(W, c0 + fw);
        best.fill(-Infinity);
        bestAt.fill(-1);
        for (let r = rMin; r < rMax; r++) {
          for (let c = cMin; c < cMax; c++) {
            const base = xo + ((b * H + r) * W + c) * C;
            for (let ch = 0; ch < C; ch++) {
              const v = heap[base + ch]!;
              if (v > best[ch]!) {
                best[ch] = v;
                bestAt[ch] = base + ch - xo;
              }
            }
          }
        }
        const g = dyo + ((b * Ho + i) * Wo + j) * C;
        for (let ch = 0; ch < C; ch++) {
          const at = bestAt[ch]!;
          if (at >= 0) heap[dxo + at] += heap[g + ch]!;
        }
      }
    }
  }
  return out;
}

function heapView(backend: WasmBackendInternals, t: TensorInfo): Float32Array | Int32Array | Uint8Array {
  const data = backend.dataIdMap.get(t.dataId)!;
  const n = tf.util.sizeFromShape(t.shape);
  switch (t.dtype) {
    case 'float32':
      return backend.wasm.HEAPF32.subarray(data.memoryOffset >>> 2, (data.memoryOffset >>> 2) + n);
    case 'int32':
      return backend.wasm.HEAP32.subarray(data.memoryOffset >>> 2, (data.memoryOffset >>> 2) + n);
    case 'bool':
      return backend.wasm.HEAPU8.subarray(data.memoryOffset, data.memoryOffset + n);
    default:
      throw new Error(`patched wasm Tile: dtype '${t.dtype}' is not supported, expected float32, int32 or bool`);
  }
}

/** Tile by copying each innermost run once, then doubling blocks outward with copyWithin. */
function tile(args: KernelArgs): TensorInfo {
  const backend = asWasm(args.backend);
  const x = args.inputs['x']!;
  const reps = ((args.attrs ?? {}) as Record<string, unknown>)['reps'] as number[];
  if (reps.length !== x.shape.length) {
    throw new Error(`patched wasm Tile: reps has ${reps.length} entries, expected one per dimension of x (${x.shape.length})`);
  }
  const outShape = x.shape.map((d, i) => d * reps[i]!);
  const out = backend.makeOutput(outShape, x.dtype);
  if (tf.util.sizeFromShape(outShape) === 0) return out;
  const src = heapView(backend, x);
  const dst = heapView(backend, out);
  const rank = x.shape.length;
  if (rank === 0) {
    dst.set(src);
    return out;
  }
  const inStrides = new Array<number>(rank);
  const outStrides = new Array<number>(rank);
  inStrides[rank - 1] = 1;
  outStrides[rank - 1] = 1;
  for (let a = rank - 2; a >= 0; a--) {
    inStrides[a] = inStrides[a + 1]! * x.shape[a + 1]!;
    outStrides[a] = outStrides[a + 1]! * outShape[a + 1]!;
  }
  const fill = (axis: number, inOff: number, outOff: number): void => {
    const n = x.shape[axis]!;
    if (axis === rank - 1) {
      if (n === 1) {
        dst.fill(src[inOff]! as never, outOff, outOff + reps[axis]!);
      } else {
        const row = src.subarray(inOff, inOff + n);
        for (let r = 0; r < reps[axis]!; r++) dst.set(row as never, outOff + r * n);
      }
      return;
    }
    for (let k = 0; k < n; k++) fill(axis + 1, inOff + k * inStrides[axis]!, outOff + k * outStrides[axis]!);
    const block = n * outStrides[axis]!;
    for (let r = 1; r < reps[axis]!; r++) dst.copyWithin(outOff + r * block, outOff, outOff + block);
  };
  fill(0, 0, 0);
  return out;
}

/**
 * Cast to the dtype x already has shares x's data (reference-counted, as the patched Identity):
 * tfjs-core's relu gradient casts step(x), already float32, to float32 on every layer and step,
 * and stock wasm copies it. Real conversions go to the stock kernel.
 */
function cast(stock: KernelFunc): KernelFunc {
  return ((args: KernelArgs) => {
    const x = args.inputs['x']!;
    const dtype = ((args.attrs ?? {}) as Record<string, unknown>)['dtype'];
    if (dtype !== x.dtype || x.dtype === 'string' || x.dtype === 'complex64') return stock(args as never) as TensorInfo;
    (args.backend as { incRef(dataId: DataId): void }).incRef(x.dataId);
    return { dataId: x.dataId, shape: x.shape.slice(), dtype: x.dtype };
  }) as unknown as KernelFunc;
}

/** Kernel configs for MaxPoolGrad, Tile and Cast (wrapping stock Cast). */
export function poolTileKernels(stock: (name: string) => KernelConfig | undefined): KernelConfig[] {
  const stockCast = stock('Cast');
  if (stockCast == null) throw new Error("patched wasm: stock wasm kernel 'Cast' is missing; expected tfjs-backend-wasm 4.22.0");
  return [
    { kernelName: 'MaxPoolGrad', backendName: 'wasm', kernelFunc: maxPoolGrad as unknown as KernelFunc },
    { kernelName: 'Tile', backendName: 'wasm', kernelFunc: tile as unknown as KernelFunc },
    { kernelName: 'Cast', backendName: 'wasm', kernelFunc: cast(stockCast.kernelFunc) },
  ];
}
