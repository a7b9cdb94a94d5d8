import { describe, expect, it } from 'vitest';
import { describeLearnerAlgorithmContract } from '@oiafed/core/testing';
import { LearnerAlgorithms } from '../src/learner-algorithms/learner-algorithms.js';
import { runSerial } from '../src/runner.js';
import { syntheticTrainerConfig } from './helpers.js';

const layout = [{ name: 'w', shape: [3], offset: 0, size: 3, trainable: true, isNormalization: false }];
const settings = { epochs: 1, batchSize: 8, lr: 0.1, optimizer: 'sgd' as const, momentum: 0, weightDecay: 0 };
const result = { loss: 1, accuracy: 0.5, numSamples: 8, steps: 1, seconds: 0, samplesPerSecond: 0 };

describe('feddyn learner side (Acar et al. 2021, Algorithm 1)', () => {
  it('adds alpha/2 ||theta - theta^{t-1}||^2 and -<g_k, theta>; g_k -= alpha (theta_k - theta^{t-1}) after training', () => {
    const algorithms = new LearnerAlgorithms({ type: 'default' });
    const active = algorithms.forRound({ feddyn: 0.5 });
    const global = Float32Array.from([1, 1, 1]);
    const round = { round: 1, global, layout, tensors: {}, settings };
    const first = algorithms.beforeTraining(active, round);
    expect(first.proximalMu).toBe(0.5);
    expect(first.proximalCenter).toBe(global);
    expect([...first.gradientCorrection!].map(Math.abs)).toEqual([0, 0, 0]);
    // g = 0 - 0.5 * ([3, 1, 0] - [1, 1, 1]) = [-1, 0, 0.5]; the next correction is -g
    algorithms.afterTraining(active, { ...round, local: Float32Array.from([3, 1, 0]), result });
    const second = algorithms.beforeTraining(algorithms.forRound({ feddyn: 0.5 }), { ...round, round: 2 });
    expect([...second.gradientCorrection!].map((v) => v + 0)).toEqual([1, 0, -0.5]);
  });

  it('needs alpha from the plan or its own args', () => {
    const own = new LearnerAlgorithms({ type: 'feddyn', args: { alpha: 0.2 } });
    expect(own.beforeTraining(own.forRound({}), { round: 1, global: new Float32Array(3), layout, tensors: {}, settings }).proximalMu).toBe(0.2);
    const none = new LearnerAlgorithms({ type: 'feddyn' });
    expect(() => none.beforeTraining(none.forRound({}), { round: 1, global: new Float32Array(3), layout, tensors: {}, settings })).toThrow('feddyn: no alpha');
    expect(() => none.forRound({ feddyn: -1 })).toThrow('learner algorithm "feddyn": instructions.feddyn must be > 0, got -1');
  });

  it('runs a federation by config alone (aggregator feddyn; the default learner serves its instruction)', async () => {
    const summary = await runSerial(
      syntheticTrainerConfig({
        aggregator: { type: 'feddyn', args: { alpha: 0.01 } },
        trainer: { args: { max_rounds: 3, min_clients: 3, local_epochs: 1, registration_timeout: 20, round_timeout: 60 } },
        learner: { args: { batch_size: 32, lr: 0.05, momentum: 0, device: 'cpu' } },
      }),
      { numClients: 3 },
    );
    expect(summary.rounds.every((r) => r.participants === 3 && r.aggregated)).toBe(true);
    expect(summary.weights.every(Number.isFinite)).toBe(true);
  });
});

describeLearnerAlgorithmContract('feddyn', { instructions: { feddyn: 0.1 } });
describeLearnerAlgorithmContract('feddyn', { args: { alpha: 0.1 } });
