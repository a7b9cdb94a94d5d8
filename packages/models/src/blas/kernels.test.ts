import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import * as tfl from '@tensorflow/tfjs-layers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sourceNodeFlags } from '../../../../tests/source-node.js';
import { selectBackend } from '../backend.js';
import { initWasmBackend } from '../wasm/index.js';
import { blasConvTuning, inputGradMode } from './conv-kernels.js';
import { im2colBlockFloats } from './im2col.js';
import { coreTypeFromCpuinfo, loadBlas } from './library.js';
import { blasStatus, enableBlasKernels, setBlasThreads } from './openblas.js';

type Attrs = Record<string, unknown>;

/** Deterministic values in [-1, 1). */
function values(n: number, seed: number): Float32Array {
  let s = seed >>> 0 || 1;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 2 ** 31 - 1;
  }
  return out;
}

function runOn(backend: string, kernel: string, inputs: Record<string, number[]>, attrs: Attrs, seed: number): { data: Float32Array; shape: number[] } {
  tf.setBackend(backend);
  return tf.tidy(() => {
    const ins: Record<string, tf.Tensor> = {};
    let k = 0;
    for (const [name, shape] of Object.entries(inputs)) ins[name] = tf.tensor(values(tf.util.sizeFromShape(shape), seed * 31 + k++), shape);
    const out = tf.engine().runKernel(kernel, ins as never, attrs as never) as tf.Tensor;
    return { data: Float32Array.from(out.dataSync() as Float32Array), shape: out.shape };
  });
}

/** max |wasm - cpu| / max(1, max |cpu|) of one kernel call on identical inputs. */
function relDiff(kernel: string, inputs: Record<string, number[]>, attrs: Attrs, seed: number): number {
  const want = runOn('cpu', kernel, inputs, attrs, seed);
  const got = runOn('wasm', kernel, inputs, attrs, seed);
  expect(got.shape).toEqual(want.shape);
  let max = 0;
  let mag = 1;
  for (let i = 0; i < want.data.length; i++) {
    const d = Math.abs(want.data[i]! - got.data[i]!);
    if (!(d <= max)) max = Number.isNaN(d) ? Infinity : d;
    mag = Math.max(mag, Math.abs(want.data[i]!));
  }
  return max / mag;
}

function report(name: string, diffs: number[]): void {
  process.stdout.write(`[openblas] ${name}: ${diffs.length} cases, max relative |wasm - cpu| = ${Math.max(...diffs).toExponential(2)}\n`);
}

type Explicit = [[number, number], [number, number], [number, number], [number, number]];
type PadSpec = 'same' | 'valid' | number | Explicit;
interface ConvCase {
  b: number;
  h: number;
  w: number;
  ci: number;
  co: number;
  k: number;
  s: number;
  pad: PadSpec;
}

const convCases: ConvCase[] = [];
for (const s of [1, 2]) {
  for (const pad of ['same', 'valid', 1] as PadSpec[]) {
    convCases.push({ b: 1, h: 7, w: 5, ci: 3, co: 4, k: 3, s, pad });
    convCases.push({ b: 5, h: 9, w: 8, ci: 1, co: 6, k: 5, s, pad });
    convCases.push({ b: 5, h: 6, w: 7, ci: 32, co: 3, k: 3, s, pad });
  }
}
convCases.push({ b: 2, h: 5, w: 5, ci: 4, co: 7, k: 1, s: 1, pad: 'valid' });
convCases.push({ b: 3, h: 9, w: 9, ci: 3, co: 2, k: 3, s: 2, pad: 2 });
// Asymmetric explicit padding (the array form), both strides.
for (const s of [1, 2]) convCases.push({ b: 2, h: 8, w: 7, ci: 16, co: 5, k: 3, s, pad: [[0, 0], [1, 2], [0, 1], [0, 0]] });

function outSize(n: number, k: number, s: number, pad: PadSpec, axis: 1 | 2): number {
  if (pad === 'same') return Math.ceil(n / s);
  if (pad === 'valid') return Math.ceil((n - k + 1) / s);
  const total = typeof pad === 'number' ? 2 * pad : pad[axis][0] + pad[axis][1];
  return Math.floor((n + total - k) / s) + 1;
}

const dyShape = (c: ConvCase): number[] => [c.b, outSize(c.h, c.k, c.s, c.pad, 1), outSize(c.w, c.k, c.s, c.pad, 2), c.co];
const convAttrs = (c: ConvCase): Attrs => ({ strides: [c.s, c.s], pad: c.pad, dataFormat: 'NHWC', dilations: [1, 1] });

