import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { beforeAll, describe, expect, it } from 'vitest';
import { createModel, registerModel, type DataSource, type FedModel, type TrainOptions } from '../src/index.js';
import { blobs, distance, lcg, useCpuBackend } from './helpers.js';

beforeAll(async () => {
  await useCpuBackend();
  // A small conv + batch-norm + dropout model: exercises every weight kind in milliseconds.
  registerModel(
    'test_bn',
    (_args, ctx) => {
      const m = tfl.sequential();
      m.add(tfl.layers.conv2d({ name: 'conv', filters: 4, kernelSize: 3, padding: 'same', inputShape: ctx.inputShape, kernelInitializer: tfl.initializers.heNormal({ seed: (ctx.seed ?? 0) + 100 }) }));
      m.add(tfl.layers.batchNormalization({ name: 'bn', momentum: 0.9, epsilon: 1e-5 }));
      m.add(tfl.layers.reLU({ name: 'relu' }));
      m.add(tfl.layers.globalAveragePooling2d({ name: 'gap' }));
      m.add(tfl.layers.dropout({ name: 'drop', rate: 0.3 }));
      m.add(tfl.layers.dense({ name: 'fc', units: ctx.numClasses, kernelInitializer: tfl.initializers.glorotUniform({ seed: (ctx.seed ?? 0) + 101 }) }));
      return m;
    },
    { defaultInputShape: [6, 6, 2] },
  );
});

const sgd = (extra: Partial<TrainOptions> = {}): TrainOptions => ({ epochs: 1, batchSize: 64, lr: 0.1, optimizer: 'sgd', seed: 1, ...extra });

/** Float64 reference of the mean softmax cross-entropy gradient of a linear model z = xW + b. */
function linearGrads(data: DataSource, W: Float64Array, b: Float64Array): { gW: Float64Array; gb: Float64Array } {
  const d = data.sampleShape[0];
  const k = b.length;
  const gW = new Float64Array(d * k);
  const gb = new Float64Array(k);
  for (let i = 0; i < data.length; i++) {
    const x = Array.from(data.features.subarray(i * d, (i + 1) * d));
    const z = Array.from({ length: k }, (_, c) => b[c] + x.reduce((s, xj, j) => s + xj * W[j * k + c], 0));
    const mx = Math.max(...z);
    const e = z.map((v) => Math.exp(v - mx));
    const sum = e.reduce((a, v) => a + v, 0);
    for (let c = 0; c < k; c++) {
      const r = (e[c] / sum - (data.labels[i] === c ? 1 : 0)) / data.length;
      gb[c] += r;
      for (let j = 0; j < d; j++) gW[j * k + c] += x[j] * r;
    }
  }
  return { gW, gb };
}

/** Logistic regression on 2 features, 3 classes, with fixed weights. */
function logisticFixture(): { model: FedModel; data: DataSource; w0: Float32Array } {
  const model = createModel({ type: 'logistic', args: { input_shape: [2], num_classes: 3 } });
  const w0 = new Float32Array([0.5, -0.25, 0.1, -0.3, 0.2, 0.4, 0.05, -0.1, 0.0]); // W[2x3] then b[3]
  model.setWeights(w0);
  const data: DataSource = {
    features: new Float32Array([1, 2, -1, 0.5, 0.3, -2, 2, 1]),
    labels: new Int32Array([0, 1, 2, 1]),
    sampleShape: [2],
    numClasses: 3,
    length: 4,
  };
  return { model, data, w0 };
}

function f64(a: Float32Array): Float64Array {
  return Float64Array.from(a);
}

function expectClose(actual: Float32Array, expected: ArrayLike<number>, tol = 1e-6): void {
  expect(actual.length).toBe(expected.length);
  let maxDiff = 0;
  for (let i = 0; i < actual.length; i++) maxDiff = Math.max(maxDiff, Math.abs(actual[i] - expected[i]));
  expect(maxDiff).toBeLessThan(tol);
}

