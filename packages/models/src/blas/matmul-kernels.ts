/**
 * BatchMatMul and _FusedMatMul of backend 'wasm' on cblas_sgemm: one call per matrix of the
 * batch, operands read in place on the wasm heap (transposes are sgemm flags, no copies).
 * Batch broadcasting other than "same size or 1", and activations other than linear/relu, fall
 * back to the kernel registered before.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';
import { asWasm, f32Index } from '../wasm/wasm-internals.js';
import type { KernelArgs } from '../wasm/wasm-internals.js';
import type { Sgemm } from './library.js';
import { addBiasActivate, fusedEpilogue } from './epilogue.js';

interface MatMulPlan {
  batch: number;
  strideA: number;
  strideB: number;
  m: number;
  n: number;
  k: number;
  outShape: number[];
}

/** Shapes and batch strides, or null where broadcasting is more than "equal or 1". */
function plan(a: TensorInfo, b: TensorInfo, transA: boolean, transB: boolean): MatMulPlan | null {
  const ra = a.shape.length;
  const rb = b.shape.length;
  if (ra < 2 || rb < 2) return null;
  const batchA = tf.util.sizeFromShape(a.shape.slice(0, -2));
  const batchB = tf.util.sizeFromShape(b.shape.slice(0, -2));
  if (batchA !== batchB && batchA !== 1 && batchB !== 1) return null;
  const m = transA ? a.shape[ra - 1]! : a.shape[ra - 2]!;
  const k = transA ? a.shape[ra - 2]! : a.shape[ra - 1]!;
  const kb = transB ? b.shape[rb - 1]! : b.shape[rb - 2]!;
  const n = transB ? b.shape[rb - 2]! : b.shape[rb - 1]!;
  if (k !== kb) return null;
  const batchShape = tf.broadcast_util.assertAndGetBroadcastShape(a.shape.slice(0, -2), b.shape.slice(0, -2));
  const batch = tf.util.sizeFromShape(batchShape);
  if (batch !== Math.max(batchA, batchB)) return null;
  return { batch, strideA: batchA === 1 ? 0 : m * k, strideB: batchB === 1 ? 0 : k * n, m, n, k, outShape: [...batchShape, m, n] };
}

/** out[i] = op(a[i]) op(b[i]) for every matrix of the batch. */
function multiply(sgemm: Sgemm, args: KernelArgs, p: MatMulPlan, transA: boolean, transB: boolean): TensorInfo {
  const backend = asWasm(args.backend);
  const a = args.inputs['a']!;
  const b = args.inputs['b']!;
  const out = backend.makeOutput(p.outShape, 'float32');
  const heap = backend.wasm.HEAPF32;
  const ai = f32Index(backend, a);
  const bi = f32Index(backend, b);
  const oi = f32Index(backend, out);
  const { m, n, k } = p;
  for (let i = 0; i < p.batch; i++) {
    const av = heap.subarray(ai + i * p.strideA, ai + i * p.strideA + m * k);
    const bv = heap.subarray(bi + i * p.strideB, bi + i * p.strideB + k * n);
    const cv = heap.subarray(oi + i * m * n, oi + (i + 1) * m * n);
    if (m * n * k === 0) cv.fill(0);
    else sgemm(transA, transB, m, n, k, 1, av, transA ? m : k, bv, transB ? k : n, 0, cv, n);
  }
  return out;
}

function matMulKernel(sgemm: Sgemm, previous: KernelFunc, fused: boolean): KernelFunc {
  return ((args: KernelArgs) => {
    const attrs = (args.attrs ?? {}) as Record<string, unknown>;
    const a = args.inputs['a']!;
    const b = args.inputs['b']!;
    const transA = attrs['transposeA'] === true;
    const transB = attrs['transposeB'] === true;
    const p = a.dtype === 'float32' && b.dtype === 'float32' ? plan(a, b, transA, transB) : null;
    const epilogue = fused ? fusedEpilogue(args, p?.n ?? 0) : { bias: null, relu: false };
    if (p == null || epilogue == null) return previous(args as never) as TensorInfo;
    const out = multiply(sgemm, args, p, transA, transB);
    if (epilogue.bias != null || epilogue.relu) addBiasActivate(asWasm(args.backend), out, epilogue.bias, epilogue.relu, p.n);
    return out;
  }) as unknown as KernelFunc;
}

/** The BLAS BatchMatMul and _FusedMatMul, each falling back to `previous(name)`. */
export function blasMatMulKernels(sgemm: Sgemm, previous: (name: string) => KernelFunc): Array<{ name: string; func: KernelFunc }> {
  return [
    { name: 'BatchMatMul', func: matMulKernel(sgemm, previous('BatchMatMul'), false) },
    { name: '_FusedMatMul', func: matMulKernel(sgemm, previous('_FusedMatMul'), true) },
  ];
}