/** Every conv kernel on every case; with a tiny im2col block so batches span several GEMMs. */
function convDiffs(kernel: string): number[] {
  return convCases.map((c, i) => {
    const x = [c.b, c.h, c.w, c.ci];
    const f = [c.k, c.k, c.ci, c.co];
    if (kernel === 'Conv2D') return relDiff(kernel, { x, filter: f }, convAttrs(c), i + 1);
    if (kernel === 'FusedConv2D') return relDiff(kernel, { x, filter: f, bias: [c.co] }, { ...convAttrs(c), activation: 'relu' }, i + 1);
    if (kernel === 'Conv2DBackpropFilter') return relDiff(kernel, { x, dy: dyShape(c) }, { ...convAttrs(c), filterShape: f }, i + 1);
    return relDiff(kernel, { dy: dyShape(c), filter: f }, { ...convAttrs(c), inputShape: x }, i + 1);
  });
}

const loaded = loadBlas();
const skipReason = loaded.ok ? '' : `OpenBLAS path unavailable here (${loaded.reason})`;
if (!loaded.ok) process.stdout.write(`[openblas] skipping: ${skipReason}\n`);

beforeAll(async () => {
  await initWasmBackend();
  if (loaded.ok) expect(enableBlasKernels('on').active).toBe(true);
});

afterAll(() => {
  tf.setBackend('wasm');
});

describe.skipIf(!loaded.ok)('OpenBLAS convolution kernels', () => {
  for (const kernel of ['Conv2D', 'FusedConv2D', 'Conv2DBackpropFilter', 'Conv2DBackpropInput']) {
    it(`${kernel} matches cpu over strides 1/2, same/valid/explicit (symmetric and asymmetric) padding, odd sizes, channels 1/3/32, batch 1/5`, () => {
      const saved = { block: im2colBlockFloats.value, min: blasConvTuning.minOutChannels };
      try {
        // Default tuning (narrow layers on XNNPACK), then every case on OpenBLAS, whole and in
        // one-image blocks, and for the input gradient both formulations.
        const tuned = convDiffs(kernel);
        blasConvTuning.minOutChannels = 1;
        const whole = convDiffs(kernel);
        im2colBlockFloats.value = 1;
        const blocked = convDiffs(kernel);
        const other: number[] = [];
        for (const mode of ['conv', 'col2im'] as const) {
          inputGradMode.value = mode;
          if (kernel === 'Conv2DBackpropInput') other.push(...convDiffs(kernel));
        }
        report(kernel, [...tuned, ...whole, ...blocked, ...other]);
        expect(Math.max(...tuned, ...whole, ...blocked, ...other)).toBeLessThanOrEqual(1e-4);
      } finally {
        im2colBlockFloats.value = saved.block;
        blasConvTuning.minOutChannels = saved.min;
        inputGradMode.value = 'auto';
      }
    });
  }

  it('falls back to the XNNPACK kernels for dilation and unsupported fused activations, still matching cpu', () => {
    const x = [2, 9, 9, 3];
    const filter = [3, 3, 3, 4];
    const dilated = relDiff('Conv2D', { x, filter }, { strides: 1, pad: 'same', dilations: [2, 2], dataFormat: 'NHWC' }, 3);
    const elu = relDiff('FusedConv2D', { x, filter, bias: [4] }, { strides: 1, pad: 'valid', dilations: 1, dataFormat: 'NHWC', activation: 'elu' }, 4);
    expect(Math.max(dilated, elu)).toBeLessThanOrEqual(1e-4);
  });

  it('gives gradients of a conv2d + bias + relu loss like cpu (tf.grads through the fused kernel)', () => {
    const grads = (backend: string): Float32Array[] => {
      tf.setBackend(backend);
      return tf.tidy(() => {
        const x = tf.tensor(values(5 * 8 * 7 * 3, 11), [5, 8, 7, 3]);
        const w = tf.tensor(values(3 * 3 * 3 * 8, 12), [3, 3, 3, 8]);
        const b = tf.tensor(values(8, 13), [8]);
        const loss = (xx: tf.Tensor, ww: tf.Tensor, bb: tf.Tensor): tf.Scalar =>
          tf.sum(tf.square(tf.fused.conv2d({ x: xx as tf.Tensor4D, filter: ww as tf.Tensor4D, bias: bb, strides: 2, pad: 'same', activation: 'relu' })));
        return tf.grads(loss)([x, w, b]).map((g) => Float32Array.from(g.dataSync() as Float32Array));
      });
    };
    const want = grads('cpu');
    const got = grads('wasm');
    want.forEach((g, i) => g.forEach((v, k) => expect(Math.abs(v - got[i]![k]!)).toBeLessThanOrEqual(1e-4 * Math.max(1, Math.abs(v)))));
  });

  it('gives bit-identical outputs with 1 and 2 OpenBLAS threads on the benchmark conv shapes', () => {
    const shapes = [
      { x: [64, 28, 28, 1], filter: [3, 3, 1, 32], dy: [64, 28, 28, 32] },
      { x: [64, 14, 14, 32], filter: [3, 3, 32, 64], dy: [64, 14, 14, 64] },
    ];
    const outputs = (threads: number): Float32Array[] => {
      setBlasThreads(threads);
      const dense = [
        runOn('wasm', 'BatchMatMul', { a: [64, 3136], b: [3136, 128] }, {}, 5).data,
        runOn('wasm', 'BatchMatMul', { a: [3136, 64], b: [64, 128] }, { transposeA: false }, 6).data,
        runOn('wasm', 'BatchMatMul', { a: [64, 3136], b: [64, 128] }, { transposeA: true }, 7).data,
      ];
      return [...dense, ...shapes.flatMap((s, i) => {
        const attrs = { strides: 1, pad: 'same', dataFormat: 'NHWC', dilations: 1 };
        return [
          runOn('wasm', 'Conv2D', { x: s.x, filter: s.filter }, attrs, i + 1).data,
          runOn('wasm', 'Conv2DBackpropFilter', { x: s.x, dy: s.dy }, { ...attrs, filterShape: s.filter }, i + 1).data,
          runOn('wasm', 'Conv2DBackpropInput', { dy: s.dy, filter: s.filter }, { ...attrs, inputShape: s.x }, i + 1).data,
        ];
      })];
    };
    try {
      const one = outputs(1);
      const two = outputs(2);
      const differing = one.map((o, i) => o.filter((v, k) => v !== two[i]![k]).length);
      process.stdout.write(`[openblas] 1 vs 2 threads: differing elements per output ${JSON.stringify(differing)}\n`);
      expect(differing.every((n) => n === 0)).toBe(true);
    } finally {
      setBlasThreads(1);
    }
  });
});

