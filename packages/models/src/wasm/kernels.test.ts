import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
// Registers tfjs-core's gradient functions (the skipInputGradient tests differentiate).
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import { beforeAll, describe, expect, it } from 'vitest';
import { filterGradMode, gemmBlockFloats } from './conv-grad-kernels.js';
import { loadBlas } from '../blas/library.js';
import { enableBlasKernels } from '../blas/openblas.js';
import { BATCH_NORM_GRAD_KERNEL } from './batch-norm.js';
import { initWasmBackend, skipInputGradient } from './index.js';

type Attrs = Record<string, unknown>;
interface Input {
  shape: number[];
  dtype?: 'float32' | 'int32';
}

/** Deterministic values in [-1, 1) (so windows with only negative values occur). */
function values(n: number, seed: number, dtype: 'float32' | 'int32' = 'float32'): Float32Array | Int32Array {
  let s = seed >>> 0 || 1;
  const out = dtype === 'int32' ? new Int32Array(n) : new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = dtype === 'int32' ? (s >>> 24) - 128 : s / 2 ** 31 - 1;
  }
  return out;
}

function runOn(backend: string, kernel: string, inputs: Record<string, Input>, attrs: Attrs, seed: number): { data: Float32Array; shape: number[] } {
  tf.setBackend(backend);
  return tf.tidy(() => {
    const ins: Record<string, tf.Tensor> = {};
    let k = 0;
    for (const [name, spec] of Object.entries(inputs)) {
      ins[name] = tf.tensor(values(tf.util.sizeFromShape(spec.shape), seed * 31 + k++, spec.dtype), spec.shape, spec.dtype ?? 'float32');
    }
    const out = tf.engine().runKernel(kernel, ins as never, attrs as never) as tf.Tensor;
    return { data: Float32Array.from(out.dataSync() as Float32Array), shape: out.shape };
  });
}

/** Runs a kernel on cpu and wasm with identical inputs; returns the max abs difference. */
function compare(kernel: string, inputs: Record<string, Input>, attrs: Attrs, seed = 1): number {
  const want = runOn('cpu', kernel, inputs, attrs, seed);
  const got = runOn('wasm', kernel, inputs, attrs, seed);
  expect(got.shape).toEqual(want.shape);
  let max = 0;
  for (let i = 0; i < want.data.length; i++) {
    const d = Math.abs(want.data[i]! - got.data[i]!);
    if (!(d <= max)) max = Number.isNaN(d) ? Infinity : d;
  }
  return max;
}

function report(name: string, diffs: number[]): void {
  const max = Math.max(...diffs);
  // The suite log is where the numeric agreement is recorded.
  process.stdout.write(`[patched-wasm] ${name}: ${diffs.length} cases, max |wasm - cpu| = ${max.toExponential(2)}\n`);
}

beforeAll(async () => {
  await initWasmBackend();
  // These cases cover the patched XNNPACK kernels; src/blas/kernels.test.ts covers OpenBLAS.
  enableBlasKernels('off');
});

const convCases: { b: number; h: number; w: number; ci: number; co: number; k: number; s: number; pad: 'same' | 'valid' | number }[] = [];
for (const s of [1, 2]) {
  for (const pad of ['same', 'valid'] as const) {
    convCases.push({ b: 1, h: 7, w: 5, ci: 3, co: 4, k: 3, s, pad });
    convCases.push({ b: 3, h: 8, w: 9, ci: 2, co: 5, k: 2, s, pad });
    convCases.push({ b: 2, h: 11, w: 10, ci: 1, co: 6, k: 5, s, pad });
  }
}
convCases.push({ b: 2, h: 6, w: 7, ci: 4, co: 3, k: 3, s: 1, pad: 1 });
convCases.push({ b: 2, h: 9, w: 9, ci: 3, co: 2, k: 3, s: 2, pad: 2 });

function outSize(n: number, k: number, s: number, pad: 'same' | 'valid' | number): number {
  if (pad === 'same') return Math.ceil(n / s);
  if (pad === 'valid') return Math.ceil((n - k + 1) / s);
  return Math.floor((n + 2 * pad - k) / s) + 1;
}

