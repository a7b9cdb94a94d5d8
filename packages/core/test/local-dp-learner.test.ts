import { describe, expect, it } from 'vitest';
import { componentProblems } from '../src/component-check.js';
import { LearnerAlgorithms } from '../src/learner-algorithms/learner-algorithms.js';
import { registerLearnerAlgorithm } from '../src/learner-algorithms/registry.js';
import { syntheticTrainerConfig } from './helpers.js';

const layout = [{ name: 'w', shape: [4], offset: 0, size: 4, trainable: true, isNormalization: false }];
const settings = { epochs: 1, batchSize: 32, lr: 0.1, optimizer: 'sgd' as const, momentum: 0, weightDecay: 0 };
const result = { loss: 0, accuracy: 0, numSamples: 100, steps: 4, seconds: 0, samplesPerSecond: 0 };
const instruction = { clip_norm: 1, noise_multiplier: 1, delta: 1e-5 };

describe('learner-side DP covers the weights only', () => {
  it('a learner refuses a round in which another algorithm would send extra vectors in clear', () => {
    registerLearnerAlgorithm({
      type: 'h4_sends_extras',
      instructions: { h4_extra: { type: 'boolean' } },
      create: () => ({ type: 'h4_sends_extras', afterTraining: () => ({ extras: { class_sums: new Float32Array(4) } }) }),
    });
    const algorithms = new LearnerAlgorithms();
    const outcome = { round: 1, global: new Float32Array(4), layout, tensors: {}, settings, numSamples: 100, local: new Float32Array(4), result };
    for (const mode of ['local_dp', 'dp_sgd']) {
      const active = algorithms.forRound({ [mode]: instruction, h4_extra: true });
      expect(() => algorithms.afterTraining(active, outcome)).toThrow(`learner algorithm "${mode}" makes the weights differentially private, not the extra vectors class_sums`);
    }
    // Without DP the same algorithm sends its extras.
    expect(algorithms.afterTraining(algorithms.forRound({ h4_extra: true }), outcome).extras.class_sums).toHaveLength(4);
  });

  it('oiafed validate refuses local DP and DP-SGD with rules whose learners send such vectors (scaffold, fedproto)', () => {
    for (const [type, what] of [['scaffold', 'control-variate delta'], ['fedproto', 'class prototypes']] as const) {
      const config = syntheticTrainerConfig({ aggregator: { type }, differential_privacy: { mode: 'local', noise_multiplier: 2, clip_norm: 1 } });
      expect(componentProblems(config)).toEqual([{ path: 'differential_privacy', message: expect.stringContaining(what) }]);
    }
  });
});
