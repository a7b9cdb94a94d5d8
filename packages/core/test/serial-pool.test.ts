import { LearnerPool } from '@oiafed/models';
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
});
