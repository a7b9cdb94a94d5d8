import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { EnvelopeKind, Frame, type Envelope } from './generated/oiafed/v1/node.js';
import { GrpcTransport } from './grpc-transport.js';
import { MAX_UNREGISTERED_SOCKETS } from './web-socket-link.js';
import { nodeServiceDefinition } from './grpc-wire.js';
import { newId, payloadFromWire, payloadToWire } from './serde.js';
import { StreamLink } from './stream-link.js';
import type { PeerInfo, Transport } from './types.js';
import { createTestPki } from './testing/certificates.js';

const quiet = { debug() {}, info() {}, warn() {}, error() {} };
const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** A listening trainer (gRPC on a free port) that also accepts learners over WebSocket at /learn. */
async function startTrainer(extra: Partial<ConstructorParameters<typeof GrpcTransport>[0]> = {}, tls?: { key: Buffer; cert: Buffer }) {
  const trainer = new GrpcTransport({ nodeId: 'trainer', role: 'trainer', listen: { host: '127.0.0.1', port: 0 }, logger: quiet, ...extra });
  await trainer.start();
  const notFound = (_req: unknown, res: { writeHead(code: number): { end(): void } }) => res.writeHead(404).end();
  const http: Server = tls ? createHttpsServer(tls, notFound) : createServer(notFound);
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  trainer.acceptWebSockets(http, '/learn');
  cleanups.push(() => new Promise<void>((resolve) => http.close(() => resolve())), () => trainer.stop());
  return { trainer, url: `${tls ? 'wss' : 'ws'}://127.0.0.1:${(http.address() as AddressInfo).port}/learn` };
}

