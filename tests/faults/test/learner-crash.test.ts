import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { freeLoopbackPort } from '@oiafed/core';
import { afterEach, describe, expect, it } from 'vitest';
import { Federation, killAll, roundLines, logTime, summaryLine, waitUntil, PROCESS_TEST_TIMEOUT_MS } from './helpers.js';

let fed: Federation | undefined;
afterEach(async () => {
  await killAll();
  fed?.cleanup();
  fed = undefined;
});

describe('kill -9 of a learner mid-round', () => {
  it('finishes the round with the others, takes the restarted learner back, and stops cleanly on SIGTERM', async () => {
    fed = new Federation('learner-kill', {
      numLearners: 3,
      rounds: 500,
      minClients: 2,
      port: await freeLoopbackPort(),
      localEpochs: 2,
      roundTimeoutS: 30,
      // kill -9 closes the socket, so detection does not wait for the heartbeat; a long timeout
      // keeps CPU starvation on shared CI machines from looking like a dead learner.
      heartbeat: { interval: 0.5, timeout: 5 },
    });
    const trainer = fed.startTrainer();
    const learners = [0, 1, 2].map((i) => fed!.startLearner(i));
    await waitUntil(() => roundLines(trainer.stdout).find((r) => r.round >= 2 && r.participants === 3), 150_000, () => trainer.tail());

    // Rounds run back to back, so a round is in flight: every learner is training.
    const roundAtKill = roundLines(trainer.stdout).at(-1)!.round;
    const killedAt = Date.now();
    learners[1]!.kill('SIGKILL');
    await learners[1]!.exited;

    const detected = await trainer.waitFor(/peer left peer=learner_1/, 20_000, 'stderr');
    const detectedAt = logTime(trainer.stderr, /peer left peer=learner_1/) ?? Date.now();
    expect(detected).toBeTruthy();
    // The round that lost learner_1 finishes with the two others.
    const partial = await waitUntil(
      () => roundLines(trainer.stdout).find((r) => r.round > roundAtKill && r.participants === 2),
      60_000,
      () => trainer.tail(),
    );
    const partialRound = partial.round;
    const roundDoneAt = Date.now();

    const mark = trainer.stderr.length;
    const restartedAt = Date.now();
    const restarted = fed.startLearner(1);
    await waitUntil(() => /learner learner_1 registered/.test(trainer.stderr.slice(mark)), 150_000, () => trainer.tail());
    const rejoinedAt = Date.now();
    // A round after the rejoin has all three learners again.
    const rejoinRound = await waitUntil(
      () => roundLines(trainer.stdout).find((r) => r.round > partialRound && r.participants === 3),
      60_000,
      () => trainer.tail(),
    );
    await restarted.waitFor(/round \d+: trained/, 30_000, 'stderr');

    // Graceful shutdown: SIGTERM stops after the current step, writes a checkpoint, exits 0, and tells learners to stop.
    trainer.kill('SIGTERM');
    const exit = await trainer.exited;
    expect(exit).toEqual({ code: 0, signal: null });
    expect(trainer.stderr).toMatch(/checkpoint of round \d+ written/);
    const checkpoints = join(fed.dir, 'checkpoints');
    expect(existsSync(checkpoints) && readdirSync(checkpoints).length).toBeGreaterThan(0);
    for (const learner of [learners[0]!, learners[2]!, restarted]) {
      expect(await learner.exited).toEqual({ code: 0, signal: null });
    }

    const rounds = roundLines(trainer.stdout);
    const lost = rounds.reduce((sum, r) => sum + (r.selected - r.participants), 0);
    expect(trainer.stderr).not.toMatch(/uncaught|unhandled/i);
    summaryLine('learner-kill-9', {
      faults: 1,
      rounds_completed: rounds.length,
      updates_lost: lost,
      detect_ms: detectedAt - killedAt,
      round_finished_after_kill_ms: roundDoneAt - killedAt,
      rejoin_after_restart_ms: rejoinedAt - restartedAt,
      rejoined_in_round: rejoinRound.round,
    });
  }, PROCESS_TEST_TIMEOUT_MS);
});
