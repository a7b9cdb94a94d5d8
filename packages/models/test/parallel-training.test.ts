import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createModel, LearnerPool, registerModel, type DataSource, type FedModel, type TrainOptions } from '../src/index.js';
import { initWasmBackend } from '../src/wasm/index.js';
import { blobs } from './helpers.js';

// Data-parallel training runs on real worker threads with their own wasm backends: these tests
// start them (from sources, through tsx's loader registered inside each worker).

const models: FedModel[] = [];

beforeAll(async () => {
  tf.env().set('IS_TEST', true);
  await initWasmBackend();
  registerModel(
    'test_bn_dropout',
    (_args, ctx) => {
      const m = tfl.sequential();
      m.add(tfl.layers.conv2d({ name: 'conv', filters: 4, kernelSize: 3, padding: 'same', inputShape: ctx.inputShape, kernelInitializer: tfl.initializers.heNormal({ seed: 7 }) }));
      m.add(tfl.layers.batchNormalization({ name: 'bn', momentum: 0.9, epsilon: 1e-5 }));
      m.add(tfl.layers.reLU({ name: 'relu' }));
      m.add(tfl.layers.flatten({ name: 'flat' }));
      m.add(tfl.layers.dropout({ name: 'drop', rate: 0.3 }));
      m.add(tfl.layers.dense({ name: 'fc', units: ctx.numClasses, kernelInitializer: tfl.initializers.glorotUniform({ seed: 8 }) }));
      return m;
    },
    { defaultInputShape: [8, 8, 2] },
  );
});

afterAll(() => {
  for (const m of models) m.dispose();
});

function model(type: string, args: Record<string, unknown> = {}): FedModel {
  const m = createModel({ type, args }, { seed: 3 });
  models.push(m);
  return m;
}

// These tests are about the data-parallel plan itself: forced, whatever planCompute would pick for these small models.
const opts = (extra: Partial<TrainOptions> = {}): TrainOptions => ({ epochs: 1, batchSize: 32, lr: 0.05, optimizer: 'sgd', seed: 11, parallelism: 'data', ...extra });

async function trainFrom(m: FedModel, start: Float32Array, data: DataSource, o: TrainOptions): Promise<Float32Array> {
  m.setWeights(start);
  await m.train(data, o);
  return m.getWeights();
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i] - b[i]));
  return d;
}

describe('data-parallel training (threads > 1, wasm)', () => {
  it('two runs with threads=2 give bit-identical weights (lenet with dropout, momentum)', async () => {
    const m = model('lenet', { dropout: 0.25 });
    const data = blobs(150, [28, 28, 1], 10, 5);
    const start = m.getWeights();
    const o = opts({ threads: 2, momentum: 0.9, epochs: 2 });
    const a = await trainFrom(m, start, data, o);
    const b = await trainFrom(m, start, data, o);
    expect(maxAbsDiff(a, start)).toBeGreaterThan(0);
    expect(Buffer.from(a.buffer).equals(Buffer.from(b.buffer))).toBe(true);
  });

  it('without batch norm or dropout, threads=2 matches one thread up to float summation order', async () => {
    const m = model('lenet');
    const data = blobs(96, [28, 28, 1], 10, 6);
    const start = m.getWeights();
    const one = await trainFrom(m, start, data, opts());
    const two = await trainFrom(m, start, data, opts({ threads: 2 }));
    const three = await trainFrom(m, start, data, opts({ threads: 3 }));
    expect(maxAbsDiff(one, start)).toBeGreaterThan(1e-3);
    expect(maxAbsDiff(one, two)).toBeLessThan(1e-5);
    expect(maxAbsDiff(one, three)).toBeLessThan(1e-5);
  });

  it('batch norm: deterministic, and the moving statistics are the shard-weighted mean', async () => {
    const m = model('test_bn_dropout');
    const data = blobs(64, [8, 8, 2], 3, 7);
    const start = m.getWeights();
    const o = opts({ threads: 2, batchSize: 64 });
    const a = await trainFrom(m, start, data, o);
    const b = await trainFrom(m, start, data, o);
    expect(Buffer.from(a.buffer).equals(Buffer.from(b.buffer))).toBe(true);
    // One step: moving_mean = 0.9 * 0 + 0.1 * mean over shards of each shard's batch mean, which
    // for two equal shards is the batch mean of the whole batch, as one thread computes it.
    const single = await trainFrom(m, start, data, opts({ batchSize: 64 }));
    const mean = m.layout.find((s) => s.name.endsWith('moving_mean'))!;
    const slice = (w: Float32Array) => w.subarray(mean.offset, mean.offset + mean.size);
    expect(maxAbsDiff(slice(a), slice(single))).toBeLessThan(1e-5);
  });

  it('reports loss and accuracy, and rejects a bad thread count', async () => {
    const m = model('lenet');
    const data = blobs(64, [28, 28, 1], 10, 8);
    const r = await m.train(data, opts({ threads: 2 }));
    expect(r.steps).toBe(2);
    expect(r.numSamples).toBe(64);
    expect(Number.isFinite(r.loss) && r.loss > 0).toBe(true);
    await expect(m.train(data, opts({ threads: 0 }))).rejects.toThrow(/threads must be an integer >= 1/);
  });
});

