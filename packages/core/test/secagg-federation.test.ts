/**
 * Secure aggregation with real learners (serial mode: real local training, memory transport) and
 * what `oiafed validate` says about configs that cannot use it (issue 16 §1).
 */
import { levelsFor, quantizationStep } from '@oiafed/privacy';
import { describe, expect, it } from 'vitest';
import { componentProblems } from '../src/component-check.js';
import { runSerial } from '../src/runner.js';
import { syntheticTrainerConfig } from './helpers.js';

const trainer = { args: { max_rounds: 1, min_clients: 3, local_epochs: 1, registration_timeout: 20, round_timeout: 60 } };
const secure = { threshold: 0.7, clip_range: 8 };

describe('secure aggregation in a federation (serial mode)', () => {
  it('gives the same global model as the plain round, within the stated quantization bound', async () => {
    const plain = await runSerial(syntheticTrainerConfig({ trainer }), { numClients: 3 });
    const lines: string[] = [];
    const masked = await runSerial(syntheticTrainerConfig({ trainer, secure_aggregation: secure }), { numClients: 3, report: (l) => lines.push(l) });
    expect(masked.rounds[0]).toMatchObject({ aggregated: true, participants: 3 });
    const bound = quantizationStep(8, levelsFor(32, 3), 3);
    let worst = 0;
    for (let j = 0; j < plain.weights.length; j++) worst = Math.max(worst, Math.abs(plain.weights[j]! - masked.weights[j]!));
    expect(worst).toBeLessThanOrEqual(bound);
    expect(lines.some((l) => /^round 1\/1 {2}learners 3\/3/.test(l))).toBe(true);
  });

  it('works with a server optimizer (fedadam) on the unmasked mean', async () => {
    const summary = await runSerial(syntheticTrainerConfig({ trainer, aggregator: { type: 'fedadam' }, secure_aggregation: secure }), { numClients: 3 });
    expect(summary.rounds[0]).toMatchObject({ aggregated: true, participants: 3 });
    expect(summary.weights.every(Number.isFinite)).toBe(true);
  });

  it('refuses rules that need individual updates, and central DP, saying why (oiafed validate and at start)', async () => {
    for (const type of ['median', 'krum', 'trimmed_mean', 'scaffold']) {
      const config = syntheticTrainerConfig({ trainer, aggregator: { type }, secure_aggregation: secure });
      expect(componentProblems(config)).toEqual([
        { path: 'secure_aggregation', message: expect.stringMatching(new RegExp(`only the sum of the updates, and aggregator "${type}" cannot work from a sum: `)) },
      ]);
    }
    const krum = syntheticTrainerConfig({ trainer, aggregator: { type: 'krum' }, secure_aggregation: secure });
    await expect(runSerial(krum, { numClients: 3 })).rejects.toThrow(/Krum scores each individual update/);
    const central = syntheticTrainerConfig({ trainer, secure_aggregation: secure, differential_privacy: { noise_multiplier: 1, clip_norm: 1 } });
    expect(componentProblems(central).map((p) => p.path)).toContain('secure_aggregation');
    expect(componentProblems(syntheticTrainerConfig({ trainer, secure_aggregation: { ...secure, enabled: false }, aggregator: { type: 'krum' } }))).toEqual([]);
    expect(componentProblems(syntheticTrainerConfig({ trainer, secure_aggregation: secure }))).toEqual([]);
  });
});
