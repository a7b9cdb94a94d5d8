/**
 * JS kernels that work directly on the wasm heap where the stock kernel is wrong or slow:
 * MaxPoolGrad (stock misroutes the gradient when a window's maximum is negative) and Tile
 * (stock is an element-by-element loop; here contiguous runs are block-copied).
 */
import * as tf from '@tensorflow/tfjs-core';
import type { KernelConfig, KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';
import { asWasm, f32Index } from './wasm-internals.js';
import type { KernelArgs, WasmBackendInternals } from './wasm-internals.js';

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

/** Kernel configs for MaxPoolGrad and Tile. */
export function poolTileKernels(): KernelConfig[] {
  return [
    { kernelName: 'MaxPoolGrad', backendName: 'wasm', kernelFunc: maxPoolGrad as unknown as KernelFunc },
    { kernelName: 'Tile', backendName: 'wasm', kernelFunc: tile as unknown as KernelFunc },
  ];
}
