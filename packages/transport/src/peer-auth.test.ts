// Per-node credentials over real gRPC on 127.0.0.1: tokens bound to node ids, client
// certificates bound to node ids (fixture certificates made with openssl at test time), a
// learner whose id is held by a stale connection, and the start-up exposure warnings.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { EnvelopeKind, Envelope, type Frame } from './generated/oiafed/v1/node.js';
import { GrpcTransport, type GrpcTransportOptions } from './grpc-transport.js';
import { authMetadata, nodeServiceDefinition, PATHS } from './grpc-wire.js';
import { dialWarning, isLoopbackHost, listenWarnings } from './peer-auth.js';
import { createTestPki } from './testing/certificates.js';
import type { TransportError } from './errors.js';
import type { Logger } from './types.js';

const RETRY = { maxAttempts: 2, strategy: 'constant', initialDelayMs: 20, maxDelayMs: 20 } as const;
const TOKENS = { learner_0: 'token-of-learner-0', learner_1: 'token-of-learner-1' };

const open: GrpcTransport[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((t) => t.stop()));
});

function recorder(): { logger: Logger; lines: string[] } {
  const lines: string[] = [];
  const rec = (level: string) => (msg: string, meta?: object) => lines.push(`${level} ${msg} ${meta ? JSON.stringify(meta) : ''}`);
  return { logger: { debug: rec('debug'), info: rec('info'), warn: rec('warn'), error: rec('error') }, lines };
}

async function trainer(o: Partial<GrpcTransportOptions>): Promise<GrpcTransport> {
  const t = new GrpcTransport({ nodeId: 'trainer', role: 'trainer', listen: { host: '127.0.0.1', port: 0 }, ...o });
  open.push(t);
  await t.start();
  return t;
}

function learner(nodeId: string, port: number, o: Partial<GrpcTransportOptions>): GrpcTransport {
  const t = new GrpcTransport({ nodeId, role: 'learner', connectTo: [{ nodeId: 'trainer', host: '127.0.0.1', port }], retry: RETRY, ...o });
  open.push(t);
  return t;
}

const startError = (t: GrpcTransport) => t.start().then(() => undefined, (e: unknown) => e as TransportError);

/** Opens a raw Connect stream with `md`, registers as nodeId; resolves once acked. */
function rawRegister(port: number, nodeId: string, md = authMetadata(undefined)) {
  const client = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  const stream = client.makeBidiStreamRequest(PATHS.connect, nodeServiceDefinition.connect.requestSerialize, nodeServiceDefinition.connect.responseDeserialize, md) as grpc.ClientDuplexStream<Frame, Frame>;
  stream.on('error', () => {});
  const frames: Frame[] = [];
  stream.on('data', (f: Frame) => frames.push(f));
  const acked = new Promise<void>((resolve, reject) => {
    stream.on('data', (f: Frame) => f.kind?.$case === 'registerAck' && resolve());
    stream.on('error', reject);
  });
  stream.write({ kind: { $case: 'register', register: { nodeId, role: 'learner', metadata: {}, expectedTarget: '' } } });
  return { client, stream, frames, acked };
}

function request(source: string, method: string): Envelope {
  return {
    id: `req-${source}`, method, source, target: 'trainer', correlationId: '', timestampMs: Date.now(), metadata: {},
    body: new TextEncoder().encode('{}'), tensors: [], kind: EnvelopeKind.ENVELOPE_KIND_REQUEST, timeoutMs: 5000,
  };
}

describe('per-node bearer tokens (authTokens)', () => {
  it('refuses an empty token instead of turning auth off', () => {
    expect(() => new GrpcTransport({ nodeId: 't', role: 'trainer', authToken: '' })).toThrow(/authToken is empty/);
    expect(() => new GrpcTransport({ nodeId: 't', role: 'trainer', authTokens: { learner_0: '' } })).toThrow(/authTokens.learner_0 is empty/);
  });

  it("a holder of learner_1's token cannot register as learner_0, and learner_0 then gets in", async () => {
    const t = await trainer({ authTokens: TOKENS });
    const squatter = learner('learner_0', t.boundPort!, { authToken: TOKENS.learner_1 });
    const e = await startError(squatter);
    expect(e?.code).toBe('UNAUTHENTICATED');
    expect(e?.message).toMatch(/not the one issued to this node id/);
    await learner('learner_1', t.boundPort!, { authToken: TOKENS.learner_1 }).start();
    await learner('learner_0', t.boundPort!, { authToken: TOKENS.learner_0 }).start();
    expect(t.peers().map((p) => p.nodeId).sort()).toEqual(['learner_0', 'learner_1']);
    expect((await startError(learner('learner_9', t.boundPort!, { authToken: 'guess' })))?.code).toBe('UNAUTHENTICATED');
  });

  it("a learner_1 token cannot send unary calls as learner_0, nor can learner_1's stream", async () => {
    const t = await trainer({ authTokens: TOKENS });
    const sources: string[] = [];
    t.handle('report', (_p, ctx) => (sources.push(ctx.source), { body: 'ok' }));
    const l1 = learner('learner_1', t.boundPort!, { authToken: TOKENS.learner_1 });
    await l1.start();
    expect((await l1.call('trainer', 'report', {})).body).toBe('ok');
    // A raw unary Call that claims learner_0 with learner_1's token.
    const raw = new grpc.Client(`127.0.0.1:${t.boundPort}`, grpc.credentials.createInsecure());
    const unary = await new Promise<grpc.ServiceError | null>((resolve) =>
      raw.makeUnaryRequest(PATHS.call, (e: Envelope) => Buffer.from(Envelope.encode(e).finish()), (b: Buffer) => Envelope.decode(b), request('learner_0', 'report'), authMetadata(TOKENS.learner_1), (err) => resolve(err)),
    );
    expect(unary?.code).toBe(grpc.status.UNAUTHENTICATED);
    raw.close();
    expect(sources).toEqual(['learner_1']);
  });
});

