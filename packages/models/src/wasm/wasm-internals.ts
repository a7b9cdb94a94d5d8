/**
 * Typed access to the parts of the tfjs-backend-wasm 4.22.0 backend object the patched kernels
 * use. These are internals (hence the exact version pin): the data-id map that gives each tensor's
 * numeric id and heap offset, output allocation, and the Emscripten heap views.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { DataId, DataType, NamedAttrMap, TensorInfo } from '@tensorflow/tfjs-core';

/** What the wasm backend keeps per tensor. */
interface WasmTensorData {
  id: number;
  memoryOffset: number;
  shape: number[];
  dtype: DataType;
  refCount: number;
}

/** The subset of BackendWasm the kernels touch. */
export interface WasmBackendInternals {
  dataIdMap: { get(dataId: DataId): WasmTensorData | undefined };
  makeOutput(shape: number[], dtype: DataType, memoryOffset?: number): TensorInfo;
  disposeData(dataId: DataId, force?: boolean): boolean;
  wasm: {
    HEAPF32: Float32Array;
    HEAP32: Int32Array;
    HEAPU8: Uint8Array;
  };
}

/** Arguments every kernel function receives. */
export interface KernelArgs {
  inputs: Record<string, TensorInfo | undefined>;
  attrs?: NamedAttrMap;
  backend: unknown;
}

/** Narrows the opaque backend handed to a kernel. */
export function asWasm(backend: unknown): WasmBackendInternals {
  const b = backend as Partial<WasmBackendInternals>;
  if (b == null || b.dataIdMap == null || typeof b.makeOutput !== 'function' || b.wasm == null) {
    throw new Error('patched wasm kernel: expected the tfjs-backend-wasm backend object');
  }
  return b as WasmBackendInternals;
}

/** Float index (not byte offset) of a tensor's first element on the wasm heap. */
export function f32Index(backend: WasmBackendInternals, t: TensorInfo): number {
  const data = backend.dataIdMap.get(t.dataId);
  if (data == null) throw new Error('patched wasm kernel: tensor data is not on the wasm backend');
  return data.memoryOffset >>> 2;
}

/**
 * A Float32Array view over a tensor's data. Re-create views after any allocation: heap growth
 * detaches earlier views.
 */
export function heapF32(backend: WasmBackendInternals, t: TensorInfo): Float32Array {
  const start = f32Index(backend, t);
  return backend.wasm.HEAPF32.subarray(start, start + tf.util.sizeFromShape(t.shape));
}

/** Looks up a kernel function registered for 'wasm' at call time (so stock or patched). */
export function wasmKernel(name: string): (args: KernelArgs) => TensorInfo {
  const cfg = tf.getKernel(name, 'wasm');
  if (cfg == null) throw new Error(`patched wasm kernel: wasm kernel '${name}' is not registered`);
  return cfg.kernelFunc as unknown as (args: KernelArgs) => TensorInfo;
}

/** Runs a wasm kernel and returns its single output. */
export function run(name: string, backend: unknown, inputs: KernelArgs['inputs'], attrs: NamedAttrMap = {}): TensorInfo {
  return wasmKernel(name)({ inputs, attrs, backend });
}

/** wasm Transpose (XNNPACK-backed): returns a fresh tensor. */
export function transpose(backend: unknown, x: TensorInfo, perm: number[]): TensorInfo {
  return run('Transpose', backend, { x }, { perm });
}

/** A fresh copy of `x` under a new data id (and optionally a new shape of equal size). */
export function copy(backend: WasmBackendInternals, x: TensorInfo, shape: number[] = x.shape): TensorInfo {
  const out = backend.makeOutput(shape, x.dtype);
  const src = f32Index(backend, x);
  const dst = f32Index(backend, out);
  const n = tf.util.sizeFromShape(x.shape);
  backend.wasm.HEAPF32.copyWithin(dst, src, src + n);
  return out;
}

/** Frees intermediates created inside a kernel. */
export function free(backend: WasmBackendInternals, ...ts: (TensorInfo | null | undefined)[]): void {
  for (const t of ts) if (t != null) backend.disposeData(t.dataId);
}

/** Padding as tfjs's conv attrs give it: a mode, one number, or explicit [[0,0],[t,b],[l,r],[0,0]]. */
export type ConvPad = 'same' | 'valid' | number | [[number, number], [number, number], [number, number], [number, number]];

/** Conv2D geometry of an NHWC convolution with dilation 1 from a kernel's attrs (strides, pad, dimRoundingMode). */
export function nhwcConv2DInfo(xShape: number[], filterShape: number[], attrs: Record<string, unknown>): tf.backend_util.Conv2DInfo {
  return tf.backend_util.computeConv2DInfo(
    xShape as [number, number, number, number],
    filterShape as [number, number, number, number],
    attrs['strides'] as number | [number, number],
    1,
    attrs['pad'] as ConvPad,
    attrs['dimRoundingMode'] as 'floor' | 'round' | 'ceil' | undefined,
    false,
    'channelsLast',
  );
}
