import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createAggregator, registerAggregator, type Aggregator } from '@oiafed/aggregators';
import { epsilonFor, localDpEpsilon } from '@oiafed/privacy';
import { describe, expect, it } from 'vitest';
import { componentProblems } from '../src/component-check.js';
import { runSerial } from '../src/runner.js';
import { syntheticTrainerConfig } from './helpers.js';

const trainer = { args: { max_rounds: 3, min_clients: 3, local_epochs: 1, registration_timeout: 20, round_timeout: 120 } };
const DELTA = 1e-5;

/** What the trainer's rule receives from each learner: the L2 norm of (update - global), per round. */
const received: Array<{ round: number; norm: number; size: number }> = [];
registerAggregator(
  'recording_fedavg',
  () => {
    const inner = createAggregator({ type: 'fedavg', args: {} });
    const rule: Aggregator = {
      type: 'recording_fedavg',
      configureRound: (ctx) => inner.configureRound(ctx),
      aggregate: (ctx, updates, failures) => {
        for (const u of updates) {
          let sq = 0;
          for (let i = 0; i < u.weights.length; i++) sq += (u.weights[i]! - ctx.global[i]!) ** 2;
          received.push({ round: ctx.round, norm: Math.sqrt(sq), size: u.weights.length });
        }
        return inner.aggregate(ctx, updates, failures);
      },
      getState: () => inner.getState(),
      setState: (s) => inner.setState(s),
    };
    return rule;
  },
  { type: 'object', properties: {} },
);

const epsilonsShown = (lines: string[]) => lines.filter((l) => l.startsWith('round ')).map((l) => Number(/ eps=([0-9.]+)/.exec(l)?.[1]));

describe('local DP: each learner clips and noises its own update (serial federation, learners without DP config)', () => {
  it('the trainer receives only noised updates: ||update - global|| is about noise_multiplier * clip * sqrt(params)', async () => {
    received.length = 0;
    const config = syntheticTrainerConfig({
      trainer: { args: { ...trainer.args, max_rounds: 1 } },
      aggregator: { type: 'recording_fedavg' },
      differential_privacy: { mode: 'local', noise_multiplier: 2, clip_norm: 0.5 },
    });
    const summary = await runSerial(config, { numClients: 3 });
    expect(summary.rounds[0]!.aggregated).toBe(true);
    expect(received).toHaveLength(3);
    for (const { norm, size } of received) {
      // clipped delta (norm <= 0.5) plus N(0, 1) per coordinate: the norm is sqrt(size) within a few percent.
      expect(Math.abs(norm - Math.sqrt(size)) / Math.sqrt(size)).toBeLessThan(0.1);
    }
  });

  it('without differential_privacy the same rule sees the plain updates, far shorter than the noise', async () => {
    received.length = 0;
    const config = syntheticTrainerConfig({ trainer: { args: { ...trainer.args, max_rounds: 1 } }, aggregator: { type: 'recording_fedavg' } });
    await runSerial(config, { numClients: 3 });
    for (const { norm, size } of received) expect(norm).toBeLessThan(0.2 * Math.sqrt(size));
  });

  it('every round line shows the largest learner epsilon (sensitivity 2C, q = 1), also kept in the history', async () => {
    const config = syntheticTrainerConfig({ trainer, differential_privacy: { mode: 'local', noise_multiplier: 4, clip_norm: 1, delta: DELTA } });
    const lines: string[] = [];
    const summary = await runSerial(config, { numClients: 3, report: (line) => lines.push(line) });
    expect(summary.rounds.every((r) => r.aggregated)).toBe(true);
    const expected = [1, 2, 3].map((r) => localDpEpsilon(4, r, DELTA));
    expect(epsilonsShown(lines)).toEqual(expected.map((e) => Number(e.toFixed(3))));
    const history = readFileSync(join(config.tracker.run_dir!, 'history.jsonl'), 'utf8').trim().split('\n');
    history.map((l) => JSON.parse(l).dp_epsilon).forEach((eps, k) => expect(eps).toBeCloseTo(expected[k]!, 10));
  });

  it('target_epsilon stops training before the round that would exceed it', async () => {
    const target = (localDpEpsilon(4, 2, DELTA) + localDpEpsilon(4, 3, DELTA)) / 2;
    const config = syntheticTrainerConfig({ trainer, differential_privacy: { mode: 'local', noise_multiplier: 4, clip_norm: 1, target_epsilon: target } });
    const summary = await runSerial(config, { numClients: 3 });
    expect(summary.rounds).toHaveLength(2);
    expect(summary.stoppedBy).toBe('callback');
    expect(summary.stopReason).toMatch(/next round would take a learner to epsilon .* > target_epsilon/);
    expect(summary.rounds.at(-1)!.dp_epsilon).toBeLessThanOrEqual(target);
  });

  it('refuses to start when one round already exceeds target_epsilon, and oiafed validate says the same', async () => {
    const config = syntheticTrainerConfig({ trainer, differential_privacy: { mode: 'local', noise_multiplier: 1, clip_norm: 1, target_epsilon: 1 } });
    await expect(runSerial(config, { numClients: 3 })).rejects.toThrow(/one round at noise_multiplier 1 already spends epsilon .* > target_epsilon 1/);
    expect(componentProblems(config)).toEqual([{ path: 'differential_privacy', message: expect.stringMatching(/already spends/) }]);
  });

  it('works under a rule that looks at single updates (median), unlike central DP', async () => {
    const config = syntheticTrainerConfig({
      trainer: { args: { ...trainer.args, max_rounds: 1 } },
      aggregator: { type: 'median' },
      differential_privacy: { mode: 'local', noise_multiplier: 4, clip_norm: 1 },
    });
    expect(componentProblems(config)).toEqual([]);
    expect((await runSerial(config, { numClients: 3 })).rounds[0]!.aggregated).toBe(true);
  });
});

