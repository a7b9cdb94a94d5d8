import { describe, expect, it } from 'vitest';
import { runSerial } from '../src/runner.js';
import { syntheticTrainerConfig } from './helpers.js';

describe('central DP: target_epsilon stops training before the round that would exceed it', () => {
  it('min_clients selects every learner (q = 1, not client_fraction 0.34): stops after round 2 instead of failing round 3', async () => {
    // Start check at q = 0.34 over 3 rounds: epsilon 1.83 <= 3.5. Charged at q = 1: 2.17, 3.19, then 4.01 > 3.5.
    const config = syntheticTrainerConfig({
      trainer: { args: { max_rounds: 3, min_clients: 3, client_fraction: 0.34, local_epochs: 1, registration_timeout: 20, round_timeout: 60 } },
      differential_privacy: { mode: 'central', noise_multiplier: 2, clip_norm: 1, target_epsilon: 3.5 },
    });
    const summary = await runSerial(config, { numClients: 3 });
    expect(summary.rounds.map((r) => r.aggregated)).toEqual([true, true]);
    expect(summary.stoppedBy).toBe('callback');
    expect(summary.stopReason).toMatch(/central.*next round would spend epsilon 4\.011 > target_epsilon 3\.5/);
  });
});
