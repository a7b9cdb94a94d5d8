import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { blasStatus, countMacsPerSample, createModel, enableBlasKernels, LearnerPool, planCompute, type FedModel, type Parallelism, type TrainOptions } from '../src/index.js';
import { initWasmBackend } from '../src/wasm/index.js';
import { blobs } from './helpers.js';

// FedModel.train spends `threads` cores as planCompute says (or as `parallelism` forces): real
// worker threads for the data-parallel plan, OpenBLAS threads (where libopenblas and koffi load,
// as .ci/run installs them) for the BLAS plan. Every plan must be deterministic for a seed and a
// thread count.

const models: FedModel[] = [];

beforeAll(async () => {
  tf.env().set('IS_TEST', true);
  await initWasmBackend();
});

afterAll(() => {
  for (const m of models) m.dispose();
});

function model(type: string): FedModel {
  const m = createModel({ type }, { seed: 5 });
  models.push(m);
  return m;
}

const opts = (extra: Partial<TrainOptions>): TrainOptions => ({ epochs: 1, batchSize: 32, lr: 0.05, optimizer: 'sgd', seed: 13, momentum: 0.9, ...extra });

/** Trains twice from the same weights with the same options; returns both results' weights and the plan. */
async function twice(m: FedModel, o: TrainOptions): Promise<{ a: Float32Array; b: Float32Array; start: Float32Array; plan: string }> {
  const data = blobs(96, [...m.inputShape], 10, 9);
  const start = m.getWeights();
  const first = await m.train(data, o);
  const a = m.getWeights();
  m.setWeights(start);
  await m.train(data, o);
  const b = m.getWeights();
  m.setWeights(start);
  return { a, b, start, plan: `${first.plan?.dataParallel}x${first.plan?.blasThreads}` };
}

const same = (a: Float32Array, b: Float32Array): boolean => Buffer.from(a.buffer).equals(Buffer.from(b.buffer));

describe('FedModel.train: the compute plan', () => {
  it.each<Parallelism>(['auto', 'data', 'blas', 'none'])('threads=2, parallelism %s: two runs with one seed give bit-identical weights (fmnist_cnn, dropout)', async (parallelism) => {
    const m = model('fmnist_cnn');
    const { a, b, start, plan } = await twice(m, opts({ threads: 2, parallelism }));
    expect(same(a, start)).toBe(false);
    expect(same(a, b)).toBe(true);
    const blas = blasStatus().active;
    const expected = { auto: undefined, data: '2x1', blas: blas ? '1x2' : '1x1', none: '1x1' }[parallelism];
    if (expected !== undefined) expect(plan).toBe(expected);
    else {
      const p = planCompute({ threads: 2, blasActive: blas, macsPerSample: countMacsPerSample(m.model), batchSize: 32 });
      expect(plan).toBe(`${p.dataParallel}x${p.blasThreads}`);
    }
  });

  it('reports the plan with its reason, and sets OpenBLAS to the plan\'s threads', async () => {
    const m = model('lenet');
    const data = blobs(64, [28, 28, 1], 10, 2);
    const r = await m.train(data, opts({ threads: 2, parallelism: 'blas' }));
    expect(r.plan?.reason).toMatch(/OpenBLAS|one thread/);
    if (blasStatus().active) expect(blasStatus().threads).toBe(2);
    const one = await m.train(data, opts({ threads: 1 }));
    expect(one.plan).toMatchObject({ dataParallel: 1, blasThreads: 1, reason: 'one core' });
    if (blasStatus().active) expect(blasStatus().threads).toBe(1);
  });

  it('step hooks keep training on this thread: a forced data plan falls back', async () => {
    const m = model('lenet');
    const r = await m.train(blobs(64, [28, 28, 1], 10, 3), opts({ threads: 2, parallelism: 'data', stepHooks: [{}] }));
    expect(r.plan?.dataParallel).toBe(1);
  });

  it('workers take this thread\'s kernel path: with OpenBLAS off here, a pool worker trains bit-identically to this thread', async () => {
    // fmnist_cnn's 32- and 64-channel convolutions run on OpenBLAS when it is on, so a worker on
    // the other path would give other bits. Without OpenBLAS both paths are XNNPACK anyway.
    enableBlasKernels('off');
    try {
      const m = model('fmnist_cnn');
      const data = blobs(64, [28, 28, 1], 10, 6);
      const start = m.getWeights();
      await m.train(data, opts({ threads: 1 }));
      const here = m.getWeights();
      m.setWeights(start);
      const pool = await LearnerPool.start(m, 1);
      try {
        await pool.train(m, data, opts({ threads: 1 }));
      } finally {
        await pool.close();
      }
      expect(same(m.getWeights(), here)).toBe(true);
    } finally {
      enableBlasKernels('auto');
    }
  });

  it('rejects an unknown parallelism naming the option', async () => {
    const m = model('lenet');
    await expect(m.train(blobs(8, [28, 28, 1], 10, 4), opts({ threads: 2, parallelism: 'gpu' as Parallelism }))).rejects.toThrow(/options\.parallelism must be/);
  });
});
