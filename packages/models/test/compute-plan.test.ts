import * as tfl from '@tensorflow/tfjs-layers';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  BLAS_DATA_PARALLEL_MIN_SHARD_MACS,
  BLAS_THREADS_MIN_STEP_MACS,
  countMacsPerSample,
  createModel,
  planCompute,
  planWith,
  XNN_DATA_PARALLEL_MIN_SHARD_MACS,
} from '../src/index.js';
import { useCpuBackend } from './helpers.js';

beforeAll(useCpuBackend);

/** MACs per sample of the built-in models, counted by hand (output positions x kernel x input channels x filters). */
const LENET_MACS =
  24 * 24 * 6 * (5 * 5 * 1) + // conv1 6@5x5 valid: 28 -> 24
  8 * 8 * 16 * (5 * 5 * 6) + // conv2 16@5x5 valid after pool: 12 -> 8
  256 * 120 + // fc1 over 4x4x16
  120 * 84 + // fc2
  84 * 10; // fc3
const FMNIST_CNN_MACS =
  28 * 28 * 32 * (3 * 3 * 1) + // conv1 32@3x3 same
  14 * 14 * 64 * (3 * 3 * 32) + // conv2 64@3x3 same after pool
  7 * 7 * 64 * 128 + // fc1 over 7x7x64
  128 * 10; // fc2

describe('countMacsPerSample', () => {
  it('lenet: 281,640 forward multiply-adds per sample', () => {
    const m = createModel({ type: 'lenet' });
    try {
      expect(LENET_MACS).toBe(281_640);
      expect(countMacsPerSample(m.model)).toBe(LENET_MACS);
    } finally {
      m.dispose();
    }
  });

  it('fmnist_cnn: 4,241,152 (its 32->64 convolution alone 3.6 M, as issue 13 says)', () => {
    const m = createModel({ type: 'fmnist_cnn' });
    try {
      expect(FMNIST_CNN_MACS).toBe(4_241_152);
      expect(countMacsPerSample(m.model)).toBe(FMNIST_CNN_MACS);
    } finally {
      m.dispose();
    }
  });

  it('depthwise and separable convolutions, strides, and a nested model', () => {
    const inner = tfl.sequential();
    inner.add(tfl.layers.dense({ inputShape: [6], units: 4 }));
    const m = tfl.sequential();
    m.add(tfl.layers.depthwiseConv2d({ inputShape: [8, 8, 3], kernelSize: 3, depthMultiplier: 2, padding: 'same' })); // 8x8x6
    m.add(tfl.layers.separableConv2d({ kernelSize: 3, filters: 5, strides: 2, padding: 'same' })); // 4x4x5
    m.add(tfl.layers.globalAveragePooling2d({}));
    m.add(tfl.layers.dense({ units: 6 }));
    m.add(inner);
    const depthwise = 8 * 8 * 6 * 9;
    const separable = 4 * 4 * 6 * 9 + 4 * 4 * 6 * 5;
    expect(countMacsPerSample(m)).toBe(depthwise + separable + 5 * 6 + 6 * 4);
    m.dispose();
  });
});

describe('planCompute', () => {
  const plan = (threads: number, blasActive: boolean, macsPerSample: number, batchSize = 64, dataParallelPossible?: boolean) =>
    planCompute({ threads, blasActive, macsPerSample, batchSize, dataParallelPossible });

  it('one core: one thread, whatever the model', () => {
    for (const blas of [false, true]) expect(plan(1, blas, 58e6)).toMatchObject({ dataParallel: 1, blasThreads: 1 });
  });

  it('is a pure function of its input (same input, same plan)', () => {
    expect(plan(2, true, FMNIST_CNN_MACS)).toEqual(plan(2, true, FMNIST_CNN_MACS));
  });

  it('without OpenBLAS: data-parallel from the per-shard threshold, lenet stays on one thread', () => {
    expect(plan(2, false, LENET_MACS)).toMatchObject({ dataParallel: 1, blasThreads: 1 });
    expect(plan(2, false, 58e6)).toMatchObject({ dataParallel: 2, blasThreads: 1 });
    const edge = (2 * XNN_DATA_PARALLEL_MIN_SHARD_MACS) / 64;
    expect(plan(2, false, edge).dataParallel).toBe(2);
    expect(plan(2, false, edge * 0.99).dataParallel).toBe(1);
  });

  it('with OpenBLAS: data-parallel from its own per-shard threshold (fmnist_cnn and cifar10_cnn at batch 64), one thread below (lenet)', () => {
    const edge = (2 * BLAS_DATA_PARALLEL_MIN_SHARD_MACS) / 64;
    expect(plan(2, true, edge)).toMatchObject({ dataParallel: 2, blasThreads: 1 });
    expect(plan(2, true, edge * 0.99)).toMatchObject({ dataParallel: 1, blasThreads: 1 });
    expect(plan(2, true, FMNIST_CNN_MACS)).toMatchObject({ dataParallel: 2, blasThreads: 1 });
    expect(plan(2, true, 58e6)).toMatchObject({ dataParallel: 2, blasThreads: 1 });
    expect(plan(2, true, LENET_MACS)).toMatchObject({ dataParallel: 1, blasThreads: 1 });
  });

  it('OpenBLAS threads only where the step reaches their threshold (infinite: measured no faster), or when forced', () => {
    expect(BLAS_THREADS_MIN_STEP_MACS).toBe(Number.POSITIVE_INFINITY);
    expect(plan(4, true, 1e12, 64, false)).toMatchObject({ dataParallel: 1, blasThreads: 1 });
    const input = { threads: 4, blasActive: true, macsPerSample: LENET_MACS, batchSize: 64 };
    expect(planWith('blas', input)).toMatchObject({ dataParallel: 1, blasThreads: 4 });
    expect(planWith('blas', { ...input, blasActive: false })).toMatchObject({ dataParallel: 1, blasThreads: 1 });
    expect(planWith('data', input)).toMatchObject({ dataParallel: 4, blasThreads: 1 });
    expect(planWith('data', { ...input, dataParallelPossible: false })).toMatchObject({ dataParallel: 1 });
    expect(planWith('none', { ...input, macsPerSample: 58e6 })).toMatchObject({ dataParallel: 1, blasThreads: 1 });
    expect(planWith('auto', input)).toEqual(planCompute(input));
  });

  it('a run that cannot be split, or a batch too small to split, never gets workers', () => {
    expect(plan(2, false, 58e6, 64, false)).toMatchObject({ dataParallel: 1, blasThreads: 1, reason: expect.stringMatching(/cannot be split/) });
    expect(plan(2, true, 58e6, 64, false).dataParallel).toBe(1);
    expect(plan(8, false, 58e6, 16).dataParallel).toBe(1);
  });

  it('says why', () => {
    expect(plan(2, true, FMNIST_CNN_MACS).reason).toBe('data-parallel: 135.7 M MACs per shard >= 120.0 M (OpenBLAS)');
    expect(plan(2, false, LENET_MACS).reason).toBe('one thread: 9.0 M MACs per shard < 100.0 M (XNNPACK)');
  });
});
