/**
 * Distributed DP end to end (issue 16 §2): differential_privacy mode local together with
 * secure_aggregation, in a serial federation running the real SecAgg+ stages.
 */
import { epsilonFor } from '@oiafed/privacy';
import { describe, expect, it } from 'vitest';
import { runSerial } from '../src/runner.js';
import { syntheticTrainerConfig } from './helpers.js';

const DELTA = 1e-5;

describe('distributed DP: local noise shares under secure aggregation', () => {
  it('rounds aggregate the unmasked noised mean, and the eps line is central DP at q = 1', async () => {
    const config = syntheticTrainerConfig({
      trainer: { args: { max_rounds: 2, min_clients: 3, local_epochs: 1, registration_timeout: 20, round_timeout: 120 } },
      aggregator: { type: 'fedavg', args: { weighted: false } },
      secure_aggregation: { enabled: true, clip_range: 4, quantization_bits: 32 },
      differential_privacy: { mode: 'local', noise_multiplier: 1, clip_norm: 0.1, delta: DELTA },
    });
    const lines: string[] = [];
    const summary = await runSerial(config, { numClients: 3, report: (line) => lines.push(line) });
    expect(summary.rounds.map((r) => r.aggregated)).toEqual([true, true]);
    const shown = lines.filter((l) => l.startsWith('round ')).map((l) => Number(/ eps=([0-9.]+)/.exec(l)?.[1]));
    expect(shown).toEqual([1, 2].map((r) => Number(epsilonFor(1, 1, r, DELTA).toFixed(3))));
    expect(summary.weights.every(Number.isFinite)).toBe(true);
  });

  it('a weighted rule is refused before round 1, saying why', async () => {
    const config = syntheticTrainerConfig({
      secure_aggregation: { enabled: true, clip_range: 4 },
      differential_privacy: { mode: 'local', noise_multiplier: 1, clip_norm: 0.1 },
    });
    await expect(runSerial(config, { numClients: 3 })).rejects.toThrow(/weighted: false/);
  });
});