describe('a model the workers cannot rebuild', () => {
  it('trains on this thread alone, as with threads=1, and says why', async () => {
    // A custom layer class registered on this thread only: modelFromJSON fails in the workers.
    class MainThreadOnlyScale extends tfl.layers.Layer {
      static className = 'MainThreadOnlyScale';
      override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
        return tf.mul(Array.isArray(inputs) ? inputs[0] : inputs, 0.5);
      }
    }
    tf.serialization.registerClass(MainThreadOnlyScale);
    registerModel('test_custom_layer', (_args, ctx) => {
      const m = tfl.sequential();
      m.add(tfl.layers.flatten({ name: 'flat', inputShape: ctx.inputShape }));
      m.add(new MainThreadOnlyScale({ name: 'scale' }));
      m.add(tfl.layers.dense({ name: 'fc', units: ctx.numClasses, kernelInitializer: tfl.initializers.glorotUniform({ seed: 4 }) }));
      return m;
    }, { defaultInputShape: [4, 4, 1] });
    const m = model('test_custom_layer');
    const data = blobs(64, [4, 4, 1], 3, 10);
    const start = m.getWeights();
    const one = await trainFrom(m, start, data, opts());
    const two = await trainFrom(m, start, data, opts({ threads: 2 }));
    expect(m.parallelUnavailable).toMatch(/worker failed to start/);
    expect(Buffer.from(two.buffer).equals(Buffer.from(one.buffer))).toBe(true);
  });
});

describe('data-parallel evaluation', () => {
  it('threads=3 gives one thread\'s accuracy exactly and its loss up to summation order', async () => {
    const m = model('test_bn_dropout');
    const data = blobs(203, [8, 8, 2], 3, 9);
    await m.train(data, opts({ epochs: 2 }));
    const one = await m.evaluate(data, { batchSize: 32 });
    const three = await m.evaluate(data, { batchSize: 32, threads: 3, parallelism: 'data' });
    expect(three.numSamples).toBe(203);
    expect(three.accuracy).toBe(one.accuracy);
    expect(Math.abs(three.loss - one.loss)).toBeLessThan(1e-5);
  });
});

describe('learner pool (whole local runs on worker threads)', () => {
  it('two learners trained concurrently on the pool get the same bits as training them one after the other here', async () => {
    const a = model('lenet', { dropout: 0.25 });
    const b = model('lenet', { dropout: 0.25 });
    const start = a.getWeights();
    const dataA = blobs(96, [28, 28, 1], 10, 21);
    const dataB = blobs(80, [28, 28, 1], 10, 22);
    const o = opts({ momentum: 0.9, seed: 5 });
    const here = [await trainFrom(a, start, dataA, o), await trainFrom(a, start, dataB, { ...o, seed: 6 })];
    const pool = await LearnerPool.start(a, 2);
    try {
      a.setWeights(start);
      b.setWeights(start);
      const results = await Promise.all([pool.train(a, dataA, o), pool.train(b, dataB, { ...o, seed: 6 })]);
      expect(results.map((r) => r.numSamples)).toEqual([96, 80]);
      expect(Buffer.from(a.getWeights().buffer).equals(Buffer.from(here[0].buffer))).toBe(true);
      expect(Buffer.from(b.getWeights().buffer).equals(Buffer.from(here[1].buffer))).toBe(true);
    } finally {
      await pool.close();
    }
  });

  it('evaluates a model on its workers with the numbers of evaluate at threads = pool size (serial mode\'s global model)', async () => {
    const m = model('test_bn_dropout');
    const data = blobs(203, [8, 8, 2], 3, 9);
    await m.train(data, opts({ epochs: 2 }));
    const here = await m.evaluate(data, { batchSize: 32, threads: 2, parallelism: 'data' });
    const pool = await LearnerPool.start(m, 2);
    try {
      const other = model('test_bn_dropout');
      other.setWeights(m.getWeights());
      // Two learners' runs in flight: the evaluation waits until both workers are idle.
      const running = [pool.train(other, data, opts()), pool.train(other, data, opts())];
      const onPool = await pool.evaluate(m, data, { batchSize: 32 });
      await Promise.all(running);
      expect(onPool).toEqual(here);
    } finally {
      await pool.close();
    }
  });
});
