import { FedModel, LearnerPool } from '@oiafed/models';
import { describe, expect, it, vi } from 'vitest';
import { runSerial } from '../src/runner.js';
import { syntheticTrainerConfig } from './helpers.js';

// Serial mode's learner pool: learners train concurrently on worker threads (each its own wasm
// backend and model). The trainer folds updates in learner-id order, so the global model must be
// bit-identical to the sequential run's (learners one after another on one thread each).
describe('serial mode with a learner pool', () => {
  it.each(['fedavg', 'scaffold'])('%s: 4 learners on 2 workers give the sequential run\'s global weights, bit for bit', async (type) => {
    const config = () =>
      syntheticTrainerConfig({
        aggregator: { type },
        trainer: { args: { max_rounds: 3, min_clients: 4, local_epochs: 1, registration_timeout: 30, round_timeout: 120 } },
        learner: { args: { batch_size: 16, lr: 0.05, momentum: 0.5, device: 'cpu', threads: 1 } },
        model: { type: 'mlp', args: { hidden: [32], dropout: 0.2 } },
      });
    const sequential = await runSerial(config(), { numClients: 4 });
    // Counts the pool's runs (and lets them through): the pooled run must really train on it.
    const runs = vi.spyOn(LearnerPool.prototype, 'train');
    const pooled = await runSerial(config(), { numClients: 4, learnerPool: 2 });
    expect(runs).toHaveBeenCalledTimes(12);
    runs.mockRestore();
    expect(pooled.rounds.map((r) => r.participants)).toEqual([4, 4, 4]);
    expect(sequential.weights.length).toBeGreaterThan(0);
    expect(Buffer.from(pooled.weights.buffer).equals(Buffer.from(sequential.weights.buffer))).toBe(true);
    expect(pooled.rounds.map((r) => r.accuracy)).toEqual(sequential.rounds.map((r) => r.accuracy));
  });

  // The trainer's model used to start data-parallel workers of its own for each evaluation beside
  // the learners' (issue 13: a wasm heap and an isolate each). Now the pool's workers, or the
  // learners' shared model, evaluate the global model: same ranges, same numbers.
  it('evaluates the global model on the learners\' workers: the same accuracy with the pool as on the shared model', async () => {
    const config = () =>
      syntheticTrainerConfig({
        trainer: { args: { max_rounds: 2, min_clients: 2, local_epochs: 1, registration_timeout: 30, round_timeout: 120 } },
        learner: { args: { batch_size: 16, lr: 0.05, device: 'cpu', threads: 2 } },
        model: { type: 'mlp', args: { hidden: [32] } },
      });
    const evaluations = vi.spyOn(FedModel.prototype, 'evaluate');
    const trainings = vi.spyOn(FedModel.prototype, 'train');
    const sequential = await runSerial(config(), { numClients: 2 });
    // Every evaluation ran on the model the learners train (their shared one), none on the trainer's own.
    expect(new Set(evaluations.mock.contexts).size).toBe(1);
    expect(trainings.mock.contexts).toContain(evaluations.mock.contexts[0]);
    evaluations.mockRestore();
    trainings.mockRestore();
    const onPool = vi.spyOn(LearnerPool.prototype, 'evaluate');
    const pooled = await runSerial(config(), { numClients: 2, learnerPool: 2 });
    expect(onPool).toHaveBeenCalledTimes(2);
    onPool.mockRestore();
    expect(sequential.rounds.every((r) => typeof r.accuracy === 'number')).toBe(true);
    // The compute plan evaluates this small model on one thread; the pool sums two ranges: the
    // loss agrees up to summation order, the accuracy (counts) exactly.
    expect(pooled.rounds.map((r) => r.accuracy)).toEqual(sequential.rounds.map((r) => r.accuracy));
    pooled.rounds.forEach((r, i) => expect(Math.abs((r.loss ?? NaN) - (sequential.rounds[i].loss ?? NaN))).toBeLessThan(1e-5));
  });
});
