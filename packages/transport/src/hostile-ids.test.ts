// Attacks on what a listening node logs and whom it believes, over real gRPC on 127.0.0.1:
// node ids that forge log lines or flood the log, a flood of bogus chunk frames, and a
// registered stream that sends envelopes under another node's id.
import * as grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { Envelope, EnvelopeKind, type Frame } from './generated/oiafed/v1/node.js';
import { GrpcTransport } from './grpc-transport.js';
import { authMetadata, nodeServiceDefinition, PATHS } from './grpc-wire.js';
import type { Logger } from './types.js';

const open: GrpcTransport[] = [];
const clients: grpc.Client[] = [];
afterEach(async () => {
  clients.splice(0).forEach((c) => c.close());
  await Promise.all(open.splice(0).map((t) => t.stop()));
});

/** A logger that keeps what a line-oriented log file would receive. */
function logFile(): { logger: Logger; lines: string[]; bytes(): number } {
  const lines: string[] = [];
  const rec = (level: string) => (msg: string, meta?: object) => lines.push(`${level} ${msg} ${meta ? JSON.stringify(meta) : ''}`);
  return { logger: { debug: rec('debug'), info: rec('info'), warn: rec('warn'), error: rec('error') }, lines, bytes: () => lines.reduce((a, l) => a + l.length + 1, 0) };
}

async function trainer(logger: Logger): Promise<GrpcTransport> {
  const t = new GrpcTransport({ nodeId: 'trainer', role: 'trainer', listen: { host: '127.0.0.1', port: 0 }, logger });
  open.push(t);
  await t.start();
  return t;
}

function connect(port: number) {
  const client = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  clients.push(client);
  const stream = client.makeBidiStreamRequest(PATHS.connect, nodeServiceDefinition.connect.requestSerialize, nodeServiceDefinition.connect.responseDeserialize, authMetadata(undefined)) as grpc.ClientDuplexStream<Frame, Frame>;
  const frames: Frame[] = [];
  stream.on('data', (f: Frame) => frames.push(f));
  const ended = new Promise<{ code?: number; details?: string }>((resolve) => {
    stream.on('error', (e: grpc.ServiceError) => resolve({ code: e.code, details: e.details }));
    stream.on('end', () => resolve({}));
  });
  const register = (nodeId: string) => stream.write({ kind: { $case: 'register', register: { nodeId, role: 'learner', metadata: {}, expectedTarget: '' } } });
  const next = (what: (f: Frame) => boolean) =>
    new Promise<Frame | undefined>((resolve) => {
      const found = frames.find(what);
      if (found) return resolve(found);
      stream.on('data', (f: Frame) => what(f) && resolve(f));
      void ended.then(() => resolve(undefined));
    });
  return { stream, frames, ended, register, next };
}