describe('client certificates bound to node ids (mTLS)', () => {
  let dir: string;
  const f = (name: string) => join(dir, name);
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'oiafed-mtls-'));
    const pki = createTestPki(dir);
    const sign = (name: string, cn: string, san: string) => pki.issue(name, { cn, san });
    sign('server', 'trainer', 'IP:127.0.0.1,DNS:localhost');
    sign('learner_0', 'learner_0', 'DNS:learner-0.example');
    sign('learner_1', 'learner_1', 'DNS:learner-1.example');
    sign('by-san', 'some-host', 'DNS:learner_2');
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const serverTls = (bindNodeId?: boolean) => ({ ca: f('ca.pem'), cert: f('server.pem'), key: f('server.key'), requireClientCert: true, bindNodeId });
  const clientTls = (name: string) => ({ ca: f('ca.pem'), cert: f(`${name}.pem`), key: f(`${name}.key`) });

  it('a client certificate with CN=learner_1 cannot register as learner_0; CN or SAN equal to the id gets in', async () => {
    const t = await trainer({ tls: serverTls() });
    const e = await startError(learner('learner_0', t.boundPort!, { tls: clientTls('learner_1') }));
    expect(e?.code).toBe('UNAUTHENTICATED');
    expect(e?.message).toMatch(/client certificate names neither this node id/);
    await learner('learner_0', t.boundPort!, { tls: clientTls('learner_0') }).start();
    await learner('learner_2', t.boundPort!, { tls: clientTls('by-san') }).start();
    expect(t.peers().map((p) => p.nodeId).sort()).toEqual(['learner_0', 'learner_2']);
  });

  it('bindNodeId: false lets any trusted certificate claim any id (a shared learner certificate)', async () => {
    const t = await trainer({ tls: serverTls(false) });
    await learner('learner_0', t.boundPort!, { tls: clientTls('learner_1') }).start();
    expect(t.peers().map((p) => p.nodeId)).toEqual(['learner_0']);
  });
});

describe('a learner whose id is held by a stale connection', () => {
  it('retries with backoff and gets in once the trainer declares the stale one gone', async () => {
    const t = await trainer({ heartbeat: { intervalMs: 50, timeoutMs: 400 } });
    // Our own previous life: registered, then frozen (never answers a ping).
    const stale = rawRegister(t.boundPort!, 'learner_0');
    await stale.acked;
    const { logger, lines } = recorder();
    const fresh = learner('learner_0', t.boundPort!, { retry: { maxAttempts: 40, strategy: 'constant', initialDelayMs: 100, maxDelayMs: 100 }, logger });
    await fresh.start();
    expect(lines.some((l) => l.includes('id taken, perhaps by a stale connection'))).toBe(true);
    t.handle('who', (_p, ctx) => ({ body: ctx.source }));
    expect((await fresh.call('trainer', 'who', {})).body).toBe('learner_0');
    stale.client.close();
  });
});

describe('start-up warnings about exposure', () => {
  it('warns when gRPC listens beyond loopback without auth or TLS, and says nothing on loopback', async () => {
    const { logger, lines } = recorder();
    await trainer({ listen: { host: '0.0.0.0', port: 0 }, logger });
    expect(lines.filter((l) => l.startsWith('warn')).join('\n')).toMatch(/listens on 0\.0\.0\.0, reachable from other machines, without authentication[\s\S]*without TLS/);
    const quiet = recorder();
    await trainer({ logger: quiet.logger });
    expect(quiet.lines.filter((l) => l.startsWith('warn'))).toEqual([]);
    const tokenOnly = recorder();
    await trainer({ listen: { host: '0.0.0.0', port: 0 }, authToken: 'x', logger: tokenOnly.logger });
    const warned = tokenOnly.lines.filter((l) => l.startsWith('warn'));
    expect(warned).toHaveLength(1);
    expect(warned[0]).toMatch(/without TLS: models, updates and the bearer token cross the network in plaintext/);
  });

  it('warns when a token is sent to a non-loopback host without TLS', () => {
    expect(dialWarning('10.0.0.5', { token: true, tls: false })).toMatch(/bearer token is sent to 10\.0\.0\.5 without TLS/);
    expect(dialWarning('10.0.0.5', { token: true, tls: true })).toBeUndefined();
    expect(dialWarning('127.0.0.1', { token: true, tls: false })).toBeUndefined();
    expect(['127.0.0.1', '127.8.9.10', 'localhost', '::1', '[::1]'].every(isLoopbackHost)).toBe(true);
    expect(['0.0.0.0', '::', '192.168.1.1', '128.0.0.1'].some(isLoopbackHost)).toBe(false);
    expect(listenWarnings('::', { auth: true, tls: true })).toEqual([]);
  });
});