describe.skipIf(!loaded.ok)('OpenBLAS matmul kernels', () => {
  const cases = [
    { a: [5, 7], b: [7, 3] },
    { a: [1, 9, 4], b: [1, 4, 6] },
    { a: [3, 6, 5], b: [3, 5, 2] },
    { a: [3, 6, 5], b: [1, 5, 2] },
    { a: [1, 6, 5], b: [4, 5, 2] },
    { a: [64, 3136], b: [3136, 128] },
  ];
  const transposed = (shape: number[], t: boolean): number[] => (t ? [...shape.slice(0, -2), shape.at(-1)!, shape.at(-2)!] : shape);

  function diffs(kernel: string, fusedAttrs: Attrs): number[] {
    const out: number[] = [];
    let seed = 1;
    for (const c of cases) {
      for (const ta of [false, true]) {
        for (const tb of [false, true]) {
          const inputs: Record<string, number[]> = { a: transposed(c.a, ta), b: transposed(c.b, tb) };
          if (kernel === '_FusedMatMul') inputs['bias'] = [c.b.at(-1)!];
          out.push(relDiff(kernel, inputs, { transposeA: ta, transposeB: tb, ...fusedAttrs }, seed++));
        }
      }
    }
    return out;
  }

  it('BatchMatMul matches cpu for every transpose combination and batched / broadcast inputs', () => {
    const d = diffs('BatchMatMul', {});
    report('BatchMatMul', d);
    expect(Math.max(...d)).toBeLessThanOrEqual(1e-4);
  });

  it('_FusedMatMul with bias and relu (and linear) matches cpu for every transpose combination', () => {
    const d = [...diffs('_FusedMatMul', { activation: 'relu' }), ...diffs('_FusedMatMul', { activation: 'linear' })];
    report('_FusedMatMul', d);
    expect(Math.max(...d)).toBeLessThanOrEqual(1e-4);
  });
});

