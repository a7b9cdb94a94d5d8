import { execFileSync } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { Federation, killAll, logTime, roundLines, sleep, summaryLine, waitUntil, PROCESS_TEST_TIMEOUT_MS } from './helpers.js';

// Two network namespaces of our own joined by a veth pair; addresses from a private range exist
// only inside them. Nothing outside these namespaces is touched.
const tag = String(process.pid % 100_000);
const NS_TRAINER = `oiafed-${tag}-t`;
const NS_LEARNER = `oiafed-${tag}-l`;
const VETH_TRAINER = `of${tag}t`;
const VETH_LEARNER = `of${tag}l`;
const TRAINER_IP = '10.200.0.1';
const LEARNER_IP = '10.200.0.2';

function ip(...args: string[]): string {
  return execFileSync('ip', args, { stdio: 'pipe' }).toString();
}

/** Why namespaces cannot be used here, or undefined when they can. */
function netnsUnavailable(): string | undefined {
  if (process.getuid?.() !== 0) return 'not running as root';
  const probe = `oiafed-${tag}-probe`;
  try {
    ip('netns', 'add', probe);
  } catch (error) {
    return `\`ip netns add\` failed: ${(error as Error).message.split('\n')[0]}`;
  } finally {
    try {
      ip('netns', 'del', probe);
    } catch {
      // it was never created
    }
  }
  return undefined;
}

function removeNamespaces(): void {
  for (const ns of [NS_TRAINER, NS_LEARNER]) {
    try {
      ip('netns', 'del', ns);
    } catch {
      // not created or already gone
    }
  }
}

function createNamespaces(): void {
  removeNamespaces();
  ip('netns', 'add', NS_TRAINER);
  ip('netns', 'add', NS_LEARNER);
  // Created inside the trainer namespace, the peer end moved straight into the learner's.
  ip('-n', NS_TRAINER, 'link', 'add', VETH_TRAINER, 'type', 'veth', 'peer', 'name', VETH_LEARNER, 'netns', NS_LEARNER);
  ip('-n', NS_TRAINER, 'addr', 'add', `${TRAINER_IP}/24`, 'dev', VETH_TRAINER);
  ip('-n', NS_LEARNER, 'addr', 'add', `${LEARNER_IP}/24`, 'dev', VETH_LEARNER);
  for (const [ns, dev] of [
    [NS_TRAINER, VETH_TRAINER],
    [NS_LEARNER, VETH_LEARNER],
  ] as const) {
    ip('-n', ns, 'link', 'set', 'lo', 'up');
    ip('-n', ns, 'link', 'set', dev, 'up');
  }
}

const unavailable = netnsUnavailable();
if (unavailable) process.stdout.write(`partition test skipped: network namespaces unavailable (${unavailable})\n`);

let fed: Federation | undefined;
afterEach(async () => {
  await killAll();
  removeNamespaces();
  fed?.cleanup();
  fed = undefined;
});

describe('network partition between trainer and one learner', () => {
  it.skipIf(unavailable !== undefined)('carries on without the cut-off learner past the heartbeat timeout, then takes it back', async () => {
    createNamespaces();
    const heartbeat = { interval: 0.3, timeout: 2 };
    fed = new Federation('partition', { numLearners: 2, rounds: 500, minClients: 1, port: 50051, trainerHost: TRAINER_IP, localEpochs: 4, heartbeat });
    const inTrainerNs = ['ip', 'netns', 'exec', NS_TRAINER];
    const inLearnerNs = ['ip', 'netns', 'exec', NS_LEARNER];
    const trainer = fed.startTrainer([], inTrainerNs);
    const far = fed.startLearner(0, inLearnerNs); // across the veth link
    const near = fed.startLearner(1, inTrainerNs); // same namespace as the trainer
    await waitUntil(() => roundLines(trainer.stdout).find((r) => r.participants === 2), 150_000, () => trainer.tail());

    const cutAt = Date.now();
    ip('-n', NS_LEARNER, 'link', 'set', VETH_LEARNER, 'down');
    await trainer.waitFor(/peer 'learner_0' declared gone/, 15_000, 'stderr');
    await far.waitFor(/lost the trainer/, 15_000, 'stderr');
    // Rounds go on with the learner that is still reachable.
    const duringCut = await waitUntil(
      () => roundLines(trainer.stdout).find((r) => r.participants === 1 && r.selected === 1),
      30_000,
      () => trainer.tail(),
    );
    // Keep the link down well past the heartbeat timeout.
    await sleep(Math.max(0, cutAt + 2 * heartbeat.timeout * 1000 - Date.now()));
    const restoredAt = Date.now();
    ip('-n', NS_LEARNER, 'link', 'set', VETH_LEARNER, 'up');

    await far.waitFor(/re-registered with the trainer/, 30_000, 'stderr');
    const back = await waitUntil(
      () => roundLines(trainer.stdout).find((r) => r.round > duringCut.round && r.participants === 2),
      30_000,
      () => trainer.tail(),
    );
    expect(trainer.alive).toBe(true);

    trainer.kill('SIGTERM');
    expect(await trainer.exited, trainer.tail()).toEqual({ code: 0, signal: null });
    expect(await far.exited).toEqual({ code: 0, signal: null });
    expect(await near.exited).toEqual({ code: 0, signal: null });

    const rounds = roundLines(trainer.stdout);
    const trainerDetect = logTime(trainer.stderr, /peer 'learner_0' declared gone/)! - cutAt;
    const learnerDetect = logTime(far.stderr, /lost the trainer/)! - cutAt;
    const rejoin = logTime(far.stderr, /re-registered with the trainer/)! - restoredAt;
    summaryLine('partition', {
      faults: 1,
      cut_ms: restoredAt - cutAt,
      rounds_completed: rounds.length,
      rounds_without_learner: rounds.filter((r) => r.round >= duringCut.round && r.round < back.round).length,
      updates_lost: rounds.reduce((s, r) => s + r.selected - r.participants, 0),
      trainer_detect_ms: trainerDetect,
      learner_detect_ms: learnerDetect,
      rejoin_after_restore_ms: rejoin,
      back_in_round: back.round,
    });
  }, PROCESS_TEST_TIMEOUT_MS);
});