describe('one SGD step against hand-computed values', () => {
  it('plain SGD, SCAFFOLD correction, weight decay and the proximal term', async () => {
    const { model, data, w0 } = logisticFixture();
    const W = f64(w0.subarray(0, 6));
    const b = f64(w0.subarray(6));
    const { gW, gb } = linearGrads(data, W, b);
    const lr = 0.1;
    const grad = (extra: (i: number, w: number) => number) => [...gW, ...gb].map((g, i) => w0[i] - lr * (g + extra(i, w0[i])));

    const r = await model.train(data, sgd());
    expect(r).toMatchObject({ numSamples: 4, steps: 1 });
    expectClose(model.getWeights(), grad(() => 0));

    const correction = Float32Array.from({ length: 9 }, (_, i) => (i - 4) * 0.3);
    model.setWeights(w0);
    await model.train(data, sgd({ gradientCorrection: correction }));
    expectClose(model.getWeights(), grad((i) => correction[i]));

    model.setWeights(w0);
    await model.train(data, sgd({ weightDecay: 0.5 }));
    expectClose(model.getWeights(), grad((_i, w) => 0.5 * w));

    const center = Float32Array.from({ length: 9 }, (_, i) => i * 0.1);
    model.setWeights(w0);
    await model.train(data, sgd({ proximalMu: 2, proximalCenter: center }));
    expectClose(model.getWeights(), grad((i, w) => 2 * (w - center[i])));
    model.dispose();
  });

  it('SGD with momentum over two steps and Adam over one step', async () => {
    const { model, data, w0 } = logisticFixture();
    const lr = 0.1;
    // momentum (PyTorch semantics): buf = m*buf + g; w -= lr*buf
    const g1 = linearGrads(data, f64(w0.subarray(0, 6)), f64(w0.subarray(6)));
    const flat1 = [...g1.gW, ...g1.gb];
    const w1 = flat1.map((g, i) => w0[i] - lr * g);
    const g2 = linearGrads(data, Float64Array.from(w1.slice(0, 6)), Float64Array.from(w1.slice(6)));
    const w2 = [...g2.gW, ...g2.gb].map((g, i) => w1[i] - lr * (0.9 * flat1[i] + g));
    await model.train(data, sgd({ epochs: 2, momentum: 0.9 }));
    expectClose(model.getWeights(), w2, 2e-6);

    // Adam's first step: m_hat = g, v_hat = g^2, so w -= lr * g / (|g| + eps)
    model.setWeights(w0);
    await model.train(data, { ...sgd(), optimizer: 'adam', lr: 0.01 });
    expectClose(model.getWeights(), flat1.map((g, i) => w0[i] - (0.01 * g) / (Math.abs(g) + 1e-8)));
    model.dispose();
  });
});