describe('DP-SGD on the learners', () => {
  const dpTrainer = { args: { ...trainer.args, max_rounds: 2 } };

  it('each learner accounts q = batch / n over its steps; the round line shows the largest epsilon', async () => {
    const config = syntheticTrainerConfig({ trainer: dpTrainer, differential_privacy: { mode: 'dp_sgd', noise_multiplier: 1.1, clip_norm: 1, delta: DELTA } });
    const lines: string[] = [];
    const summary = await runSerial(config, { numClients: 3, report: (line) => lines.push(line) });
    expect(summary.rounds.every((r) => r.aggregated)).toBe(true);
    // 200 samples per learner, 20% held out for test: 160 to train on; batch 32: q = 0.2 and 5 steps per round.
    const expected = [1, 2].map((r) => epsilonFor(32 / 160, 1.1, 5 * r, DELTA));
    expect(epsilonsShown(lines)).toEqual(expected.map((e) => Number(e.toFixed(3))));
    expect(summary.weights.every(Number.isFinite)).toBe(true);
  });

  it('runs the same on the serial learner pool (local training on worker threads)', async () => {
    const config = syntheticTrainerConfig({ trainer: dpTrainer, differential_privacy: { mode: 'dp_sgd', noise_multiplier: 1.1, clip_norm: 1, delta: DELTA } });
    const lines: string[] = [];
    const summary = await runSerial(config, { numClients: 3, learnerPool: 2, report: (line) => lines.push(line) });
    expect(summary.rounds.every((r) => r.aggregated)).toBe(true);
    expect(epsilonsShown(lines)).toEqual([1, 2].map((r) => Number(epsilonFor(32 / 160, 1.1, 5 * r, DELTA).toFixed(3))));
  });

  it('with a target below one round, the learners refuse to train and the trainer stops at once', async () => {
    const config = syntheticTrainerConfig({ trainer: dpTrainer, differential_privacy: { mode: 'dp_sgd', noise_multiplier: 0.5, clip_norm: 1, target_epsilon: 0.5 } });
    const summary = await runSerial(config, { numClients: 3 });
    expect(summary.rounds).toHaveLength(1);
    expect(summary.rounds[0]!.participants).toBe(0);
    expect(summary.stopReason).toMatch(/refused to train: .*privacy budget: DP-SGD: this round would take this learner to epsilon/);
  });

  it('needs noise_multiplier (the spend depends on partitions only learners know)', () => {
    const config = syntheticTrainerConfig({ trainer: dpTrainer, differential_privacy: { mode: 'dp_sgd', clip_norm: 1, target_epsilon: 3 } });
    expect(componentProblems(config)).toEqual([{ path: 'differential_privacy', message: expect.stringMatching(/mode dp_sgd.*set noise_multiplier/) }]);
  });
});
