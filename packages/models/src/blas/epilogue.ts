/**
 * The bias + activation tail of FusedConv2D and _FusedMatMul on the BLAS path: a bias of one
 * value per output channel (the last dimension) and relu or linear. Anything else (prelu weights,
 * other activations, a bias of another shape) returns null so the caller falls back.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { TensorInfo } from '@tensorflow/tfjs-core';
import { f32Index } from '../wasm/wasm-internals.js';
import type { KernelArgs, WasmBackendInternals } from '../wasm/wasm-internals.js';

export interface Epilogue {
  bias: TensorInfo | null;
  relu: boolean;
}

/** The supported epilogue of a fused kernel with `channels` outputs per row, or null. */
export function fusedEpilogue(args: KernelArgs, channels: number): Epilogue | null {
  const attrs = (args.attrs ?? {}) as Record<string, unknown>;
  const activation = (attrs['activation'] as string | undefined) ?? 'linear';
  if (activation !== 'linear' && activation !== 'relu') return null;
  if (args.inputs['preluActivationWeights'] != null) return null;
  const bias = args.inputs['bias'] ?? null;
  if (bias != null && (bias.dtype !== 'float32' || tf.util.sizeFromShape(bias.shape) !== channels)) return null;
  return { bias, relu: activation === 'relu' };
}

/** out[..., c] = act(out[..., c] + bias[c]) in place. */
export function addBiasActivate(backend: WasmBackendInternals, out: TensorInfo, bias: TensorInfo | null, relu: boolean, channels: number): void {
  const heap = backend.wasm.HEAPF32;
  const o = f32Index(backend, out);
  const size = tf.util.sizeFromShape(out.shape);
  const bv = bias != null ? heap.subarray(f32Index(backend, bias), f32Index(backend, bias) + channels) : null;
  for (let row = o; row < o + size; row += channels) {
    if (bv != null) for (let c = 0; c < channels; c++) heap[row + c]! += bv[c]!;
    if (relu) for (let c = 0; c < channels; c++) if (heap[row + c]! < 0) heap[row + c] = 0;
  }
}