/** Max abs difference from cpu of Conv2DBackpropFilter on every conv case, whichever formulation is active. */
function filterGradDiffs(): number[] {
  return convCases.map((c, i) => {
    const ho = outSize(c.h, c.k, c.s, c.pad);
    const wo = outSize(c.w, c.k, c.s, c.pad);
    return compare(
      'Conv2DBackpropFilter',
      { x: { shape: [c.b, c.h, c.w, c.ci] }, dy: { shape: [c.b, ho, wo, c.co] } },
      { strides: [c.s, c.s], pad: c.pad, dataFormat: 'NHWC', filterShape: [c.k, c.k, c.ci, c.co] },
      i + 1,
    );
  });
}

describe('patched wasm convolution gradients', () => {
  it('Conv2DBackpropFilter matches cpu across strides, paddings, odd sizes and batch sizes', () => {
    const diffs = filterGradDiffs();
    report('Conv2DBackpropFilter', diffs);
    expect(Math.max(...diffs)).toBeLessThan(1e-4);
  });

  it('Conv2DBackpropFilter in the im2col + GEMM formulation (chunked over images) matches cpu', () => {
    const saved = { mode: filterGradMode.value, rows: gemmBlockFloats.value };
    filterGradMode.value = 'gemm';
    // A block of 100 floats forces one GEMM per image, so the partial products are summed on
    // every case with a batch above one.
    gemmBlockFloats.value = 100;
    try {
      const diffs = filterGradDiffs();
      report('Conv2DBackpropFilter (gemm)', diffs);
      expect(Math.max(...diffs)).toBeLessThan(1e-4);
    } finally {
      filterGradMode.value = saved.mode;
      gemmBlockFloats.value = saved.rows;
    }
  });

  it('Conv2DBackpropInput matches cpu across strides, paddings, odd sizes and batch sizes', () => {
    const diffs = convCases.map((c, i) => {
      const ho = outSize(c.h, c.k, c.s, c.pad);
      const wo = outSize(c.w, c.k, c.s, c.pad);
      return compare(
        'Conv2DBackpropInput',
        { dy: { shape: [c.b, ho, wo, c.co] }, filter: { shape: [c.k, c.k, c.ci, c.co] } },
        { strides: [c.s, c.s], pad: c.pad, dataFormat: 'NHWC', inputShape: [c.b, c.h, c.w, c.ci] },
        i + 7,
      );
    });
    report('Conv2DBackpropInput', diffs);
    expect(Math.max(...diffs)).toBeLessThan(1e-4);
  });
});

