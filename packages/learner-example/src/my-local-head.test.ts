import { LearnerAlgorithms, listLearnerAlgorithms } from '@oiafed/core';
import { describeLearnerAlgorithmContract } from '@oiafed/core/testing';
import { describe, expect, it } from 'vitest';
import { MY_LOCAL_HEAD_TYPE, register } from './index.js';

const layout = [
  { name: 'fc1/kernel', shape: [2], offset: 0, size: 2, trainable: true, isNormalization: false },
  { name: 'fc2/kernel', shape: [1], offset: 2, size: 1, trainable: true, isNormalization: false },
  { name: 'fc2/bias', shape: [1], offset: 3, size: 1, trainable: true, isNormalization: false },
];
const settings = { epochs: 1, batchSize: 8, lr: 0.1, optimizer: 'sgd' as const, momentum: 0, weightDecay: 0 };
const result = { loss: 1, accuracy: 0.5, numSamples: 8, steps: 1, seconds: 0, samplesPerSecond: 0 };

describe('my_local_head plugin', () => {
  it('registers itself on import and again on register()', () => {
    expect(listLearnerAlgorithms()).toContain(MY_LOCAL_HEAD_TYPE);
    register();
    expect(listLearnerAlgorithms()).toContain(MY_LOCAL_HEAD_TYPE);
  });

  it('keeps the named layers local and reports the drift of the shared ones', () => {
    const algorithms = new LearnerAlgorithms({ type: MY_LOCAL_HEAD_TYPE, args: { layers: ['fc2'] } });
    const active = algorithms.forRound({});
    const global = Float32Array.from([1, 1, 1, 1]);
    const round = { round: 1, global, layout, tensors: {}, settings };
    const { meta } = algorithms.afterTraining(active, { ...round, local: Float32Array.from([4, 5, 7, 8]), result });
    // shared: fc1/kernel only, sqrt(3^2 + 4^2)
    expect(meta.local_drift).toBe(5);
    expect([...algorithms.startWeights(Float32Array.from([0, 0, 0, 0]), layout, active)]).toEqual([0, 0, 7, 8]);
    expect([...algorithms.evaluationWeights(Float32Array.from([2, 2, 2, 2]), layout)]).toEqual([2, 2, 7, 8]);
  });

  it('reports bad args through the registry, prefixed with its type', () => {
    expect(() => new LearnerAlgorithms({ type: MY_LOCAL_HEAD_TYPE, args: {} })).toThrow('learner algorithm "my_local_head": args.layers is required');
    expect(() => new LearnerAlgorithms({ type: MY_LOCAL_HEAD_TYPE, args: { layers: [3] } })).toThrow(
      'learner algorithm "my_local_head": args.layers must be a non-empty list of layer names, got [3]',
    );
  });
});

describeLearnerAlgorithmContract(MY_LOCAL_HEAD_TYPE, { args: { layers: ['head'] } });