describe.skipIf(!loaded.ok)('OpenBLAS Sum and Mean (leading axes)', () => {
  const cases: [number[], number | number[], boolean][] = [
    [[64, 28, 28, 32], [0, 1, 2], false], // fmnist_cnn's bias gradient: reduction split into chunks
    [[5, 9, 7, 13], [0, 1, 2], true],
    [[1, 11, 13, 33], [0, 1, 2], false],
    [[5, 4, 3, 512], [0, 1, 2], false],
    [[300, 17], 0, false],
    [[257, 3, 7], [0, 1], true],
    [[16, 5, 6], [0, 2], false], // not leading: the previous kernel
    [[9, 700], 1, false], // not leading: the previous kernel
    [[7, 3], 0, false], // small: the previous kernel
  ];

  it('match cpu (bias gradients, batch-norm moments), odd sizes, batch 1 and 5, keepDims; other axes fall back', () => {
    const d = cases.flatMap(([x, axis, keepDims], i) => ['Sum', 'Mean'].map((k) => relDiff(k, { x }, { axis, keepDims }, 900 + i)));
    report('Sum/Mean', d);
    // Sums of up to 50176 values in [-1, 1): float32 chunked accumulation vs cpu's float64.
    expect(Math.max(...d)).toBeLessThanOrEqual(1e-4);
  });

  it('gives bit-identical sums with 1 and 2 OpenBLAS threads', () => {
    const outputs = (threads: number): Float32Array[] => {
      setBlasThreads(threads);
      return cases.slice(0, 6).flatMap(([x, axis], i) => ['Sum', 'Mean'].map((k) => runOn('wasm', k, { x }, { axis }, 950 + i).data));
    };
    try {
      const one = outputs(1);
      const two = outputs(2);
      expect(one.map((o, i) => o.filter((v, k) => v !== two[i]![k]).length)).toEqual(one.map(() => 0));
    } finally {
      setBlasThreads(1);
    }
  });
});