describe('patched wasm MaxPoolGrad', () => {
  it('routes gradients like cpu, including windows whose maximum is negative', () => {
    const cases: { b: number; h: number; w: number; c: number; f: number; s: number; pad: 'same' | 'valid' }[] = [
      { b: 1, h: 6, w: 6, c: 3, f: 2, s: 2, pad: 'valid' },
      { b: 2, h: 7, w: 5, c: 4, f: 2, s: 2, pad: 'valid' },
      { b: 2, h: 7, w: 5, c: 4, f: 2, s: 2, pad: 'same' },
      { b: 3, h: 9, w: 8, c: 2, f: 3, s: 2, pad: 'same' },
      { b: 1, h: 5, w: 6, c: 5, f: 2, s: 1, pad: 'valid' },
      { b: 2, h: 8, w: 8, c: 1, f: 3, s: 3, pad: 'valid' },
    ];
    const diffs = cases.map((c, i) => {
      const ho = outSize(c.h, c.f, c.s, c.pad);
      const wo = outSize(c.w, c.f, c.s, c.pad);
      const attrs = { filterSize: [c.f, c.f], strides: [c.s, c.s], pad: c.pad };
      // The forward output must be the real max pool of `input`, so compute it per backend.
      const run = (backend: string): Float32Array => {
        tf.setBackend(backend);
        return tf.tidy(() => {
          const x = tf.tensor(values(c.b * c.h * c.w * c.c, 100 + i), [c.b, c.h, c.w, c.c]);
          const y = tf.maxPool(x as tf.Tensor4D, c.f, c.s, c.pad);
          expect(y.shape).toEqual([c.b, ho, wo, c.c]);
          const dy = tf.tensor(values(y.size, 200 + i), y.shape);
          const dx = tf.engine().runKernel('MaxPoolGrad', { dy, input: x, output: y }, attrs as never) as tf.Tensor;
          return Float32Array.from(dx.dataSync() as Float32Array);
        });
      };
      const want = run('cpu');
      const got = run('wasm');
      let max = 0;
      want.forEach((v, k) => (max = Math.max(max, Math.abs(v - got[k]!))));
      return max;
    });
    report('MaxPoolGrad', diffs);
    expect(Math.max(...diffs)).toBeLessThan(1e-6);
  });

  it('routes to the first maximum on the non-overlapping fast path: ties, all-negative windows, odd sizes, batch 1 and 5', () => {
    // Stride == filter, no top/left padding: the tiled path (2x2 unrolled, other sizes generic).
    const cases: { b: number; h: number; w: number; c: number; f: number; kind: 'ties' | 'negative' }[] = [
      { b: 1, h: 4, w: 4, c: 3, f: 2, kind: 'ties' },
      { b: 5, h: 9, w: 7, c: 6, f: 2, kind: 'ties' },
      { b: 5, h: 9, w: 7, c: 6, f: 2, kind: 'negative' },
      { b: 1, h: 11, w: 13, c: 5, f: 2, kind: 'negative' },
      { b: 5, h: 10, w: 8, c: 4, f: 3, kind: 'ties' },
      { b: 1, h: 7, w: 9, c: 3, f: 3, kind: 'negative' },
      { b: 2, h: 9, w: 7, c: 3, f: [3, 2] as unknown as number, kind: 'ties' },
    ];
    const diffs = cases.map((c, i) => {
      const f = c.f as number | [number, number];
      const attrs = { filterSize: f, strides: f, pad: 'valid' };
      // 'ties': few distinct levels, so most windows hold their maximum more than once; 'negative':
      // every value in [-2, -1), so every window's maximum is negative.
      const raw = values(c.b * c.h * c.w * c.c, 300 + i);
      const xs = raw.map((v) => (c.kind === 'ties' ? Math.round(v * 2) : v / 2 - 1.5));
      const run = (backend: string): Float32Array => {
        tf.setBackend(backend);
        return tf.tidy(() => {
          const x = tf.tensor(xs, [c.b, c.h, c.w, c.c]);
          const y = tf.maxPool(x as tf.Tensor4D, f, f, 'valid');
          const dy = tf.tensor(values(y.size, 400 + i), y.shape);
          const dx = tf.engine().runKernel('MaxPoolGrad', { dy, input: x, output: y }, attrs as never) as tf.Tensor;
          return Float32Array.from(dx.dataSync() as Float32Array);
        });
      };
      const want = run('cpu');
      const got = run('wasm');
      let max = 0;
      want.forEach((v, k) => (max = Math.max(max, Math.abs(v - got[k]!))));
      return max;
    });
    report('MaxPoolGrad (non-overlapping)', diffs);
    expect(Math.max(...diffs)).toBe(0);
  });
});

describe('patched wasm Sum and Mean', () => {
  it('match cpu over leading axes (batch-norm reductions) and fall back for other axes', () => {
    const cases: [number[], number | number[], boolean][] = [
      [[4, 5, 3, 6], [0, 1, 2], false],
      [[4, 5, 3, 6], [0, 1, 2], true],
      [[7, 3], 0, false],
      [[2, 3, 4], [1, 0], true],
      [[2, 3, 4], 2, false],
      [[2, 3, 4], [0, 2], false],
    ];
    const diffs = cases.flatMap(([shape, axis, keepDims], i) =>
      ['Sum', 'Mean'].map((k) => compare(k, { x: { shape } }, { axis, keepDims }, 700 + i)),
    );
    report('Sum/Mean', diffs);
    expect(Math.max(...diffs)).toBeLessThan(1e-5);
  });

  it('match cpu on tensors large enough for the pairwise fold, odd and even row counts', () => {
    const cases: [number[], number[]][] = [
      [[9, 7, 13, 64], [0, 1, 2]], // 819 rows: an odd row at several fold levels
      [[16, 16, 16, 16], [0, 1, 2]],
      [[3, 40000], [0]],
    ];
    const diffs = cases.flatMap(([shape, axis], i) =>
      ['Sum', 'Mean'].flatMap((k) => [false, true].map((keepDims) => compare(k, { x: { shape } }, { axis, keepDims }, 800 + i))),
    );
    report('Sum/Mean (fold)', diffs);
    // Sums of up to 819 values in [-1, 1): float32 pairwise rounding vs cpu's float64 accumulator.
    expect(Math.max(...diffs)).toBeLessThan(5e-5);
  });
});