describe('local training', () => {
  it('raises accuracy on a separable problem, with sgd and with adam', async () => {
    const data = blobs(60, [4], 3, 3);
    for (const optimizer of ['sgd', 'adam'] as const) {
      const model = createModel({ type: 'mlp', args: { input_shape: [4], num_classes: 3, hidden: [16] } });
      const before = await model.evaluate(data);
      const epochs: number[] = [];
      const r = await model.train(data, { epochs: 15, batchSize: 10, lr: optimizer === 'sgd' ? 0.1 : 0.02, optimizer, seed: 3, onEpochEnd: (e) => epochs.push(e) });
      const after = await model.evaluate(data);
      expect(epochs).toEqual([...Array(15).keys()]);
      expect(r.steps).toBe(15 * 6);
      expect(after.accuracy).toBeGreaterThan(0.95);
      expect(after.accuracy).toBeGreaterThan(before.accuracy);
      expect(after.loss).toBeLessThan(before.loss);
      expect(r.samplesPerSecond).toBeGreaterThan(0);
      model.dispose();
    }
  });

  it('a huge proximal mu keeps the weights near the center', async () => {
    const data = blobs(40, [4], 3, 5);
    const run = async (mu: number) => {
      const model = createModel({ type: 'mlp', args: { input_shape: [4], num_classes: 3, hidden: [8] } });
      const center = model.getWeights();
      await model.train(data, { epochs: 5, batchSize: 8, lr: 0.02, optimizer: 'sgd', seed: 2, proximalMu: mu, proximalCenter: center });
      const d = distance(model.getWeights(), center);
      model.dispose();
      return d;
    };
    const free = await run(0);
    const held = await run(80); // lr * mu = 1.6 < 2 keeps plain SGD on the quadratic stable
    expect(free).toBeGreaterThan(0.1);
    expect(held).toBeLessThan(free / 10);
  });

  it('is deterministic for a seed (shuffle and dropout) and differs across seeds', async () => {
    const data = blobs(24, [6, 6, 2], 3, 7);
    const run = async (seed: number) => {
      const model = createModel({ type: 'test_bn' });
      const r = await model.train(data, { epochs: 2, batchSize: 5, lr: 0.05, optimizer: 'sgd', momentum: 0.9, seed });
      const w = model.getWeights();
      model.dispose();
      return { w, r };
    };
    const [a, b, c] = [await run(11), await run(11), await run(12)];
    expect(Buffer.from(a.w.buffer).equals(Buffer.from(b.w.buffer))).toBe(true);
    expect(a.r.loss).toBe(b.r.loss);
    expect(Buffer.from(a.w.buffer).equals(Buffer.from(c.w.buffer))).toBe(false);
  });

  it('updates batch-norm moving statistics in training and uses them in evaluation', async () => {
    const data = blobs(16, [6, 6, 2], 3, 9);
    const model = createModel({ type: 'test_bn' });
    const spec = (name: string) => model.layout.find((s) => s.name === name)!;
    const slice = (w: Float32Array, name: string) => w.slice(spec(name).offset, spec(name).offset + spec(name).size);
    const w0 = model.getWeights();
    expect(Array.from(slice(w0, 'bn/moving_mean'))).toEqual([0, 0, 0, 0]);
    expect(Array.from(slice(w0, 'bn/moving_variance'))).toEqual([1, 1, 1, 1]);

    const e0 = await model.evaluate(data, { batchSize: 5 });
    expect(await model.evaluate(data, { batchSize: 5 })).toEqual(e0); // inference is deterministic (no dropout)
    await model.train(data, { epochs: 1, batchSize: 8, lr: 0.01, optimizer: 'sgd', seed: 1 });
    const w1 = model.getWeights();
    for (const name of ['bn/moving_mean', 'bn/moving_variance', 'bn/gamma', 'conv/kernel']) {
      expect(distance(slice(w1, name), slice(w0, name))).toBeGreaterThan(1e-4);
    }
    // evaluation reads the moving statistics: changing them changes the result
    const e1 = await model.evaluate(data);
    const w2 = w1.slice();
    w2.fill(1e-3, spec('bn/moving_variance').offset, spec('bn/moving_variance').offset + 4);
    model.setWeights(w2);
    expect((await model.evaluate(data)).loss).not.toBeCloseTo(e1.loss, 3);
    model.dispose();
  });

  it('ignores gradient-correction entries of non-trainable tensors', async () => {
    const data = blobs(10, [6, 6, 2], 3, 4);
    const run = async (correction?: Float32Array) => {
      const model = createModel({ type: 'test_bn' });
      await model.train(data, { epochs: 1, batchSize: 5, lr: 0.05, optimizer: 'sgd', seed: 4, gradientCorrection: correction });
      const w = model.getWeights();
      model.dispose();
      return w;
    };
    const probe = createModel({ type: 'test_bn' });
    const correction = new Float32Array(probe.numParams);
    for (const s of probe.layout) if (!s.trainable) correction.fill(1e6, s.offset, s.offset + s.size);
    probe.dispose();
    expect(Buffer.from((await run()).buffer).equals(Buffer.from((await run(correction)).buffer))).toBe(true);
  });

  it('trains cifar10_cnn (dropout, four batch-norm blocks) on a tiny input', async () => {
    const data = blobs(2, [8, 8, 3], 10, 6);
    const model = createModel({ type: 'cifar10_cnn', args: { input_shape: [8, 8, 3] } });
    const before = model.getWeights();
    const r = await model.train(data, { epochs: 1, batchSize: 2, lr: 0.01, optimizer: 'sgd', seed: 1 });
    expect(Number.isFinite(r.loss)).toBe(true);
    const after = model.getWeights();
    for (const s of model.layout.filter((x) => x.name.endsWith('moving_mean'))) {
      expect(distance(after.subarray(s.offset, s.offset + s.size), before.subarray(s.offset, s.offset + s.size))).toBeGreaterThan(0);
    }
    model.dispose();
  });
});

