// Issue 12 item 6: a learner answers its train request with a 24 MB body of nested arrays. Parsing
// that JSON held the trainer's event loop for 14-21 s (longer than the heartbeat timeout, so honest
// learners were declared gone and /health went silent). The trainer (a child process) must refuse
// the body unparsed, log it, keep answering /health and keep the honest learner.
import { appendFileSync } from 'node:fs';
import { request } from 'node:http';
import { freeLoopbackPort } from '@oiafed/core';
import { Envelope, EnvelopeKind, type Frame } from '@oiafed/transport/wire';
import { afterEach, describe, expect, it } from 'vitest';
import { Federation, killAll, PROCESS_TEST_TIMEOUT_MS, roundLines, summaryLine, waitUntil } from './helpers.js';
import { chunkFrame, connectRegistered, heartbeatFrame, rawClient, type RawPeerClient } from './raw-peer.js';

const NESTING = 12_000_000;
const CHUNK = 4 * 1024 * 1024;
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

/** Reassembles chunk frames into envelopes (what a learner's StreamLink does, minus its checks). */
function envelopeReader(onEnvelope: (env: Envelope) => void): (f: Frame) => void {
  const parts = new Map<string, Uint8Array[]>();
  return (f) => {
    if (f.kind?.$case !== 'chunk') return;
    const c = f.kind.chunk;
    const list = c.seq === 0 ? [] : (parts.get(c.envelopeId) ?? []);
    list.push(c.data);
    parts.set(c.envelopeId, list);
    if (!c.last) return;
    parts.delete(c.envelopeId);
    onEnvelope(Envelope.decode(Buffer.concat(list)));
  };
}

/** A learner that registers, heartbeats, and answers every train request with `body` (chunked). */
async function nestedJsonLearner(client: RawPeerClient, nodeId: string, body: Buffer): Promise<{ replies: number }> {
  const state = { replies: 0 };
  let stream: ReturnType<typeof connectRegistered>['stream'] | undefined;
  const reply = (req: Envelope) => {
    if (req.kind !== EnvelopeKind.ENVELOPE_KIND_REQUEST || !/train/.test(req.method)) return;
    const bytes = Envelope.encode({
      id: `${nodeId}-${state.replies}`, method: req.method, source: nodeId, target: req.source, correlationId: req.id,
      timestampMs: Date.now(), metadata: {}, body, tensors: [], kind: EnvelopeKind.ENVELOPE_KIND_RESPONSE, timeoutMs: 0,
    }).finish();
    const id = `${nodeId}-reply-${state.replies++}`;
    for (let off = 0, seq = 0; off < bytes.length; off += CHUNK, seq++)
      stream!.write(chunkFrame(id, seq, off + CHUNK >= bytes.length, bytes.subarray(off, off + CHUNK), seq === 0 ? bytes.length : 0));
  };
  const conn = connectRegistered(client, nodeId, { onFrame: envelopeReader(reply) });
  stream = conn.stream;
  await conn.acked;
  const timer = setInterval(() => stream!.write(heartbeatFrame()), 500);
  cleanups.push(() => clearInterval(timer));
  return state;
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
    const evil = await nestedJsonLearner(client, 'learner_evil', body);
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