describe('patched wasm Tile', () => {
  it('matches cpu for batch-norm broadcasts and general shapes, float32 and int32', () => {
    const cases: [number[], number[], ('float32' | 'int32')?][] = [
      [[1, 1, 1, 5], [3, 4, 6, 1]],
      [[5], [7]],
      [[2, 3], [3, 2]],
      [[2, 1, 3], [1, 4, 2]],
      [[1, 3, 1, 2], [2, 1, 3, 2], 'int32'],
    ];
    const diffs = cases.map(([shape, reps, dtype], i) => compare('Tile', { x: { shape, dtype } }, { reps }, 300 + i));
    report('Tile', diffs);
    expect(Math.max(...diffs)).toBe(0);
  });
});

describe('patched wasm matmul', () => {
  const shapes: [number[], number[], boolean, boolean][] = [
    [[5, 7], [7, 3], false, false],
    [[7, 5], [7, 3], true, false],
    [[5, 7], [3, 7], false, true],
    [[7, 5], [3, 7], true, true],
    [[2, 4, 6], [2, 6, 3], false, false],
    [[2, 6, 4], [2, 3, 6], true, true],
    [[1, 64, 33], [1, 33, 10], false, false],
  ];

  it('BatchMatMul matches cpu for every transpose combination and batched inputs', () => {
    const diffs = shapes.map(([a, b, ta, tb], i) =>
      compare('BatchMatMul', { a: { shape: a }, b: { shape: b } }, { transposeA: ta, transposeB: tb }, 400 + i),
    );
    report('BatchMatMul', diffs);
    expect(Math.max(...diffs)).toBeLessThan(1e-5);
  });

  it('_FusedMatMul with bias and relu matches cpu for every transpose combination', () => {
    const diffs = shapes.map(([a, b, ta, tb], i) => {
      const n = tb ? b[b.length - 2]! : b[b.length - 1]!;
      return compare(
        '_FusedMatMul',
        { a: { shape: a }, b: { shape: b }, bias: { shape: [n] } },
        { transposeA: ta, transposeB: tb, activation: 'relu', leakyreluAlpha: 0 },
        500 + i,
      );
    });
    report('_FusedMatMul', diffs);
    expect(Math.max(...diffs)).toBeLessThan(1e-5);
  });

  it('gives the right product when the same data is reused under another shape (stock returns NaN)', () => {
    tf.setBackend('wasm');
    const results = tf.tidy(() => {
      const data = tf.tensor(values(24, 600), [4, 6]);
      const other = tf.tensor(values(36, 601), [6, 6]);
      const first = tf.matMul(tf.slice(other, [0, 0], [4, 6]), tf.reshape(data, [6, 4]));
      const second = tf.matMul(tf.ones([2, 4]), tf.reshape(data, [4, 6]));
      const third = tf.matMul(tf.ones([3, 8]), tf.reshape(data, [8, 3]));
      return [first, second, third].map((t) => ({ shape: t.shape, v: Array.from(t.dataSync()) }));
    });
    tf.setBackend('cpu');
    const expected = tf.tidy(() => {
      const data = tf.tensor(values(24, 600), [4, 6]);
      const other = tf.tensor(values(36, 601), [6, 6]);
      return [
        tf.matMul(tf.slice(other, [0, 0], [4, 6]), tf.reshape(data, [6, 4])),
        tf.matMul(tf.ones([2, 4]), tf.reshape(data, [4, 6])),
        tf.matMul(tf.ones([3, 8]), tf.reshape(data, [8, 3])),
      ].map((t) => Array.from(t.dataSync()));
    });
    let max = 0;
    results.forEach((r, i) => r.v.forEach((v, k) => (max = Math.max(max, Number.isNaN(v) ? Infinity : Math.abs(v - expected[i]![k]!)))));
    report('BatchMatMul reshaped reuse', [max]);
    expect(max).toBeLessThan(1e-5);
  });
});