describe('weights, errors and resources', () => {
  it('round-trips weights bit-exactly, batch-norm statistics included', () => {
    const model = createModel({ type: 'test_bn' });
    const rand = lcg(42);
    const w = Float32Array.from({ length: model.numParams }, () => (rand() - 0.5) * 1e3);
    w[0] = -0; // signed zero must survive too
    w[w.length - 1] = 1e-42; // subnormal
    model.setWeights(w);
    const back = model.getWeights();
    expect(Buffer.from(back.buffer).equals(Buffer.from(w.buffer))).toBe(true);
    expect(model.layout.filter((s) => s.isNormalization).map((s) => [s.name, s.trainable])).toEqual([
      ['bn/gamma', true],
      ['bn/beta', true],
      ['bn/moving_mean', false],
      ['bn/moving_variance', false],
    ]);
    expect(() => model.setWeights(new Float32Array(3))).toThrow(`setWeights(test_bn): expected ${model.numParams} values (the model's layout), got 3`);
    model.dispose();
  });

  it('rejects bad data and options with clear errors', async () => {
    const model = createModel({ type: 'mlp', args: { input_shape: [4], num_classes: 3, hidden: [] } });
    const data = blobs(6, [4], 3);
    await expect(model.train(blobs(6, [5], 3), sgd())).rejects.toThrow(/sample shape \[5\] does not match the model input shape \[4\]/);
    await expect(model.train({ ...data, labels: new Int32Array([0, 1, 2, 3, 0, 1]) }, sgd())).rejects.toThrow(/data.labels\[3\] = 3 is outside \[0, 3\)/);
    await expect(model.train(data, sgd({ batchSize: 0 }))).rejects.toThrow(/options.batchSize must be an integer >= 1, got 0/);
    await expect(model.train(data, { ...sgd(), optimizer: 'rmsprop' as 'sgd' })).rejects.toThrow(/options.optimizer must be 'sgd' or 'adam'/);
    await expect(model.train(data, sgd({ proximalMu: 1 }))).rejects.toThrow(/needs options.proximalCenter/);
    await expect(model.train(data, sgd({ gradientCorrection: new Float32Array(2) }))).rejects.toThrow(/gradientCorrection must be a Float32Array of 15 values/);
    model.dispose();
    expect(() => model.getWeights()).toThrow(/disposed/);
  });

  it('stops between batches when the signal aborts', async () => {
    const model = createModel({ type: 'mlp', args: { input_shape: [4], num_classes: 3, hidden: [] } });
    const before = tf.memory().numTensors;
    const ac = new AbortController();
    const epochs: number[] = [];
    await expect(
      model.train(blobs(20, [4], 3), { ...sgd({ epochs: 5, batchSize: 5 }), signal: ac.signal, onEpochEnd: (e) => (epochs.push(e), ac.abort()) }),
    ).rejects.toMatchObject({ name: 'AbortError' });
    expect(epochs).toEqual([0]);
    expect(tf.memory().numTensors).toBe(before);
    model.dispose();
  });

  it('leaks no tensors over repeated train / evaluate / getWeights / setWeights cycles', async () => {
    const data = blobs(12, [6, 6, 2], 3, 8);
    const model = createModel({ type: 'test_bn' });
    const center = model.getWeights();
    const counts: number[] = [];
    for (let i = 0; i < 3; i++) {
      counts.push(tf.memory().numTensors);
      await model.train(data, { epochs: 1, batchSize: 5, lr: 0.01, optimizer: i === 1 ? 'adam' : 'sgd', momentum: i === 2 ? 0.9 : 0, weightDecay: 1e-4, proximalMu: 0.1, proximalCenter: center, gradientCorrection: new Float32Array(model.numParams).fill(1e-3), seed: i });
      await model.evaluate(data, { batchSize: 5 });
      await model.predict(data.features.slice(0, 72 * 2), 2);
      model.setWeights(model.getWeights());
    }
    counts.push(tf.memory().numTensors);
    expect(counts).toEqual(counts.map(() => counts[0]));
    const n = tf.memory().numTensors;
    model.dispose();
    expect(tf.memory().numTensors).toBe(n - model.layout.length);
  });

  it('predicts class probabilities', async () => {
    const model = createModel({ type: 'mlp', args: { input_shape: [4], num_classes: 3, hidden: [] } });
    const probs = await model.predict(blobs(2, [4], 3).features, 2);
    expect(probs.length).toBe(6);
    expect(probs[0] + probs[1] + probs[2]).toBeCloseTo(1, 5);
    model.dispose();
  });
});
