import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { createModel, type DataSource, type FedModel, type StepTerm, type TrainOptions } from '../src/index.js';
import { lcg, useCpuBackend } from './helpers.js';

beforeAll(useCpuBackend);

/**
 * A tiny MLP (3 inputs, hidden 4 relu, 3 classes) and a float64 reference of its forward pass,
 * so each step term's update is checked against a gradient computed here by central differences
 * of the term's formula, written out by hand.
 */
const D = 3;
const H = 4;
const K = 3;
const data: DataSource = {
  features: new Float32Array([0.5, -1, 2, 1.5, 0.3, -0.7, -1.2, 0.8, 0.1, 0.2, 0.9, -0.4, 1.1, -0.6, 0.7, -0.3, -0.2, 1.4]),
  labels: new Int32Array([0, 1, 2, 1, 0, 1]),
  sampleShape: [D],
  numClasses: K,
  length: 6,
};

function tinyModel(): { model: FedModel; w0: Float32Array } {
  const model = createModel({ type: 'mlp', args: { input_shape: [D], num_classes: K, hidden: [H] } });
  const rand = lcg(7);
  const w0 = Float32Array.from({ length: model.numParams }, () => rand() - 0.5);
  model.setWeights(w0);
  return { model, w0 };
}

/** fc1 kernel [D,H], fc1 bias [H], fc2 kernel [H,K], fc2 bias [K] (the layout order). */
function forward(w: ArrayLike<number>, x: ArrayLike<number>): { z: number[]; logits: number[] } {
  const z = Array.from({ length: H }, (_, j) => Math.max(0, w[D * H + j]! + Array.from({ length: D }, (_, i) => x[i]! * w[i * H + j]!).reduce((a, b) => a + b)));
  const o = D * H + H;
  const logits = Array.from({ length: K }, (_, c) => w[o + H * K + c]! + z.reduce((s, zj, j) => s + zj * w[o + j * K + c]!, 0));
  return { z, logits };
}

function logSoftmax(v: number[]): number[] {
  const m = Math.max(...v);
  const lse = m + Math.log(v.reduce((s, x) => s + Math.exp(x - m), 0));
  return v.map((x) => x - lse);
}

const sample = (i: number) => data.features.subarray(i * D, (i + 1) * D);
const meanCe = (w: ArrayLike<number>, shift: number[] = [0, 0, 0]) =>
  Array.from({ length: data.length }, (_, i) => -logSoftmax(forward(w, sample(i)).logits.map((l, c) => l + shift[c]!))[data.labels[i]!]!).reduce((a, b) => a + b) / data.length;

/** One plain-SGD step of `loss` from w0, the gradient by central differences in float64. */
function referenceStep(w0: Float32Array, lr: number, loss: (w: Float64Array) => number): Float64Array {
  const w = Float64Array.from(w0);
  const out = Float64Array.from(w0);
  for (let p = 0; p < w.length; p++) {
    const h = 1e-6;
    w[p] = w0[p]! + h;
    const up = loss(w);
    w[p] = w0[p]! - h;
    const down = loss(w);
    w[p] = w0[p]!;
    out[p] = w0[p]! - (lr * (up - down)) / (2 * h);
  }
  return out;
}

const oneStep = (extra: Partial<TrainOptions>): TrainOptions => ({ epochs: 1, batchSize: data.length, lr: 0.5, optimizer: 'sgd', seed: 3, ...extra });

function expectClose(actual: Float32Array, expected: ArrayLike<number>, tol = 2e-5): void {
  expect(actual.length).toBe(expected.length);
  for (let i = 0; i < actual.length; i++) expect(Math.abs(actual[i]! - expected[i]!), `weight ${i}`).toBeLessThan(tol);
}

const cosine = (a: number[], b: number[]) => {
  const dot = a.reduce((s, v, i) => s + v * b[i]!, 0);
  return dot / Math.max(Math.hypot(...a) * Math.hypot(...b), 1e-8);
};