describe('patched wasm Cast', () => {
  it('shares the data for a cast to the same dtype (the result outlives its input) and converts like cpu otherwise', () => {
    tf.setBackend('wasm');
    const x = tf.tensor(values(35, 7), [5, 7]);
    const want = Float32Array.from(x.dataSync() as Float32Array);
    const same = tf.cast(x, 'float32');
    x.dispose();
    expect(Float32Array.from(same.dataSync() as Float32Array)).toEqual(want);
    same.dispose();
    const conversions: ['float32' | 'int32' | 'bool', 'float32' | 'int32' | 'bool'][] = [
      ['float32', 'int32'],
      ['int32', 'float32'],
      // float32 -> bool is left out: stock wasm's Cast truncates (1.7 -> 1, 0.3 -> 0, -1 -> 255)
      // where cpu gives x != 0; the patch leaves real conversions to it, unchanged.
      ['bool', 'float32'],
      ['int32', 'int32'],
    ];
    for (const [from, to] of conversions) {
      const run = (backend: string): number[] => {
        tf.setBackend(backend);
        return tf.tidy(() => {
          const v = Array.from(values(13, 9), (a) => a * 3);
          const src = from === 'bool' ? tf.greater(tf.tensor(v), 0) : tf.tensor(v, [13], from);
          return Array.from(tf.cast(src, to).dataSync());
        });
      };
      expect(run('wasm'), `${from} -> ${to}`).toEqual(run('cpu'));
    }
  });
});

