import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { epsilonFor } from '@oiafed/privacy';
import { describe, expect, it } from 'vitest';
import { componentProblems } from '../src/component-check.js';
import { runSerial } from '../src/runner.js';
import { syntheticTrainerConfig } from './helpers.js';

const trainer = { args: { max_rounds: 3, min_clients: 3, local_epochs: 1, registration_timeout: 20, round_timeout: 60 } };

describe('central differential privacy in a federation (serial mode)', () => {
  it('every round line shows the epsilon spent so far, and the history keeps it', async () => {
    const config = syntheticTrainerConfig({ trainer, differential_privacy: { noise_multiplier: 1, clip_norm: 1, delta: 1e-5 } });
    const lines: string[] = [];
    const summary = await runSerial(config, { numClients: 3, report: (line) => lines.push(line) });
    expect(summary.rounds.every((r) => r.aggregated)).toBe(true);
    // client_fraction 1: every round is one full-batch (q = 1) Gaussian step.
    const expected = [1, 2, 3].map((rounds) => epsilonFor(1, 1, rounds, 1e-5));
    const shown = lines.filter((l) => l.startsWith('round ')).map((l) => Number(/ eps=([0-9.]+)/.exec(l)?.[1]));
    expect(shown).toEqual(expected.map((e) => Number(e.toFixed(3))));
    const history = readFileSync(join(config.tracker.run_dir!, 'history.jsonl'), 'utf8').trim().split('\n');
    history.map((l) => JSON.parse(l).dp_epsilon).forEach((eps, k) => expect(eps).toBeCloseTo(expected[k]!, 10));
    expect(summary.weights.every(Number.isFinite)).toBe(true);
  });

  it('refuses to start when the noise multiplier would overspend target_epsilon over max_rounds', async () => {
    const config = syntheticTrainerConfig({
      trainer,
      differential_privacy: { noise_multiplier: 0.5, clip_norm: 1, target_epsilon: 1 },
    });
    await expect(runSerial(config, { numClients: 3 })).rejects.toThrow(/spends epsilon .* > target_epsilon 1/);
  });

  it('refuses a rule that does not average updates, saying why', async () => {
    const config = syntheticTrainerConfig({ trainer, aggregator: { type: 'krum' }, differential_privacy: { noise_multiplier: 1, clip_norm: 1 } });
    await expect(runSerial(config, { numClients: 3 })).rejects.toThrow(/averages updates.*krum/);
  });

  it('oiafed validate (componentProblems) reports the same refusals under differential_privacy', () => {
    const krum = syntheticTrainerConfig({ trainer, aggregator: { type: 'krum' }, differential_privacy: { noise_multiplier: 1, clip_norm: 1 } });
    expect(componentProblems(krum)).toEqual([{ path: 'differential_privacy', message: expect.stringMatching(/averages updates.*krum/) }]);
    const fine = syntheticTrainerConfig({ trainer, differential_privacy: { noise_multiplier: 1, clip_norm: 1 } });
    expect(componentProblems(fine)).toEqual([]);
  });
});