describe('body/head split', () => {
  it('marks the classifier of every built-in model as its head, and the split computes the same logits', () => {
    const heads: Record<string, string[]> = {
      mlp: ['fc3/kernel', 'fc3/bias'],
      lenet: ['fc3/kernel', 'fc3/bias'],
      simple_cnn: ['fc2/kernel', 'fc2/bias'],
      fmnist_cnn: ['fc2/kernel', 'fc2/bias'],
      cifar10_cnn: ['fc/kernel', 'fc/bias'],
    };
    for (const [type, expected] of Object.entries(heads)) {
      const model = createModel({ type, args: type === 'cifar10_cnn' ? { dropout: 0.5 } : {} });
      expect(model.layout.filter((s) => s.isHead).map((s) => s.name), type).toEqual(expected);
      if (type === 'mlp' || type === 'lenet') {
        const x = tf.randomUniform([2, ...model.inputShape], -1, 1, 'float32', 5);
        const whole = model.model.apply(x, { training: false }) as tf.Tensor;
        const split = model.split.forward(x, false);
        expect(Array.from(split.logits.dataSync())).toEqual(Array.from(whole.dataSync()));
        tf.dispose([x, whole, split.features, split.logits]);
      }
      model.dispose();
    }
  });
});

describe('per-step terms of FedModel.train', () => {
  it('frozen tensors stay put while the others take their plain step', async () => {
    const { model, w0 } = tinyModel();
    const head = model.layout.filter((s) => s.isHead).map((s) => s.name);
    await model.train(data, oneStep({ frozen: head }));
    const plain = referenceStep(w0, 0.5, meanCe);
    const w = model.getWeights();
    for (const spec of model.layout) {
      const expected = spec.isHead ? w0 : plain;
      expectClose(w.subarray(spec.offset, spec.offset + spec.size), Array.from(expected.subarray(spec.offset, spec.offset + spec.size)));
    }
    model.dispose();
  });

  it('contrastive (MOON eq. 3): one step equals the hand-written loss`s gradient step, and leaves no tensors behind', async () => {
    const { model, w0 } = tinyModel();
    const rand = lcg(9);
    const positive = Float32Array.from(w0, (v) => v + (rand() - 0.5) * 0.2);
    const negative = Float32Array.from(w0, (v) => v + (rand() - 0.5) * 0.6);
    const term: StepTerm = { kind: 'contrastive', mu: 2, temperature: 0.5, positive, negatives: [negative] };
    const before = tf.memory().numTensors;
    await model.train(data, oneStep({ stepTerms: [term] }));
    expect(tf.memory().numTensors).toBe(before);
    const con = (w: Float64Array) => {
      let sum = 0;
      for (let i = 0; i < data.length; i++) {
        const z = forward(w, sample(i)).z;
        const logits = [cosine(z, forward(positive, sample(i)).z), cosine(z, forward(negative, sample(i)).z)].map((s) => s / 0.5);
        sum += -logSoftmax(logits)[0]!;
      }
      return (2 * sum) / data.length;
    };
    expectClose(model.getWeights(), referenceStep(w0, 0.5, (w) => meanCe(w) + con(w)));
    model.dispose();
  });

  it('prototype (FedProto): lambda * mean (f(x) - C_y)^2, zero for classes without a prototype', async () => {
    const { model, w0 } = tinyModel();
    const prototypes = Float32Array.from({ length: K * H }, (_, i) => (i % 5) * 0.3 - 0.4);
    const present = new Float32Array([1, 0, 1]);
    await model.train(data, oneStep({ stepTerms: [{ kind: 'prototype', lambda: 3, prototypes, present }] }));
    const reg = (w: Float64Array) => {
      let sum = 0;
      for (let i = 0; i < data.length; i++) {
        const y = data.labels[i]!;
        if (!present[y]) continue;
        forward(w, sample(i)).z.forEach((zj, j) => (sum += (zj - prototypes[y * H + j]!) ** 2));
      }
      return (3 * sum) / (data.length * H);
    };
    expectClose(model.getWeights(), referenceStep(w0, 0.5, (w) => meanCe(w) + reg(w)));
    model.dispose();
  });

  it('soft targets (FedDistill): lambda * mean CE(softmax(T_y), softmax(logits)), zero without targets; class logit sums', async () => {
    const { model, w0 } = tinyModel();
    const targets = Float32Array.from({ length: K * K }, (_, i) => ((i * 7) % 5) * 0.4 - 0.8);
    const present = new Float32Array([1, 1, 0]);
    const result = await model.train(data, oneStep({ stepTerms: [{ kind: 'soft_targets', lambda: 1.5, targets, present }, { kind: 'class_features', of: 'logits' }] }));
    const soft = [0, 1, 2].map((c) => logSoftmax(Array.from(targets.subarray(c * K, c * K + K))).map(Math.exp));
    const reg = (w: Float64Array) => {
      let sum = 0;
      for (let i = 0; i < data.length; i++) {
        const y = data.labels[i]!;
        if (!present[y]) continue;
        const q = logSoftmax(forward(w, sample(i)).logits);
        sum -= soft[y]!.reduce((t, p, c) => t + p * q[c]!, 0);
      }
      return (1.5 * sum) / data.length;
    };
    expectClose(model.getWeights(), referenceStep(w0, 0.5, (w) => meanCe(w) + reg(w)));
    const sums = new Float64Array(K * K);
    for (let i = 0; i < data.length; i++) forward(w0, sample(i)).logits.forEach((l, c) => (sums[data.labels[i]! * K + c]! += l));
    expectClose(result.outputs!.class_logit_sums!, sums);
    model.dispose();
  });

  it('balanced softmax (FedRoD): the cross-entropy sees logits + log n_c, n_c counted from the data', async () => {
    const { model, w0 } = tinyModel();
    const counts = new Float32Array([2, 3, 1]);
    await model.train(data, oneStep({ stepTerms: [{ kind: 'balanced_softmax' }] }));
    expectClose(model.getWeights(), referenceStep(w0, 0.5, (w) => meanCe(w, Array.from(counts, Math.log))));
    model.dispose();
  });

  it('class features and the auxiliary head: last-epoch class sums, and one SGD step of the head on detached features', async () => {
    const { model, w0 } = tinyModel();
    const rand = lcg(4);
    const aux = Float32Array.from({ length: H * K + K }, () => rand() - 0.5);
    const result = await model.train(data, oneStep({ stepTerms: [{ kind: 'class_features' }, { kind: 'aux_head', weights: aux, lr: 0.5 }] }));
    const sums = new Float64Array(K * H);
    const counts = new Float64Array(K);
    const gAux = new Float64Array(aux.length);
    for (let i = 0; i < data.length; i++) {
      const y = data.labels[i]!;
      const { z, logits } = forward(w0, sample(i));
      counts[y]! += 1;
      z.forEach((zj, j) => (sums[y * H + j]! += zj));
      const total = logits.map((l, c) => l + aux[H * K + c]! + z.reduce((s, zj, j) => s + zj * aux[j * K + c]!, 0));
      const p = logSoftmax(total).map(Math.exp);
      for (let c = 0; c < K; c++) {
        const r = (p[c]! - (c === y ? 1 : 0)) / data.length;
        gAux[H * K + c]! += r;
        z.forEach((zj, j) => (gAux[j * K + c]! += zj * r));
      }
    }
    expectClose(result.outputs!.class_feature_sums!, sums);
    expectClose(result.outputs!.class_counts!, counts);
    expectClose(result.outputs!.aux_head!, Array.from(aux, (v, i) => v - 0.5 * gAux[i]!));
    const evaluated = await model.evaluate(data, { auxHead: result.outputs!.aux_head });
    expect(evaluated.numSamples).toBe(data.length);
    model.dispose();
  });

  it('refuses to combine step terms or frozen tensors with DP-SGD rather than drop them', async () => {
    const { model } = tinyModel();
    const dpSgd = { clipNorm: 1, noiseMultiplier: 1, noiseSeed: 1 };
    await expect(model.train(data, oneStep({ dpSgd, frozen: ['fc2/bias'] }))).rejects.toThrow('DP-SGD does not run step terms, step hooks or frozen tensors');
    await expect(model.train(data, oneStep({ dpSgd, stepTerms: [{ kind: 'class_features' }] }))).rejects.toThrow('DP-SGD does not run');
    model.dispose();
  });

  it('a step hook of your own: a loss term from the weights and a gradient transform', async () => {
    const { model, w0 } = tinyModel();
    await model.train(data, oneStep({
      stepHooks: [{
        loss: ({ variables }) => tf.mul(tf.sum(tf.square(variables.get('fc2/bias')!)), 0.5) as tf.Scalar,
        transformGradient: (name, g) => (name === 'fc1/kernel' ? tf.mul(g, 0) : g),
      }],
    }));
    const o = D * H + H + H * K;
    const expected = referenceStep(w0, 0.5, (w) => meanCe(w) + 0.5 * [0, 1, 2].reduce((s, c) => s + w[o + c]! ** 2, 0));
    expected.set(w0.subarray(0, D * H), 0);
    expectClose(model.getWeights(), expected);
    model.dispose();
  });
});
