// Issue 12 item 6: a learner answers its train request with a 24 MB body of nested arrays. Parsing
// that JSON held the trainer's event loop for 14-21 s (longer than the heartbeat timeout, so honest
// learners were declared gone and /health went silent). The trainer (a child process) must refuse
// the body unparsed, log it, keep answering /health and keep the honest learner.
import { appendFileSync } from 'node:fs';
import { request } from 'node:http';
import { freeLoopbackPort } from '@oiafed/core';
import { Envelope } from '@oiafed/transport/wire';
import { afterEach, describe, expect, it } from 'vitest';
import { Federation, killAll, PROCESS_TEST_TIMEOUT_MS, roundLines, summaryLine, waitUntil } from './helpers.js';
import { answeringLearner, rawClient, responseTo } from './raw-peer.js';

const NESTING = 12_000_000;
const HEARTBEAT_TIMEOUT_S = 4;

let fed: Federation | undefined;
const cleanups: Array<() => void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) c();
  await killAll();
  fed?.cleanup();
  fed = undefined;
});

/** GET /health; resolves with the milliseconds it took (or the time until it failed). */
function healthLatency(port: number): Promise<number> {
  const start = Date.now();
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port, path: '/health', timeout: 60_000 }, (res) => {
      res.resume();
      res.on('end', () => resolve(Date.now() - start));
    });
    req.on('error', () => resolve(Date.now() - start));
    req.end();
  });
}

describe('a train reply whose JSON body is 24 MB of nested arrays', () => {
  it('is refused before parsing; /health keeps answering and the honest learner stays', async () => {
    const healthPort = await freeLoopbackPort();
    fed = new Federation('json-body', {
      numLearners: 1,
      rounds: 100_000,
      minClients: 1,
      port: await freeLoopbackPort(),
      roundTimeoutS: 20,
      heartbeat: { interval: 0.5, timeout: HEARTBEAT_TIMEOUT_S },
    });
    // /health on the trainer only (extra would give every node the same port).
    appendFileSync(fed.trainerConfig, `\nhealth: {enabled: true, host: 127.0.0.1, port: ${healthPort}}\n`);
    const trainer = fed.startTrainer();
    fed.startLearner(0);
    await waitUntil(() => roundLines(trainer.stdout).find((r) => r.round >= 2), 150_000, () => trainer.tail());

    const client = rawClient(fed.o.port);
    cleanups.push(() => client.close());
    const body = Buffer.concat([Buffer.alloc(NESTING, '['), Buffer.alloc(NESTING, ']')]);
    const evil = await answeringLearner(client, 'learner_evil', (req) => Envelope.encode({ ...responseTo(req, 'learner_evil'), body }).finish());
    cleanups.push(() => evil.stop());
    let slowestMs = 0;
    let polls = 0;
    const poller = setInterval(() => void healthLatency(healthPort).then((ms) => ((slowestMs = Math.max(slowestMs, ms)), polls++)), 200);
    cleanups.push(() => clearInterval(poller));
    // A round that asked learner_evil, and one after it that still has the honest learner.
    const hit = await waitUntil(() => evil.replies > 0 && roundLines(trainer.stdout).find((r) => r.failed.includes('learner_evil')), 120_000, () => trainer.tail());
    const later = await waitUntil(() => roundLines(trainer.stdout).find((r) => r.round > hit.round && r.participants >= 1 && !r.failed.includes('learner_0')), 60_000, () => trainer.tail());
    clearInterval(poller);

    const line = summaryLine('json-body', { bodyMb: (body.length / 2 ** 20).toFixed(0), evilReplies: evil.replies, healthPolls: polls, slowestHealthMs: slowestMs, refusedRound: hit.round, laterRound: later.round });
    expect(trainer.alive).toBe(true);
    expect(trainer.stderr, line).toMatch(/refused 'learner_evil': reply refused: .*JSON body of 24000000\d* bytes is over the limit of 1048576/);
    // The event loop never stalled as long as a heartbeat timeout: nobody honest was declared gone.
    expect(trainer.stderr, line).not.toMatch(/peer 'learner_0' declared gone/);
    expect(slowestMs, line).toBeLessThan(HEARTBEAT_TIMEOUT_S * 1000);
    expect(polls, line).toBeGreaterThan(0);
  }, PROCESS_TEST_TIMEOUT_MS);
});