describe('node ids from the wire', () => {
  it('refuses an id with a newline, and no forged line reaches the log', async () => {
    const log = logFile();
    const t = await trainer(log.logger);
    const c = connect(t.boundPort!);
    c.register('learner_0\n2026-11-29T00:00:00Z info transport trainer: peer joined {"peer":"admin"}');
    const end = await c.ended;
    expect(end.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(end.details).toMatch(/register\.node_id: node id may only hold letters, digits/);
    expect(t.peers()).toEqual([]);
    expect(log.lines.filter((l) => l.includes('\n'))).toEqual([]);
    expect(log.lines.join('\n')).not.toMatch(/"peer":"admin"/);
  });

  it('refuses a 16 MB id, and the log grows by less than 4 KB', async () => {
    const log = logFile();
    const t = await trainer(log.logger);
    const before = log.bytes();
    const c = connect(t.boundPort!);
    c.register('a'.repeat(16 * 1024 * 1024));
    const end = await c.ended;
    expect(end.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(end.details).toMatch(/node id is 16777216 characters long \(at most 128\)/);
    expect(t.peers()).toEqual([]);
    expect(log.bytes() - before).toBeLessThan(4096);
  });

  it('refuses a role or metadata that would carry a forged line or a megabyte into the log', async () => {
    const log = logFile();
    const t = await trainer(log.logger);
    const attempt = async (role: string, metadata: Record<string, string>) => {
      const c = connect(t.boundPort!);
      c.stream.write({ kind: { $case: 'register', register: { nodeId: 'learner_0', role, metadata, expectedTarget: '' } } });
      return c.ended;
    };
    expect(await attempt('learner\nERROR forged', {})).toMatchObject({ code: grpc.status.INVALID_ARGUMENT, details: expect.stringMatching(/register\.role/) });
    expect(await attempt('learner', { 'oiafed.backend': 'x'.repeat(1 << 20) })).toMatchObject({ details: expect.stringMatching(/at most 1024/) });
    expect(await attempt('learner', { 'oiafed.backend': 'cpu\nERROR forged' })).toMatchObject({ details: expect.stringMatching(/control characters/) });
    expect(t.peers()).toEqual([]);
    expect(log.lines.filter((l) => l.includes('\n'))).toEqual([]);
    expect(log.bytes()).toBeLessThan(4096);
  });

  it('50,000 bogus chunk frames from one peer write a bounded number of log lines', async () => {
    const log = logFile();
    const t = await trainer(log.logger);
    const c = connect(t.boundPort!);
    c.register('chunky');
    await c.next((f) => f.kind?.$case === 'registerAck');
    const before = log.lines.length;
    const data = new Uint8Array(16);
    for (let i = 0; i < 50_000; i++) c.stream.write({ kind: { $case: 'chunk', chunk: { envelopeId: `e${i}`, seq: 7, last: false, data, totalBytes: 0 } } });
    // Frames are handled in order: the pong (or the trainer closing the stream) comes after all of them.
    c.stream.write({ kind: { $case: 'heartbeat', heartbeat: { timestampMs: 1, pong: false } } });
    await c.next((f) => f.kind?.$case === 'heartbeat' && f.kind.heartbeat.pong);
    const added = log.lines.slice(before);
    expect(added.length).toBeLessThanOrEqual(10);
    expect(added.join('\n')).toMatch(/chunky/);
  });
});

describe('a registered stream is bound to its id', () => {
  it("refuses an envelope whose source is another node's id", async () => {
    const log = logFile();
    const t = await trainer(log.logger);
    const sources: string[] = [];
    t.handle('report', (_p, ctx) => (sources.push(ctx.source), { body: 'ok' }));
    const c = connect(t.boundPort!);
    c.register('learner_1');
    await c.next((f) => f.kind?.$case === 'registerAck');
    const send = (id: string, source: string) => {
      const data = Envelope.encode({
        id, method: 'report', source, target: 'trainer', correlationId: '', timestampMs: 0, metadata: {},
        body: new TextEncoder().encode('{}'), tensors: [], kind: EnvelopeKind.ENVELOPE_KIND_REQUEST, timeoutMs: 5000,
      }).finish();
      c.stream.write({ kind: { $case: 'chunk', chunk: { envelopeId: id, seq: 0, last: true, data, totalBytes: data.byteLength } } });
    };
    const reply = async (id: string) => {
      const f = await c.next((fr) => fr.kind?.$case === 'chunk' && Envelope.decode(fr.kind.chunk.data).correlationId === id);
      return f?.kind?.$case === 'chunk' ? Envelope.decode(f.kind.chunk.data) : undefined;
    };
    send('spoof', 'learner_0');
    expect((await reply('spoof'))?.error).toMatchObject({ code: 'UNAUTHENTICATED', message: "stream registered as 'learner_1' may not send as 'learner_0'" });
    send('honest', 'learner_1');
    expect((await reply('honest'))?.error).toBeUndefined();
    expect(sources).toEqual(['learner_1']);
  });
});
