import { join } from 'node:path';
import { loadConfig } from '@oiafed/config';
import { freeLoopbackPort, runSerial } from '@oiafed/core';
import { afterEach, describe, expect, it } from 'vitest';
import { Federation, finalAccuracy, killAll, roundLines, logTime, summaryLine, waitUntil, PROCESS_TEST_TIMEOUT_MS } from './helpers.js';

let fed: Federation | undefined;
afterEach(async () => {
  await killAll();
  fed?.cleanup();
  fed = undefined;
});

describe('kill -9 of the trainer mid-run', () => {
  it('restarts with --resume, the learners reconnect by themselves, and the run ends where an uninterrupted one does', async () => {
    const rounds = 8;
    fed = new Federation('trainer-kill', {
      numLearners: 2,
      rounds,
      minClients: 2,
      port: await freeLoopbackPort(),
      localEpochs: 4,
      checkpointEvery: 1,
      heartbeat: { interval: 0.5, timeout: 5 },
    });

    // Reference: the same federation without the crash, in one process (same seeds and partitions).
    process.env.OIAFED_BACKEND = 'cpu';
    const loaded = loadConfig(fed.trainerConfig, { env: {} });
    const quiet = {
      ...loaded,
      tracker: { ...loaded.tracker, backends: [{ type: 'console', level: 'error' }], run_dir: join(fed.dir, 'reference-run') },
      checkpoint: { ...loaded.checkpoint, dir: join(fed.dir, 'reference-checkpoints') },
    } as typeof loaded;
    const reference = await runSerial(quiet, { numClients: 2 });
    expect(reference.rounds.length).toBe(rounds);

    const trainer = fed.startTrainer();
    const learners = [0, 1].map((i) => fed!.startLearner(i));
    await trainer.waitFor(/checkpoint of round 3 written/, 150_000, 'stderr');
    const killedAt = Date.now();
    trainer.kill('SIGKILL');
    await trainer.exited;
    const roundsBefore = roundLines(trainer.stdout);

    // Both learners notice and start redialing on their own.
    await Promise.all(learners.map((l) => l.waitFor(/lost the trainer/, 20_000, 'stderr')));
    const detectedAt = Math.max(...learners.map((l) => logTime(l.stderr, /lost the trainer/)!));
    await Promise.all(learners.map((l) => l.waitFor(/reconnect attempt 2 to 'trainer' failed/, 20_000, 'stderr')));

    const resumed = fed.startTrainer(['--resume']);
    await resumed.waitFor(/resuming from the checkpoint of round \d+/, 150_000, 'stderr');
    await Promise.all(learners.map((l) => l.waitFor(/re-registered with the trainer/, 60_000, 'stderr')));
    const reconnectedAt = Math.max(...learners.map((l) => logTime(l.stderr, /re-registered with the trainer/)!));
    const resumedStartedAt = logTime(resumed.stderr, /transport trainer: listening/)!;
    const exit = await resumed.exited;
    expect(exit, resumed.tail()).toEqual({ code: 0, signal: null });
    for (const learner of learners) expect(await learner.exited).toEqual({ code: 0, signal: null });

    const roundsAfter = roundLines(resumed.stdout);
    const resumedFrom = Number(resumed.stderr.match(/resuming from the checkpoint of round (\d+)/)![1]);
    expect(resumedFrom).toBeGreaterThanOrEqual(3);
    expect(roundsAfter[0]!.round).toBe(resumedFrom + 1);
    expect(roundsAfter[roundsAfter.length - 1]!.round).toBe(rounds);
    const accuracy = await waitUntil(() => finalAccuracy(resumed.stdout), 1000, () => resumed.tail());
    // Resume is exact on the trainer side; learner-side randomness keeps this at "within noise".
    expect(Math.abs(accuracy - reference.finalAccuracy!)).toBeLessThan(0.08);

    summaryLine('trainer-kill-9-resume', {
      faults: 1,
      rounds_completed: roundsBefore.length + roundsAfter.length,
      rounds_repeated: roundsBefore.length - resumedFrom,
      updates_lost: roundsBefore.reduce((s, r) => s + r.selected - r.participants, 0) + roundsAfter.reduce((s, r) => s + r.selected - r.participants, 0),
      learner_detect_ms: detectedAt - killedAt,
      learners_back_after_restart_listening_ms: reconnectedAt - resumedStartedAt,
      downtime_ms: reconnectedAt - killedAt,
      final_accuracy: accuracy.toFixed(4),
      uninterrupted_accuracy: reference.finalAccuracy!.toFixed(4),
    });
  }, PROCESS_TEST_TIMEOUT_MS);
});
