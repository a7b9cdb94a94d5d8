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
