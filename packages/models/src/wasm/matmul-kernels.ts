/**
 * BatchMatMul and _FusedMatMul wrappers. Stock wasm caches its XNNPACK operator by the data id
 * of `b` alone, so a reshape of the same data (same id, other shape) reuses a stale operator
 * and returns garbage, and its transposed variants take a slow path. Here both operands are
 * handed to the stock kernel as fresh, untransposed tensors (a transpose or a heap copy, both
 * cheap next to the product) that are freed right after, so no stale operator can be hit.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { KernelConfig, KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';
import { asWasm, copy, f32Index, free, transpose } from './wasm-internals.js';
import type { KernelArgs, WasmBackendInternals } from './wasm-internals.js';

/** [..., r, c] viewed as [batch, r, c] (no copy). */
function as3d(t: TensorInfo): TensorInfo {
  const r = t.shape.length;
  const batch = t.shape.slice(0, -2).reduce((p, d) => p * d, 1);
  return { ...t, shape: [batch, t.shape[r - 2]!, t.shape[r - 1]!] };
}

/** A fresh tensor holding matrix `index` of the rank-3 tensor `t`. */
function sliceCopy(backend: WasmBackendInternals, t: TensorInfo, index: number, shape: number[]): TensorInfo {
  const out = backend.makeOutput(shape, 'float32');
  const size = shape[1]! * shape[2]!;
  const src = f32Index(backend, t) + index * size;
  backend.wasm.HEAPF32.copyWithin(f32Index(backend, out), src, src + size);
  return out;
}

function wrapMatMul(stock: KernelFunc, kernel: string): KernelFunc {
  return ((args: KernelArgs) => {
    const backend = asWasm(args.backend);
    const attrs = (args.attrs ?? {}) as Record<string, unknown>;
    const a = args.inputs['a']!;
    const b = args.inputs['b']!;
    if (a.dtype !== 'float32' || b.dtype !== 'float32') {
      throw new Error(`patched wasm ${kernel}: expected float32 operands, got ${a.dtype} and ${b.dtype}`);
    }
    if (a.shape.length < 2 || b.shape.length < 2) {
      throw new Error(`patched wasm ${kernel}: operands must have rank >= 2, got shapes [${a.shape}] and [${b.shape}]`);
    }
    const transposeA = attrs['transposeA'] === true;
    const transposeB = attrs['transposeB'] === true;
    const a3 = as3d(a);
    const b3 = as3d(b);
    const a2 = transposeA ? transpose(backend, a3, [0, 2, 1]) : a3;
    const b2 = transposeB ? transpose(backend, b3, [0, 2, 1]) : copy(backend, b3);
    const batch = tf.broadcast_util.assertAndGetBroadcastShape(a.shape.slice(0, -2), b.shape.slice(0, -2));
    const outShape = [...batch, a2.shape[1]!, b2.shape[2]!];
    try {
      const batchSize = batch.reduce((p, d) => p * d, 1);
      if (kernel === '_FusedMatMul' && batchSize > 1) {
        // Stock _FusedMatMul is wrong for batch > 1, so run it one matrix at a time.
        const out = backend.makeOutput(outShape, 'float32');
        const [, m, k] = a2.shape as [number, number, number];
        const n = b2.shape[2]!;
        for (let i = 0; i < batchSize; i++) {
          const ai = sliceCopy(backend, a2, a2.shape[0] === 1 ? 0 : i, [1, m, k]);
          const bi = sliceCopy(backend, b2, b2.shape[0] === 1 ? 0 : i, [1, k, n]);
          const oi = stock({
            inputs: { ...args.inputs, a: ai, b: bi },
            attrs: { ...attrs, transposeA: false, transposeB: false },
            backend: args.backend,
          } as never) as TensorInfo;
          const heap = backend.wasm.HEAPF32;
          const src = f32Index(backend, oi);
          heap.copyWithin(f32Index(backend, out) + i * m * n, src, src + m * n);
          free(backend, ai, bi, oi);
        }
        return out;
      }
      const out = stock({
        inputs: { ...args.inputs, a: a2, b: b2 },
        attrs: { ...attrs, transposeA: false, transposeB: false },
        backend: args.backend,
      } as never) as TensorInfo;
      out.shape = outShape;
      return out;
    } finally {
      free(backend, b2, a2 !== a3 ? a2 : null);
    }
  }) as unknown as KernelFunc;
}

/** Kernel configs wrapping the stock matmul kernels. */
export function matMulKernels(stock: (name: string) => KernelConfig | undefined): KernelConfig[] {
  const out: KernelConfig[] = [];
  for (const name of ['BatchMatMul', '_FusedMatMul']) {
    const s = stock(name);
    if (s == null) throw new Error(`patched wasm: stock wasm kernel '${name}' is missing; expected tfjs-backend-wasm 4.22.0`);
    out.push({ kernelName: name, backendName: 'wasm', kernelFunc: wrapMatMul(s.kernelFunc, name) });
  }
  return out;
}