function lcg(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

/** LeNet-5 (NIID-Bench's MNIST CNN) on 28x28x1. */
function lenet(): tfl.LayersModel {
  const m = tfl.sequential();
  m.add(tfl.layers.conv2d({ inputShape: [28, 28, 1], filters: 6, kernelSize: 5, activation: 'relu' }));
  m.add(tfl.layers.maxPooling2d({ poolSize: 2, strides: 2 }));
  m.add(tfl.layers.conv2d({ filters: 16, kernelSize: 5, activation: 'relu' }));
  m.add(tfl.layers.maxPooling2d({ poolSize: 2, strides: 2 }));
  m.add(tfl.layers.flatten());
  m.add(tfl.layers.dense({ units: 120, activation: 'relu' }));
  m.add(tfl.layers.dense({ units: 84, activation: 'relu' }));
  m.add(tfl.layers.dense({ units: 10, activation: 'softmax' }));
  return m;
}

async function trainLenet(backend: string, init: Float32Array[] | null): Promise<Float32Array[]> {
  tf.setBackend(backend);
  const m = lenet();
  if (init != null) m.setWeights(m.getWeights().map((w, i) => tf.tensor(init[i]!, w.shape)));
  m.compile({ optimizer: tf.train.sgd(0.05), loss: 'categoricalCrossentropy' });
  const rnd = lcg(5);
  const x = tf.tensor(Float32Array.from({ length: 8 * 28 * 28 }, () => rnd()), [8, 28, 28, 1]);
  const y = tf.oneHot(tf.tensor1d([0, 1, 2, 3, 4, 5, 6, 7], 'int32'), 10);
  if (init != null) for (let step = 0; step < 3; step++) await m.trainOnBatch(x, y);
  const out = m.getWeights().map((w) => Float32Array.from(w.dataSync() as Float32Array));
  tf.dispose([x, y]);
  m.dispose();
  return out;
}

describe.skipIf(!loaded.ok)('training on the OpenBLAS kernels', () => {
  it('lenet: 3 SGD steps from identical weights give the cpu backend\'s weights', async () => {
    expect(blasStatus().active).toBe(true);
    const init = await trainLenet('cpu', null);
    const cpu = await trainLenet('cpu', init);
    // LeNet's layers are narrow (6 and 16 filters): put them on OpenBLAS too, not XNNPACK.
    const saved = blasConvTuning.minOutChannels;
    blasConvTuning.minOutChannels = 1;
    const blas = await trainLenet('wasm', init).finally(() => (blasConvTuning.minOutChannels = saved));
    let max = 0;
    let moved = 0;
    cpu.forEach((w, i) =>
      w.forEach((v, k) => {
        max = Math.max(max, Math.abs(v - blas[i]![k]!));
        moved = Math.max(moved, Math.abs(v - init[i]![k]!));
      }),
    );
    process.stdout.write(`[openblas] lenet 3 SGD steps: max |w_blas - w_cpu| = ${max.toExponential(2)} (max weight change ${moved.toExponential(2)})\n`);
    expect(moved).toBeGreaterThan(1e-3);
    expect(max).toBeLessThan(1e-5);
  });
});

describe('OpenBLAS core type', () => {
  it('is chosen from the cpuinfo flags: avx512f -> SkylakeX, avx2+fma -> Haswell, else left to OpenBLAS', () => {
    expect(coreTypeFromCpuinfo('processor\t: 0\nflags\t\t: fpu sse2 avx2 fma avx512f avx512bw\n')).toBe('SkylakeX');
    expect(coreTypeFromCpuinfo('flags\t\t: fpu sse2 avx avx2 fma\n')).toBe('Haswell');
    expect(coreTypeFromCpuinfo('flags\t\t: fpu sse2 avx avx2\n')).toBeUndefined();
    expect(coreTypeFromCpuinfo('')).toBeUndefined();
  });

  it.skipIf(!loaded.ok)('takes effect: OpenBLAS runs the core chosen for this CPU (openblas_get_config)', () => {
    const chosen = loaded.ok ? loaded.lib.coreTypeSetByUs : undefined;
    if (chosen === undefined) return; // the user set OPENBLAS_CORETYPE, or no flags matched
    expect(blasStatus()).toMatchObject({ coreType: chosen, reason: `OPENBLAS_CORETYPE=${chosen} chosen from /proc/cpuinfo flags` });
  });
});

describe('OpenBLAS mode switches', () => {
  it("'on' without the library throws naming OIAFED_OPENBLAS and libopenblas0-pthread; 'auto' falls back with the reason", () => {
    const here = fileURLToPath(new URL('./openblas.ts', import.meta.url));
    const backendTs = fileURLToPath(new URL('../backend.ts', import.meta.url));
    const script = [
      `const { enableBlasKernels } = await import(${JSON.stringify(here)});`,
      `const auto = enableBlasKernels('auto');`,
      `let err = '';`,
      `try { enableBlasKernels('on'); } catch (e) { err = e.message; }`,
      `const { selectBackend } = await import(${JSON.stringify(backendTs)});`,
      `let selectErr = '';`,
      `const info = await selectBackend('cpu', { blas: 'auto' });`,
      `try { await selectBackend('cpu', { blas: 'on' }); } catch (e) { selectErr = e.name + ': ' + e.message; }`,
      `process.stdout.write(JSON.stringify({ auto, err, kernels: info.kernels, selectErr }));`,
    ].join('\n');
    const res = spawnSync(process.execPath, [...sourceNodeFlags(), '--input-type=module', '-e', script], {
      env: { ...process.env, OIAFED_OPENBLAS: '/nonexistent/libopenblas.so', OIAFED_BLAS: '' },
      encoding: 'utf8',
    });
    expect(res.status, res.stderr).toBe(0);
    const out = JSON.parse(res.stdout) as { auto: { active: boolean; reason: string }; err: string; kernels: string; selectErr: string };
    expect(out.kernels).toBe('xnnpack');
    expect(out.selectErr).toMatch(/^BackendUnavailableError: .*OIAFED_OPENBLAS/);
    expect(out.auto.active).toBe(false);
    expect(out.auto.reason).toMatch(/nonexistent|koffi/);
    expect(out.err).toMatch(/OIAFED_OPENBLAS/);
    expect(out.err).toMatch(/libopenblas0-pthread/);
  });

  it.skipIf(!loaded.ok)('selectBackend names the kernel path in BackendInfo.kernels and applies its blas option', async () => {
    try {
      expect((await selectBackend('cpu', { blas: 'off' })).kernels).toBe('xnnpack');
      expect(blasStatus().active).toBe(false);
      const info = await selectBackend('cpu', { blas: 'on' });
      expect(info.kernels).toMatch(/^openblas \(\w+, 1 thread\)$/);
      expect(info.detail).toContain(info.kernels);
    } finally {
      enableBlasKernels('on');
    }
  });

  it.skipIf(!loaded.ok)("'off' restores the XNNPACK kernels and 'on' puts OpenBLAS back", () => {
    const conv = (): Float32Array => runOn('wasm', 'Conv2D', { x: [2, 6, 6, 3], filter: [3, 3, 3, 4] }, { strides: 1, pad: 'same', dataFormat: 'NHWC', dilations: 1 }, 9).data;
    try {
      expect(enableBlasKernels('off').active).toBe(false);
      const xnn = conv();
      const st = enableBlasKernels('on');
      expect(st).toMatchObject({ active: true, threads: 1 });
      const blas = conv();
      xnn.forEach((v, i) => expect(Math.abs(v - blas[i]!)).toBeLessThan(1e-4));
    } finally {
      enableBlasKernels('on');
    }
  });
});
