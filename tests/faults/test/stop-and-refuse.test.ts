/**
 * Issue 12 items 3 and 8 with a real trainer process: a peer that registers without the
 * capabilities the algorithm needs is refused (the federation goes on), and SIGTERM while the
 * trainer waits for learners saves what was finished and exits 0.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { resolveConfig } from '@oiafed/config';
import { LearnerMethods, RegistrationKeys, buildTransport, freeLoopbackPort, readLatestCheckpoint } from '@oiafed/core';
import { afterEach, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { Federation, killAll, roundLines, summaryLine, waitUntil, PROCESS_TEST_TIMEOUT_MS } from './helpers.js';

let fed: Federation | undefined;
const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!().catch(() => undefined);
  await killAll();
  fed?.cleanup();
  fed = undefined;
});

function setTrainerKeys(federation: Federation, change: (config: Record<string, unknown>) => void): void {
  const config = parse(readFileSync(federation.trainerConfig, 'utf8')) as Record<string, unknown>;
  change(config);
  writeFileSync(federation.trainerConfig, stringify(config));
}

describe('a peer without the capabilities the algorithm needs', () => {
  it('is refused once and told to stop; the trainer keeps running and trains with the capable learners', async () => {
    const port = await freeLoopbackPort();
    fed = new Federation('refuse', { numLearners: 2, rounds: 2, minClients: 2, port });
    setTrainerKeys(fed, (c) => (c.aggregator = { type: 'scaffold' }));
    const trainer = fed.startTrainer();
    await trainer.waitFor(/waiting for learners: 0\/2 registered/, 120_000, 'stderr');

    // The rogue registers first, over gRPC, offering only proximal_mu.
    const rogueConfig = resolveConfig(
      { node_id: 'rogue', role: 'learner', connect_to: [`trainer@127.0.0.1:${port}`], transport: { mode: 'grpc' }, retry: { max_attempts: 3, initial_delay: 0.05, max_delay: 0.2 } },
      { file: 'rogue.yaml', env: {} },
    );
    const rogue = buildTransport(rogueConfig, { metadata: { [RegistrationKeys.capabilities]: 'proximal_mu', [RegistrationKeys.learnerType]: 'custom' } });
    const told: string[] = [];
    rogue.handle(LearnerMethods.shutdown, (payload) => {
      told.push((payload.body as { reason: string }).reason);
      return { body: {} };
    });
    rogue.handle(LearnerMethods.train, () => {
      throw new Error('a refused learner must never be asked to train');
    });
    await rogue.start();
    cleanups.push(() => rogue.stop());
    await waitUntil(() => told.length > 0, 30_000, () => trainer.tail());
    expect(trainer.alive).toBe(true);

    const learners = [0, 1].map((i) => fed!.startLearner(i));
    expect(await trainer.exited).toEqual({ code: 0, signal: null });
    expect(roundLines(trainer.stdout).map((r) => [r.participants, r.selected])).toEqual([[2, 2], [2, 2]]);
    expect(trainer.stderr.match(/refusing learner rogue: aggregator "scaffold" needs learner support for scaffold/g)).toHaveLength(1);
    expect(told[0]).toMatch(/offers only \[proximal_mu\]/);
    for (const learner of learners) expect(await learner.exited).toEqual({ code: 0, signal: null });
    summaryLine('refuse-incapable', { trainer_exit: 0, refusals_logged: 1, rounds: 2 });
  }, PROCESS_TEST_TIMEOUT_MS);
});

describe('SIGTERM while the trainer waits for learners', () => {
  it('before round 1: exits 0 and writes no checkpoint', async () => {
    fed = new Federation('sigterm-wait0', { numLearners: 2, rounds: 3, minClients: 2, port: await freeLoopbackPort() });
    const trainer = fed.startTrainer();
    await trainer.waitFor(/waiting for learners: 0\/2 registered/, 120_000, 'stderr');
    trainer.kill('SIGTERM');
    expect(await trainer.exited).toEqual({ code: 0, signal: null });
    expect(trainer.stdout).toMatch(/^done: 0 rounds .*\(aborted\)/m);
    expect(existsSync(join(fed.dir, 'checkpoints', 'LATEST'))).toBe(false);
  }, PROCESS_TEST_TIMEOUT_MS);

  it('after round 1: saves a checkpoint of the last finished round and exits 0', async () => {
    fed = new Federation('sigterm-wait1', { numLearners: 2, rounds: 50, minClients: 2, port: await freeLoopbackPort(), registrationTimeoutS: 150 });
    const trainer = fed.startTrainer();
    const learners = [0, 1].map((i) => fed!.startLearner(i));
    await waitUntil(() => roundLines(trainer.stdout).length >= 1, 150_000, () => trainer.tail());
    // Both learners gone: the trainer ends the round it is in and then waits for them.
    for (const learner of learners) learner.kill('SIGKILL');
    const mark = trainer.stderr.length;
    await waitUntil(() => /waiting for learners: [01]\/2 registered/.test(trainer.stderr.slice(mark)), 60_000, () => trainer.tail());
    const finished = roundLines(trainer.stdout).at(-1)!.round;
    trainer.kill('SIGTERM');
    expect(await trainer.exited).toEqual({ code: 0, signal: null });
    expect(trainer.stderr).not.toMatch(/aborted while waiting/);
    const checkpoint = readLatestCheckpoint(join(fed.dir, 'checkpoints'));
    expect(checkpoint?.round).toBe(finished);
    expect(checkpoint!.weights.every(Number.isFinite)).toBe(true);
    summaryLine('sigterm-while-waiting', { exit: 0, checkpoint_round: finished });
  }, PROCESS_TEST_TIMEOUT_MS);
});
