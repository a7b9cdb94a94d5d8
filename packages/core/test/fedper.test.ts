import { describe, expect, it } from 'vitest';
import { describeLearnerAlgorithmContract } from '@oiafed/core/testing';
import { LearnerAlgorithms } from '../src/learner-algorithms/learner-algorithms.js';
import { runSerial } from '../src/runner.js';
import { syntheticTrainerConfig } from './helpers.js';

const layout = [
  { name: 'fc1/kernel', shape: [2], offset: 0, size: 2, trainable: true, isNormalization: false },
  { name: 'fc1/bias', shape: [1], offset: 2, size: 1, trainable: true, isNormalization: false },
  { name: 'fc2/kernel', shape: [2], offset: 3, size: 2, trainable: true, isNormalization: false },
  { name: 'fc2/bias', shape: [1], offset: 5, size: 1, trainable: true, isNormalization: false },
];
const settings = { epochs: 1, batchSize: 8, lr: 0.1, optimizer: 'sgd' as const, momentum: 0, weightDecay: 0 };
const result = { loss: 1, accuracy: 0.5, numSamples: 8, steps: 1, seconds: 0, samplesPerSecond: 0 };

/** Weights a learner starts round 2 from, after training to `local` in round 1. */
function secondStart(personalLayers: number, local: number[], global2: number[]): number[] {
  const algorithms = new LearnerAlgorithms({ type: 'fedper', args: { personal_layers: personalLayers } });
  const active = algorithms.forRound({});
  const global = new Float32Array(6);
  expect([...algorithms.startWeights(global, layout, active)]).toEqual([0, 0, 0, 0, 0, 0]);
  algorithms.afterTraining(active, { round: 1, global, layout, tensors: {}, settings, local: Float32Array.from(local), result });
  return [...algorithms.startWeights(Float32Array.from(global2), layout, active)];
}

describe('fedper learner side (Arivazhagan et al. 2019)', () => {
  it('keeps the last layer (kernel and bias) personal and takes the base layers from the global model', () => {
    expect(secondStart(1, [1, 2, 3, 4, 5, 6], [9, 9, 9, 9, 9, 9])).toEqual([9, 9, 9, 4, 5, 6]);
  });

  it('personal_layers counts layers, not tensors', () => {
    expect(secondStart(2, [1, 2, 3, 4, 5, 6], [9, 9, 9, 9, 9, 9])).toEqual([1, 2, 3, 4, 5, 6]);
    expect(() => new LearnerAlgorithms({ type: 'fedper', args: { personal_layers: 0 } })).toThrow('learner algorithm "fedper": args.personal_layers must be >= 1, got 0');
  });

  it('runs by config with plain averaging: identical to fedavg in round 1, personal heads from round 2', async () => {
    const trainer = (rounds: number) => ({ args: { max_rounds: rounds, min_clients: 3, local_epochs: 1, registration_timeout: 20, round_timeout: 60 } });
    const learner = { type: 'fedper', args: { batch_size: 32, lr: 0.05, momentum: 0.5, device: 'cpu' } };
    const fedper = async (rounds: number) => runSerial(syntheticTrainerConfig({ trainer: trainer(rounds), learner }), { numClients: 3 });
    const fedavg = async (rounds: number) => runSerial(syntheticTrainerConfig({ trainer: trainer(rounds) }), { numClients: 3 });
    expect((await fedper(1)).weights).toEqual((await fedavg(1)).weights);
    const two = await fedper(2);
    expect(two.rounds.every((r) => r.participants === 3 && r.aggregated)).toBe(true);
    expect(two.weights).not.toEqual((await fedavg(2)).weights);
  });
});

describeLearnerAlgorithmContract('fedper');
describeLearnerAlgorithmContract('fedper', { args: { personal_layers: 2 } });