function waitEvent(t: Transport, event: 'peer-joined' | 'peer-left', ms = 10_000): Promise<PeerInfo> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no '${event}' within ${ms} ms`)), ms);
    const off = t.on(event, (p) => {
      clearTimeout(timer);
      off();
      resolve(p);
    });
  });
}

function opened(url: string, headers: Record<string, string> = {}, ca?: Buffer): Promise<WebSocket> {
  const ws = new WebSocket(url, { headers, ca });
  cleanups.push(() => ws.terminate());
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  });
}

function closeCode(ws: WebSocket): Promise<number> {
  return new Promise((resolve) => ws.once('close', (code) => resolve(code)));
}

const registerFrame = (nodeId: string, metadata: Record<string, string> = {}): Uint8Array =>
  nodeServiceDefinition.connect.requestSerialize({ kind: { $case: 'register', register: { nodeId, role: 'learner', metadata, expectedTarget: 'trainer' } } });

/**
 * A learner speaking the Connect protocol over a ws client: register, then a StreamLink that
 * answers every request by echoing its payload with `{echoed: method}` as body.
 */
async function wsLearner(url: string, nodeId: string, metadata: Record<string, string> = {}, ca?: Buffer) {
  const ws = await opened(url, {}, ca);
  const acked = new Promise<Frame>((resolve) => ws.once('message', (data) => resolve(Frame.decode(data as Buffer))));
  ws.send(registerFrame(nodeId, metadata));
  const ack = await acked;
  const link = new StreamLink(
    { write: (frame, done) => (ws.send(nodeServiceDefinition.connect.requestSerialize(frame as Frame), () => done?.()), true) },
    'trainer',
    {
      onEnvelope: async (env: Envelope): Promise<Envelope> => {
        const payload = payloadFromWire(env, 'test');
        const reply = payloadToWire({ body: { echoed: env.method }, tensors: payload.tensors }, 'test');
        return { ...env, ...reply, id: newId(), source: nodeId, target: env.source, correlationId: env.id, kind: EnvelopeKind.ENVELOPE_KIND_RESPONSE, error: undefined };
      },
      onDead: () => ws.terminate(),
      countBytes: () => undefined,
    },
    { chunkBytes: 64 * 1024, logger: quiet, selfId: nodeId },
  );
  ws.on('message', (data) => link.receive(Frame.decode(data as Buffer)));
  ws.on('close', () => link.close('socket closed'));
  cleanups.push(() => link.close('test over'));
  return { ws, link, ack };
}

describe('GrpcTransport: learners over WebSocket', () => {
  it('registers a WebSocket learner and calls it with a chunked model-sized payload, as over gRPC', async () => {
    const { trainer, url } = await startTrainer({ chunkBytes: 256 * 1024 });
    const joined = waitEvent(trainer, 'peer-joined');
    const { ack } = await wsLearner(url, 'browser_1', { 'oiafed.backend': 'webgl' });
    expect(ack.kind?.$case).toBe('registerAck');
    const peer = await joined;
    expect(peer).toMatchObject({ nodeId: 'browser_1', role: 'learner', metadata: { 'oiafed.backend': 'webgl', 'oiafed.link': 'websocket' } });
    // 3 MB of weights: many chunks each way.
    const data = Float32Array.from({ length: 750_000 }, (_, i) => Math.sin(i));
    const reply = await trainer.call('browser_1', 'oiafed.learner.train', { body: { round: 1 }, tensors: [{ name: 'w', shape: [data.length], dtype: 'float32', data }] });
    expect(reply.body).toEqual({ echoed: 'oiafed.learner.train' });
    const got = reply.tensors![0]!.data as Float32Array;
    expect(Buffer.compare(Buffer.from(got.buffer, got.byteOffset, got.byteLength), Buffer.from(data.buffer))).toBe(0);
    expect(trainer.peers().map((p) => p.nodeId)).toEqual(['browser_1']);
  });

  it('takes the bearer token from the register metadata (browsers) and refuses a wrong one', async () => {
    const { trainer, url } = await startTrainer({ authToken: 's3cret' });
    const bad = await opened(url);
    const badClosed = closeCode(bad);
    bad.send(registerFrame('browser_bad', { authorization: 'Bearer nope' }));
    expect(await badClosed).toBe(1008);
    const joined = waitEvent(trainer, 'peer-joined');
    await wsLearner(url, 'browser_ok', { authorization: 'Bearer s3cret' });
    const peer = await joined;
    expect(peer.nodeId).toBe('browser_ok');
    // The token is not kept where the round loop (and the dashboard) can see it.
    expect(peer.metadata.authorization).toBeUndefined();
  });

  it('serves learners over wss:// on an HTTPS server (a trainer with TLS)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'oiafed-wss-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    createTestPki(dir).issue('server', { cn: '127.0.0.1', san: 'IP:127.0.0.1' });
    const read = (f: string) => readFileSync(join(dir, f));
    const { trainer, url } = await startTrainer({}, { key: read('server.key'), cert: read('server.pem') });
    expect(url.startsWith('wss://')).toBe(true);
    const joined = waitEvent(trainer, 'peer-joined');
    await wsLearner(url, 'browser_tls', {}, read('ca.pem'));
    await joined;
    expect((await trainer.call('browser_tls', 'ping', { body: {} })).body).toEqual({ echoed: 'ping' });
  });

  it("negotiates permessage-deflate when the transport compresses (compression: gzip), and not otherwise", async () => {
    const plain = await startTrainer();
    expect((await wsLearner(plain.url, 'browser_plain')).ws.extensions).toBe('');
    const gzip = await startTrainer({ compression: 'gzip' });
    const { ws } = await wsLearner(gzip.url, 'browser_gzip');
    expect(ws.extensions).toContain('permessage-deflate');
    const data = new Float32Array(300_000);
    const reply = await gzip.trainer.call('browser_gzip', 'ping', { body: {}, tensors: [{ name: 'zeros', shape: [data.length], dtype: 'float32', data }] });
    expect(reply.tensors![0]!.data.length).toBe(data.length);
  });

  it('a lost WebSocket learner leaves like a lost gRPC one', async () => {
    const { trainer, url } = await startTrainer();
    const joined = waitEvent(trainer, 'peer-joined');
    const { ws } = await wsLearner(url, 'browser_2');
    await joined;
    const left = waitEvent(trainer, 'peer-left');
    ws.terminate();
    expect((await left).nodeId).toBe('browser_2');
    expect(trainer.peers()).toEqual([]);
  });
});

describe('GrpcTransport: hostile WebSocket frames', () => {
  it('cuts an oversized frame (over chunk size + header) before reading it, and keeps serving others', async () => {
    const { trainer, url } = await startTrainer({ chunkBytes: 64 * 1024 });
    const joined = waitEvent(trainer, 'peer-joined');
    const { ws } = await wsLearner(url, 'browser_big');
    await joined;
    const left = waitEvent(trainer, 'peer-left');
    const closed = closeCode(ws);
    ws.send(new Uint8Array(4 * 1024 * 1024));
    expect(await closed).toBe(1009);
    expect((await left).nodeId).toBe('browser_big');
    // The trainer still accepts and serves learners.
    const again = waitEvent(trainer, 'peer-joined');
    await wsLearner(url, 'browser_next');
    await again;
    const reply = await trainer.call('browser_next', 'ping', { body: {} });
    expect(reply.body).toEqual({ echoed: 'ping' });
  });

  it('closes a socket that sends a malformed frame, a text message or anything before register', async () => {
    const { trainer, url } = await startTrainer();
    const garbage = await opened(url);
    const garbageClosed = closeCode(garbage);
    garbage.send(Uint8Array.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, 1, 2]));
    expect(await garbageClosed).toBe(1007);

    const text = await opened(url);
    const textClosed = closeCode(text);
    text.send('{"register": true}');
    expect(await textClosed).toBe(1003);

    const early = await opened(url);
    const earlyClosed = closeCode(early);
    early.send(nodeServiceDefinition.connect.requestSerialize({ kind: { $case: 'heartbeat', heartbeat: { timestampMs: 1, pong: false } } }));
    expect(await earlyClosed).toBe(1008);
    expect(trainer.peers()).toEqual([]);
  });

  it('refuses upgrades past MAX_UNREGISTERED_SOCKETS sockets that have not registered, and counts registered ones out', async () => {
    const { trainer, url } = await startTrainer();
    const idle = await Promise.all(Array.from({ length: MAX_UNREGISTERED_SOCKETS }, () => opened(url)));
    await expect(opened(url)).rejects.toThrow(/503/);
    // One of them registers: its place frees up for a newcomer.
    const joined = waitEvent(trainer, 'peer-joined');
    idle[0]!.send(registerFrame('browser_late'));
    await joined;
    await opened(url);
    await expect(opened(url)).rejects.toThrow(/503/);
    // Closing idle sockets frees places too.
    await Promise.all(idle.slice(1, 3).map((ws) => {
      const closed = closeCode(ws);
      ws.close();
      return closed;
    }));
    await expect.poll(async () => (await opened(url).then(() => 'open', () => 'refused'))).toBe('open');
  });

  it('answers an upgrade to another path with 404 instead of leaving it hanging', async () => {
    const { url } = await startTrainer();
    await expect(opened(url.replace('/learn', '/elsewhere'))).rejects.toThrow(/404/);
  });

  it('closes a registered learner whose chunk announces an envelope over max_message_mb, and penalises its id', async () => {
    const { trainer, url } = await startTrainer({ maxMessageBytes: 1024 * 1024 });
    const joined = waitEvent(trainer, 'peer-joined');
    const { ws } = await wsLearner(url, 'browser_liar');
    await joined;
    const closed = closeCode(ws);
    const chunk: Frame = { kind: { $case: 'chunk', chunk: { envelopeId: 'x', seq: 0, last: false, data: new Uint8Array(16), totalBytes: 2 ** 31 - 2 } } };
    ws.send(nodeServiceDefinition.connect.requestSerialize(chunk));
    expect(await closed).toBe(1006);
    // Registering again at once is refused (cooling down), as over gRPC.
    const retry = await opened(url);
    const retryClosed = closeCode(retry);
    retry.send(registerFrame('browser_liar'));
    expect(await retryClosed).toBe(1008);
  });
});
