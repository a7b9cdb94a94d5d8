import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runSerial } from '../src/runner.js';
import { syntheticTrainerConfig } from './helpers.js';

describe('serial mode (trainer + virtual learners in one process)', () => {
  it('trains with rising accuracy and writes the run history', async () => {
    const config = syntheticTrainerConfig();
    const lines: string[] = [];
    const summary = await runSerial(config, { numClients: 3, report: (line) => lines.push(line) });
    expect(summary.rounds).toHaveLength(4);
    expect(summary.rounds.every((r) => r.participants === 3 && r.aggregated)).toBe(true);
    const accuracies = summary.rounds.map((r) => r.accuracy!);
    expect(accuracies.at(-1)!).toBeGreaterThan(0.3);
    expect(accuracies.at(-1)!).toBeGreaterThan(accuracies[0]! - 0.05);
    expect(lines.filter((l) => l.startsWith('round '))).toHaveLength(4);
    expect(lines.at(-1)).toMatch(/^done: 4 rounds/);
    const history = readFileSync(join(config.tracker.run_dir!, 'history.jsonl'), 'utf8').trim().split('\n');
    expect(history.map((l) => JSON.parse(l).round)).toEqual([1, 2, 3, 4]);
  });

  it.each(['fedprox', 'scaffold', 'fednova', 'fedadam', 'median'])(
    'runs %s end to end, the default learner serving its instructions',
    async (type) => {
      const config = syntheticTrainerConfig({
        aggregator: { type, args: type === 'fedadam' ? { server_lr: 0.05 } : {} },
        trainer: { args: { max_rounds: 3, min_clients: 3, local_epochs: 1, registration_timeout: 20, round_timeout: 60 } },
      });
      const summary = await runSerial(config, { numClients: 3 });
      expect(summary.rounds).toHaveLength(3);
      expect(summary.weights.every(Number.isFinite)).toBe(true);
      expect(summary.finalAccuracy!).toBeGreaterThan(0.15);
    },
  );

  it('samples client_fraction of the learners each round, reproducibly', async () => {
    const config = syntheticTrainerConfig({
      trainer: { args: { max_rounds: 3, min_clients: 2, client_fraction: 0.5, local_epochs: 1, min_available_clients: 4, registration_timeout: 20 } },
    });
    const first = await runSerial(config, { numClients: 4 });
    expect(first.rounds.map((r) => r.selected)).toEqual([2, 2, 2]);
    const again = await runSerial(config, { numClients: 4 });
    expect(again.weights).toEqual(first.weights);
  });

  it('stops early through the early_stopping callback', async () => {
    const config = syntheticTrainerConfig({
      trainer: { args: { max_rounds: 30, min_clients: 2, local_epochs: 1, registration_timeout: 20 } },
      // No round can beat the first by 50 points, so patience runs out after rounds 2 and 3.
      callbacks: [{ type: 'early_stopping', patience: 2, metric: 'accuracy', mode: 'max', min_delta: 0.5 }],
    });
    const summary = await runSerial(config, { numClients: 2 });
    expect(summary.stoppedBy).toBe('callback');
    expect(summary.rounds.length).toBe(3);
  });
});

describe('SCAFFOLD with momentum (NIID-Bench uses SGD momentum 0.9)', () => {
  it('keeps up with FedAvg instead of diverging', async () => {
    const run = (type: string) =>
      runSerial(
        syntheticTrainerConfig({
          seed: 1,
          aggregator: { type },
          trainer: { args: { max_rounds: 8, min_clients: 4, local_epochs: 2, registration_timeout: 20 } },
          learner: { args: { batch_size: 32, lr: 0.01, momentum: 0.9, weight_decay: 1e-5, device: 'cpu' } },
          model: { type: 'mlp', args: { hidden: [64] } },
          datasets: [{ type: 'synthetic', args: { alpha: 0.5, beta: 0.5, samples_per_client: 400 } }],
        }),
        { numClients: 4 },
      );
    const [fedavg, scaffold] = [await run('fedavg'), await run('scaffold')];
    // Before the correction moved outside the optimizer, SCAFFOLD fell to ~2-15% by round 6 here.
    expect(Math.min(...scaffold.rounds.slice(2).map((r) => r.accuracy!))).toBeGreaterThan(0.6);
    expect(scaffold.finalAccuracy!).toBeGreaterThan(fedavg.finalAccuracy! - 0.1);
  });
});
