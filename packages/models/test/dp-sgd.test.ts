import * as tfl from '@tensorflow/tfjs-layers';
import { beforeAll, describe, expect, it } from 'vitest';
import { FedModel, type DataSource, type TrainOptions } from '../src/index.js';
import { lcg, useCpuBackend } from './helpers.js';

beforeAll(useCpuBackend);

/** A linear softmax model z = xW + b (kernel [d, k] row-major, then bias) with zero weights. */
function linear(d: number, k: number, name: string): FedModel {
  const m = tfl.sequential();
  m.add(tfl.layers.dense({ name: `${name}_fc`, units: k, inputShape: [d], kernelInitializer: 'zeros', biasInitializer: 'zeros' }));
  return new FedModel(name, m);
}

function data(rows: number[][], labels: number[], numClasses: number): DataSource {
  return { features: Float32Array.from(rows.flat()), labels: Int32Array.from(labels), sampleShape: [rows[0]!.length], numClasses, length: rows.length };
}

const dpSgd = (clipNorm: number, noiseMultiplier: number, extra: Partial<TrainOptions> = {}): TrainOptions => ({
  epochs: 1,
  batchSize: 2,
  lr: 1,
  optimizer: 'sgd',
  seed: 1,
  dpSgd: { clipNorm, noiseMultiplier, noiseSeed: 5 },
  ...extra,
});

/** Float64 reference: per-example gradients of softmax cross-entropy of z = xW + b, each clipped to C, summed. */
function clippedSum(ds: DataSource, W: Float64Array, b: Float64Array, k: number, C: number): Float64Array {
  const d = ds.sampleShape[0]!;
  const sum = new Float64Array(d * k + k);
  for (let n = 0; n < ds.length; n++) {
    const x = Array.from(ds.features.subarray(n * d, (n + 1) * d));
    const z = Array.from({ length: k }, (_, c) => b[c]! + x.reduce((s, xj, j) => s + xj * W[j * k + c]!, 0));
    const zmax = Math.max(...z);
    const e = z.map((v) => Math.exp(v - zmax));
    const p = e.map((v) => v / e.reduce((s, u) => s + u, 0));
    const r = p.map((pc, c) => pc - (c === ds.labels[n] ? 1 : 0));
    const g = [...x.flatMap((xj) => r.map((rc) => xj * rc)), ...r];
    const norm = Math.sqrt(g.reduce((s, v) => s + v * v, 0));
    const scale = Math.min(1, C / norm);
    g.forEach((v, i) => (sum[i] += v * scale));
  }
  return sum;
}

describe('DP-SGD: per-example clipping (Abadi et al. 2016)', () => {
  it('one lot of two examples, by hand: the long gradient (norm sqrt 13) is clipped to 1, the short one (norm sqrt .505) is not', async () => {
    const model = linear(2, 2, 'hand');
    // At zero weights p = (0.5, 0.5). Example (3, 4) of class 0: dW = x (p - y) = [[-1.5, 1.5], [-2, 2]], db = [-0.5, 0.5], |g|^2 = 13.
    // Example (0.1, 0) of class 1: dW = [[0.05, -0.05], [0, 0]], db = [0.5, -0.5], |g|^2 = 0.505.
    await model.train(data([[3, 4], [0.1, 0]], [0, 1], 2), dpSgd(1, 0));
    const s = 1 / Math.sqrt(13);
    const g = [-1.5 * s + 0.05, 1.5 * s - 0.05, -2 * s, 2 * s, -0.5 * s + 0.5, 0.5 * s - 0.5];
    const expected = g.map((v) => -v / 2); // lr 1, divided by the lot size 2
    Array.from(model.getWeights()).forEach((w, i) => expect(w).toBeCloseTo(expected[i]!, 6));
  });

  it('matches a float64 reference of clip-then-sum over a lot of 8 random examples at random weights', async () => {
    const d = 3;
    const k = 3;
    const rand = lcg(11);
    const model = linear(d, k, 'ref');
    const start = Float32Array.from({ length: d * k + k }, () => rand() - 0.5);
    model.setWeights(start);
    const rows = Array.from({ length: 8 }, () => Array.from({ length: d }, () => (rand() - 0.5) * 6));
    const ds = data(rows, rows.map((_, n) => n % k), k);
    await model.train(ds, dpSgd(0.5, 0, { batchSize: 8, lr: 0.3 }));
    const sum = clippedSum(ds, Float64Array.from(start.subarray(0, d * k)), Float64Array.from(start.subarray(d * k)), k, 0.5);
    const after = model.getWeights();
    for (let i = 0; i < start.length; i++) expect(after[i]).toBeCloseTo(start[i]! - (0.3 * sum[i]!) / 8, 5);
  });

  it('adds noise of std noise_multiplier * C to the lot sum: after one step lr * sigma * C / L per weight (1020 weights)', async () => {
    const rand = lcg(3);
    const rows = Array.from({ length: 4 }, () => Array.from({ length: 50 }, () => rand() - 0.5));
    const ds = data(rows, [0, 1, 2, 3], 20);
    const quiet = linear(50, 20, 'quiet');
    const noisy = linear(50, 20, 'noisy');
    await quiet.train(ds, dpSgd(1, 0, { batchSize: 4 }));
    await noisy.train(ds, dpSgd(1, 2, { batchSize: 4 }));
    const a = quiet.getWeights();
    const b = noisy.getWeights();
    let sq = 0;
    for (let i = 0; i < a.length; i++) sq += (b[i]! - a[i]!) ** 2;
    const std = Math.sqrt(sq / a.length);
    expect(Math.abs(std - (1 * 2 * 1) / 4) / 0.5).toBeLessThan(0.1);
  });

  it('counts one optimizer step per lot, the last one short', async () => {
    const rows = Array.from({ length: 5 }, (_, n) => [n, 1]);
    const result = await linear(2, 2, 'steps').train(data(rows, [0, 1, 0, 1, 0], 2), dpSgd(1, 1, { batchSize: 2, epochs: 2 }));
    expect(result.steps).toBe(6);
    expect(result.numSamples).toBe(5);
  });

  it('refuses a model with batch normalization, which mixes the examples of a lot', async () => {
    const m = tfl.sequential();
    m.add(tfl.layers.dense({ name: 'bn_fc', units: 2, inputShape: [2] }));
    m.add(tfl.layers.batchNormalization({ name: 'bn_bn' }));
    await expect(new FedModel('bn', m).train(data([[1, 2]], [0], 2), dpSgd(1, 1))).rejects.toThrow(/batch normalization/);
  });
});
