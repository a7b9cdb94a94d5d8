// Issue 12 item 1: a registered peer streams envelopes that never finish. The trainer (a child
// process, so its RSS is its own) must refuse them at the first chunk or when a link's bounds are
// reached, close the link, keep its memory within 64 MB of its baseline and keep training with
// the honest learner.
import { freeLoopbackPort } from '@oiafed/core';
import { afterEach, describe, expect, it } from 'vitest';
import { Federation, killAll, PROCESS_TEST_TIMEOUT_MS, roundLines, summaryLine, waitUntil } from './helpers.js';
import { chunkFrame, connectRegistered, peakRssMb, rawClient, rssMb, writeFrame } from './raw-peer.js';

const MB = 1024 * 1024;
/** Bytes the attacker tries to push in each scenario. */
const ATTACK_BYTES = 600 * MB;

let fed: Federation | undefined;
afterEach(async () => {
  await killAll();
  fed?.cleanup();
  fed = undefined;
});

interface AttackResult {
  connections: number;
  /** Registrations the trainer refused (the cool-down after a violation). */
  refusedRegistrations: number;
  sentMb: number;
  /** Most bytes one connection handed to HTTP/2 before the trainer ended it. */
  maxPerConnectionMb: number;
  endings: string[];
}

/**
 * Registers as `nodeId` and writes chunks made by `chunkAt(i)` until the trainer ends the stream,
 * then registers again, until `total` bytes were written or `budgetMs` passed.
 */
async function attack(
  port: number,
  nodeId: string,
  limits: { total: number; budgetMs: number },
  chunkAt: (i: number, data: Uint8Array) => Buffer,
  chunkBytes: number,
): Promise<AttackResult> {
  const client = rawClient(port);
  const data = new Uint8Array(chunkBytes).fill(7);
  const result: AttackResult = { connections: 0, refusedRegistrations: 0, sentMb: 0, maxPerConnectionMb: 0, endings: [] };
  const stopAt = Date.now() + limits.budgetMs;
  let sent = 0;
  try {
    while (sent < limits.total && Date.now() < stopAt) {
      const { stream, acked, ended } = connectRegistered(client, nodeId);
      try {
        await acked;
      } catch {
        result.refusedRegistrations++;
        await new Promise((r) => setTimeout(r, 50));
        continue;
      }
      result.connections++;
      let here = 0;
      for (let i = 0; sent < limits.total; i++) {
        const frame = chunkAt(i, data);
        if (!(await writeFrame(stream, frame, ended))) break;
        here += frame.byteLength;
        sent += frame.byteLength;
      }
      const end = await Promise.race([ended, new Promise<undefined>((r) => setTimeout(r, 5_000, undefined))]);
      result.endings.push(end ? `${end.code ?? 'end'}:${end.details ?? ''}` : 'still open');
      stream.cancel();
      result.maxPerConnectionMb = Math.max(result.maxPerConnectionMb, here / MB);
    }
  } finally {
    client.close();
  }
  result.sentMb = sent / MB;
  return result;
}

describe('a registered peer streaming envelopes that never finish', () => {
  it('is cut off at the first chunk or at its link bounds; trainer RSS stays within 64 MB of baseline and the honest learner keeps training', async () => {
    fed = new Federation('hostile-stream', {
      numLearners: 1,
      rounds: 100_000,
      minClients: 1,
      port: await freeLoopbackPort(),
      roundTimeoutS: 30,
      heartbeat: { interval: 0.5, timeout: 10 },
      extra: { transport: { mode: 'grpc', grpc: { timeout: 5, max_message_mb: 1 } } },
    });
    const trainer = fed.startTrainer();
    fed.startLearner(0);
    await waitUntil(() => roundLines(trainer.stdout).find((r) => r.round >= 3), 150_000, () => trainer.tail());
    const baselineMb = rssMb(trainer.pid);

    // The review's attack: 1 MB chunks announcing 2^31-1 bytes, a new envelope every 64 chunks.
    const { peakMb: peakLying, result: lying } = await peakRssMb(trainer.pid, () =>
      attack(fed!.o.port, 'learner_evil', { total: ATTACK_BYTES, budgetMs: 15_000 }, (i, d) => chunkFrame(`big-${Math.floor(i / 64)}`, i % 64, false, d, 2 ** 31 - 1), MB),
    );
    // Within max_message_mb, but never finished: 256 KB chunks, three per envelope (768 KB held
    // each), then a new envelope; the per-link in-flight budget (one envelope) ends the link.
    const { peakMb: peakPartial, result: partial } = await peakRssMb(trainer.pid, () =>
      attack(fed!.o.port, 'learner_evil2', { total: ATTACK_BYTES, budgetMs: 10_000 }, (i, d) => chunkFrame(`part-${Math.floor(i / 3)}`, i % 3, false, d, MB), MB / 4),
    );
    const roundAfter = roundLines(trainer.stdout).at(-1)!.round;
    // The honest learner still trains: a later round completes with it.
    const later = await waitUntil(() => roundLines(trainer.stdout).find((r) => r.round > roundAfter + 1 && r.participants >= 1), 60_000, () => trainer.tail());
    expect(trainer.alive).toBe(true);

    const line = summaryLine('hostile-stream', {
      baselineMb: baselineMb.toFixed(0),
      peakLyingMb: peakLying.toFixed(0),
      peakPartialMb: peakPartial.toFixed(0),
      lyingSentMb: lying.sentMb.toFixed(0),
      lyingConnections: lying.connections,
      lyingRefusedRegistrations: lying.refusedRegistrations,
      lyingMaxPerConnMb: lying.maxPerConnectionMb.toFixed(1),
      partialSentMb: partial.sentMb.toFixed(0),
      partialConnections: partial.connections,
      partialRefusedRegistrations: partial.refusedRegistrations,
      partialMaxPerConnMb: partial.maxPerConnectionMb.toFixed(1),
      roundAfterAttack: later.round,
    });
    // The attacker kept trying for the whole budget, but the cool-down after each violation let it
    // hand over only a few frames: the trainer never had to read the 600 MB.
    expect(lying.refusedRegistrations, line).toBeGreaterThan(0);
    expect(partial.refusedRegistrations, line).toBeGreaterThan(0);
    expect(lying.sentMb + partial.sentMb, line).toBeLessThan(64);
    expect(peakLying - baselineMb, line).toBeLessThan(64);
    expect(peakPartial - baselineMb, line).toBeLessThan(64);
    // Early: a connection carries a few MB at most (what was in flight when the refusal came).
    expect(lying.maxPerConnectionMb, line).toBeLessThan(8);
    expect(partial.maxPerConnectionMb, line).toBeLessThan(8);
    expect(lying.endings.every((e) => /RESOURCE_EXHAUSTED|^8:|^1:|^end/.test(e)), lying.endings.slice(0, 3).join(' | ')).toBe(true);
    // Each refusal is logged with the peer and the reason (rate-limited: RateLimitedLog's own test).
    const logged = (peer: string, re: RegExp) => trainer.stderr.split('\n').some((l) => l.includes(`'${peer}'`) && re.test(l));
    expect(logged('learner_evil', /envelope over the size limit/), trainer.tail()).toBe(true);
    expect(logged('learner_evil2', /in-flight budget exceeded/), trainer.tail()).toBe(true);
    expect(logged('learner_evil', /cooling down/), trainer.tail()).toBe(true);
  }, PROCESS_TEST_TIMEOUT_MS);
});