describe('fused FusedBatchNorm gradient (patched wasm)', () => {
  // Always with a scale: tfjs-core 4.22 cannot differentiate FusedBatchNorm without one (it saves
  // the missing input for the backward pass and fails, on every backend).
  interface BnCase {
    shape: number[];
    /** Statistics, scale and offset of x's shape instead of [C]: tfjs-core's gradient runs. */
    fullStats?: boolean;
  }
  const cases: BnCase[] = [
    { shape: [5, 7, 3, 6] },
    { shape: [1, 9, 11, 5] },
    { shape: [5, 4, 5, 33] },
    { shape: [64, 8, 8, 16] },
    { shape: [3, 5] },
    { shape: [2, 3, 4, 5], fullStats: true },
  ];
  const statShape = (c: BnCase): number[] => (c.fullStats === true ? c.shape : [c.shape.at(-1)!]);
  const stats = (c: BnCase, xv: tf.Tensor): { mean: tf.Tensor; variance: tf.Tensor } => {
    const { mean, variance } = tf.moments(xv, c.shape.slice(0, -1).map((_, i) => i), c.fullStats === true);
    return c.fullStats === true ? { mean: tf.broadcastTo(mean, c.shape), variance: tf.broadcastTo(variance, c.shape) } : { mean, variance };
  };

  /**
   * Gradients of sum(batchNorm(x) * w) with respect to x, scale and offset, with the statistics
   * from tf.moments inside the differentiated function (as tfjs-layers' batchNormalization in
   * training).
   */
  function bnGrads(backend: string, c: BnCase, seed: number): Float32Array[] {
    tf.setBackend(backend);
    const n = tf.util.sizeFromShape(c.shape);
    const x = tf.tensor(values(n, seed), c.shape);
    const w = tf.tensor(values(n, seed + 1), c.shape);
    const k = tf.util.sizeFromShape(statShape(c));
    const scale = tf.add(tf.tensor(values(k, seed + 2), statShape(c)), 1.5);
    const offset = tf.tensor(values(k, seed + 3), statShape(c));
    const loss = (xv: tf.Tensor, sv: tf.Tensor, ov: tf.Tensor): tf.Scalar => {
      const { mean, variance } = stats(c, xv);
      return tf.sum(tf.mul(tf.batchNorm(xv, mean, variance, ov, sv, 1e-3), w));
    };
    const grads = tf.grads(loss)([x, scale, offset]);
    const out = grads.map((g) => Float32Array.from(g.dataSync() as Float32Array));
    tf.dispose([x, w, scale, offset, ...grads]);
    return out;
  }

  async function kernelsOf(c: BnCase): Promise<string[]> {
    tf.setBackend('wasm');
    const x = tf.tensor(values(tf.util.sizeFromShape(c.shape), 1), c.shape);
    const profile = await tf.profile(() => {
      const g = tf.grad((xv: tf.Tensor) => {
        const { mean, variance } = stats(c, xv);
        return tf.sum(tf.batchNorm(xv, mean, variance, tf.zeros(statShape(c)), tf.ones(statShape(c)), 1e-3));
      })(x);
      return g;
    });
    x.dispose();
    return profile.kernelNames;
  }

  function maxRelDiff(want: Float32Array[], got: Float32Array[]): number {
    let worst = 0;
    want.forEach((w, i) => {
      const mag = Math.max(1, ...Array.from(w, Math.abs));
      w.forEach((v, k) => (worst = Math.max(worst, Math.abs(v - got[i]![k]!) / mag)));
    });
    return worst;
  }

  it('forward: matches cpu for per-channel statistics with and without scale/offset, batch 1 and 5, rank 2 and 4, and for full-shape statistics (stock kernel)', () => {
    const fwd: { shape: number[]; scale: boolean; offset: boolean; full?: boolean }[] = [
      { shape: [5, 7, 3, 6], scale: true, offset: true },
      { shape: [1, 9, 11, 5], scale: false, offset: true },
      { shape: [5, 4, 5, 33], scale: true, offset: false },
      { shape: [3, 5], scale: false, offset: false },
      { shape: [2, 3, 4, 5], scale: true, offset: true, full: true },
    ];
    const diffs = fwd.map((c, i) => {
      const run = (backend: string): Float32Array => {
        tf.setBackend(backend);
        return tf.tidy(() => {
          const k = c.full === true ? tf.util.sizeFromShape(c.shape) : c.shape.at(-1)!;
          const vec = (seed: number, shift: number): tf.Tensor => tf.add(tf.tensor(values(k, seed), c.full === true ? c.shape : [k]), shift);
          const x = tf.mul(tf.tensor(values(tf.util.sizeFromShape(c.shape), 60 + i), c.shape), 3);
          const y = tf.batchNorm(x, vec(61 + i, 0.5), vec(62 + i, 1.5), c.offset ? vec(63 + i, 0) : undefined, c.scale ? vec(64 + i, 0) : undefined, 1e-3);
          return Float32Array.from(y.dataSync() as Float32Array);
        });
      };
      const want = run('cpu');
      const got = run('wasm');
      return Math.max(...Array.from(want, (v, k) => Math.abs(v - got[k]!)));
    });
    report('FusedBatchNorm forward', diffs);
    expect(Math.max(...diffs)).toBeLessThan(1e-5);
  });

  it('gives the cpu backend\'s dx, dScale and dOffset through tf.moments, batch 1, 5 and 64, rank 2 and 4, odd sizes, OpenBLAS off and on', () => {
    const modes: ('off' | 'on')[] = loadBlas().ok ? ['off', 'on'] : ['off'];
    const diffs: number[] = [];
    try {
      for (const mode of modes) {
        enableBlasKernels(mode);
        cases.forEach((c, i) => diffs.push(maxRelDiff(bnGrads('cpu', c, 40 + i), bnGrads('wasm', c, 40 + i))));
      }
    } finally {
      enableBlasKernels('off');
    }
    report('FusedBatchNorm gradient', diffs);
    expect(Math.max(...diffs)).toBeLessThan(1e-4);
  });

  it('Mean gradient (tf.moments backward): dy / n broadcast by Tile, bit-identical to cpu, any axes and keepDims', () => {
    const cases: [number[], number | number[], boolean][] = [
      [[5, 7, 3, 6], [0, 1, 2], false],
      [[1, 9, 11, 5], [0, 1, 2], true],
      [[4, 6], 0, false],
      [[3, 4, 5], [1], true],
      [[3, 4, 5], [0, 2], false],
      [[2, 3, 4], [0, 1, 2], false],
    ];
    for (const [shape, axis, keepDims] of cases) {
      const grad = (backend: string): number[] => {
        tf.setBackend(backend);
        return tf.tidy(() => {
          const x = tf.tensor(values(tf.util.sizeFromShape(shape), 70), shape);
          const w = tf.tensor(values(tf.util.sizeFromShape(tf.mean(x, axis, keepDims).shape), 71), tf.mean(x, axis, keepDims).shape);
          return Array.from(tf.grad((v: tf.Tensor) => tf.sum(tf.mul(tf.mean(v, axis, keepDims), w)))(x).dataSync());
        });
      };
      expect(grad('wasm'), `${shape} axis ${String(axis)}`).toEqual(grad('cpu'));
    }
  });

  it('runs as one kernel for per-channel statistics and leaves other statistics to tfjs-core\'s gradient', async () => {
    expect(await kernelsOf(cases[0]!)).toContain(BATCH_NORM_GRAD_KERNEL);
    expect(await kernelsOf(cases[5]!)).not.toContain(BATCH_NORM_GRAD_KERNEL);
  });
});

