// Issue 12 item 15: a learner answers its train request with a RESPONSE that does not decode (a
// tensor shape holding 2^62). It used to be dropped as a "malformed envelope" and the round waited
// its whole round_timeout; now the correlation id is read from the undecodable bytes and the call
// fails at once. The round_timeout here is 600 s, beyond this test's own time limit, so a trainer
// that still waited for it would fail the test.
import { freeLoopbackPort } from '@oiafed/core';
import { Envelope } from '@oiafed/transport/wire';
import { afterEach, describe, expect, it } from 'vitest';
import { Federation, killAll, PROCESS_TEST_TIMEOUT_MS, roundLines, summaryLine, waitUntil } from './helpers.js';
import { answeringLearner, rawClient, responseTo } from './raw-peer.js';

let fed: Federation | undefined;
const cleanups: Array<() => void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) c();
  await killAll();
  fed?.cleanup();
  fed = undefined;
});

describe('a train reply that does not decode', () => {
  it('fails that learner in its round at once, and the rounds go on with the honest learner', async () => {
    fed = new Federation('malformed-reply', { numLearners: 1, rounds: 100_000, minClients: 1, port: await freeLoopbackPort(), roundTimeoutS: 600 });
    const trainer = fed.startTrainer();
    fed.startLearner(0);
    await waitUntil(() => roundLines(trainer.stdout).find((r) => r.round >= 2), 150_000, () => trainer.tail());

    const client = rawClient(fed.o.port);
    cleanups.push(() => client.close());
    // 2^62 as a decimal string: the protobuf encoder writes it as an int64; decoders into JS numbers refuse it.
    const shape = ['4611686018427387904' as unknown as number];
    const evil = await answeringLearner(client, 'learner_evil', (req) =>
      Envelope.encode({ ...responseTo(req, 'learner_evil'), tensors: [{ name: 'w', shape, dtype: 1, data: new Uint8Array(4) }] }).finish(),
    );
    cleanups.push(() => evil.stop());
    const hit = await waitUntil(() => roundLines(trainer.stdout).find((r) => r.failed.includes('learner_evil')), 120_000, () => trainer.tail());
    const next = await waitUntil(() => roundLines(trainer.stdout).find((r) => r.round > hit.round && r.participants >= 1), 60_000, () => trainer.tail());
    const line = summaryLine('malformed-reply', { failedRound: hit.round, roundSeconds: hit.seconds, roundTimeoutS: 600, nextRound: next.round });
    expect(hit.participants, line).toBe(1);
    expect(trainer.stderr, line).toMatch(/learner_evil.*could not be decoded/);
    expect(trainer.alive).toBe(true);
  }, PROCESS_TEST_TIMEOUT_MS);
});