describe('skipInputGradient (patched wasm)', () => {
  /** d/dx and d/dw of sum(relu-free fused conv), as flat arrays. */
  function convGrads(mark: boolean, alsoUnmarked = false): { dx: Float32Array; dw: Float32Array } {
    tf.setBackend('wasm');
    return tf.tidy(() => {
      const x = tf.tensor(values(2 * 6 * 5 * 3, 901), [2, 6, 5, 3]) as tf.Tensor4D;
      const other = tf.tensor(values(2 * 6 * 5 * 3, 902), [2, 6, 5, 3]) as tf.Tensor4D;
      const w = tf.tensor(values(3 * 3 * 3 * 4, 903), [3, 3, 3, 4]) as tf.Tensor4D;
      const bias = tf.tensor(values(4, 904), [4]) as tf.Tensor1D;
      const release = mark ? skipInputGradient(x) : () => undefined;
      try {
        const [dx, dw] = tf.grads((xx: tf.Tensor, ww: tf.Tensor) => {
          const y = tf.fused.conv2d({ x: xx as tf.Tensor4D, filter: ww as tf.Tensor4D, bias, strides: 1, pad: 'same' });
          const extra = alsoUnmarked ? tf.sum(tf.fused.conv2d({ x: other, filter: ww as tf.Tensor4D, bias, strides: 1, pad: 'same' })) : tf.scalar(0);
          return tf.add(tf.sum(tf.mul(y, y)), extra);
        })([x, w]);
        return { dx: Float32Array.from(dx!.dataSync()), dw: Float32Array.from(dw!.dataSync()) };
      } finally {
        release();
      }
    });
  }

  it('skips the input gradient of a marked batch (zeros stand in) and leaves the filter gradient exact', () => {
    const full = convGrads(false);
    const skipped = convGrads(true);
    // The marked tensor's gradient is the stand-in: this proves the shortcut ran. Real callers
    // never read it (FedModel differentiates variables only).
    expect(skipped.dx.every((v) => v === 0)).toBe(true);
    expect(full.dx.some((v) => v !== 0)).toBe(true);
    expect(Array.from(skipped.dw)).toEqual(Array.from(full.dw));
  });

  it('skips nothing once released, or when the filter also meets an unmarked input of that shape', () => {
    convGrads(true);
    const after = convGrads(false);
    expect(after.dx.some((v) => v !== 0)).toBe(true);
    const shared = convGrads(true, true);
    expect(shared.dx.some((v) => v !== 0)).toBe(true);
  });
});
