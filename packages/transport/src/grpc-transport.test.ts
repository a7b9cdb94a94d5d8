import * as grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { describeTransportContract, expectTensorsBitExact } from './testing/index.js';
import { GrpcTransport, type GrpcTransportOptions } from './grpc-transport.js';
import { authMetadata, nodeServiceDefinition, PATHS } from './grpc-wire.js';
import type { Frame } from './generated/oiafed/v1/node.js';
import type { TransportError } from './errors.js';
import type { PeerInfo, Tensor, Transport } from './types.js';

const FAST_RETRY = { maxAttempts: 3, strategy: 'constant', initialDelayMs: 50, maxDelayMs: 200 } as const;

async function startPair(server: Partial<GrpcTransportOptions> = {}, client: Partial<GrpcTransportOptions> = {}) {
  const s = new GrpcTransport({ nodeId: 'trainer', role: 'trainer', listen: { host: '127.0.0.1', port: 0 }, retry: FAST_RETRY, ...server });
  await s.start();
  const c = new GrpcTransport({
    nodeId: 'learner_0',
    role: 'learner',
    connectTo: [{ nodeId: 'trainer', host: '127.0.0.1', port: s.boundPort! }],
    metadata: { device: 'cpu' },
    retry: FAST_RETRY,
    ...client,
  });
  await c.start();
  return { server: s, client: c };
}

/** Registers over a raw stream and resolves with the status the server ends it with. */
function rawRegisterStatus(port: number, nodeId: string): Promise<Partial<grpc.ServiceError>> {
  const raw = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  const stream = raw.makeBidiStreamRequest(PATHS.connect, nodeServiceDefinition.connect.requestSerialize, nodeServiceDefinition.connect.responseDeserialize, authMetadata(undefined)) as grpc.ClientDuplexStream<Frame, Frame>;
  return new Promise((resolve) => {
    stream.on('data', () => {});
    stream.on('error', (e: grpc.ServiceError) => {
      raw.close();
      resolve(e);
    });
    stream.write({ kind: { $case: 'register', register: { nodeId, role: 'learner', metadata: {}, expectedTarget: '' } } });
  });
}

const open: Transport[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((t) => t.stop()));
});
function track<T extends Transport>(...ts: T[]): void {
  open.push(...ts);
}

function waitEvent(t: Transport, event: 'peer-joined' | 'peer-left' | 'reconnected' | 'disconnected', ms = 10_000): Promise<PeerInfo> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no '${event}' within ${ms} ms`)), ms);
    const off = t.on(event, (p) => {
      clearTimeout(timer);
      off();
      resolve(p);
    });
  });
}

describeTransportContract('GrpcTransport', async () => {
  const { server, client } = await startPair();
  return {
    server,
    client,
    cleanup: async () => {
      await client.stop();
      await server.stop();
    },
  };
});

describe('GrpcTransport specifics', () => {
  it('moves a 50 MB float32 tensor bit-exactly in both directions', async () => {
    const { server, client } = await startPair();
    track(client, server);
    const n = (50 * 1024 * 1024) / 4;
    const data = new Float32Array(n);
    for (let i = 0; i < n; i++) data[i] = i * 1.0001 - 7;
    const big: Tensor[] = [{ name: 'weights', shape: [n], dtype: 'float32', data }];
    server.handle('upload', (p) => ({ body: { n: p.tensors![0].data.length }, tensors: p.tensors }));
    client.handle('download', (p) => ({ tensors: p.tensors }));
    const t0 = performance.now();
    const up = await client.call('trainer', 'upload', { tensors: big });
    const t1 = performance.now();
    const down = await server.call('learner_0', 'download', { tensors: big });
    const t2 = performance.now();
    expect(up.body).toEqual({ n });
    expectTensorsBitExact(up.tensors, big);
    expectTensorsBitExact(down.tensors, big);
    // Not asserted (no timing assertions); printed for the record.
    process.stdout.write(`50 MB round trip: learner->trainer (unary) ${(t1 - t0).toFixed(0)} ms, trainer->learner (stream) ${(t2 - t1).toFixed(0)} ms\n`);
  });

  it('chunks stream envelopes larger than chunkBytes, interleaved', async () => {
    const { server, client } = await startPair({ chunkBytes: 1000 }, { chunkBytes: 1000 });
    track(client, server);
    client.handle('echo', (p) => p);
    const mk = (k: number): Tensor => {
      const d = new Int32Array(3333 + k);
      for (let i = 0; i < d.length; i++) d[i] = i * 7919 + k;
      return { name: `t${k}`, shape: [d.length], dtype: 'int32', data: d };
    };
    const results = await Promise.all([0, 1, 2].map((k) => server.call('learner_0', 'echo', { tensors: [mk(k)], body: { k } })));
    results.forEach((r, k) => {
      expect(r.body).toEqual({ k });
      expectTensorsBitExact(r.tensors, [mk(k)]);
    });
  });

  it('rejects a unary message over maxMessageBytes with PAYLOAD_TOO_LARGE (sender and receiver side)', async () => {
    const { server, client } = await startPair({ maxMessageBytes: 256 * 1024 }, { maxMessageBytes: 64 * 1024 });
    track(client, server);
    server.handle('up', () => ({ body: 'ok' }));
    const payload = { tensors: [{ name: 'w', shape: [100_000], dtype: 'uint8' as const, data: new Uint8Array(100_000) }] };
    const e1 = (await client.call('trainer', 'up', payload).catch((e: unknown) => e)) as TransportError;
    expect(e1.code).toBe('PAYLOAD_TOO_LARGE');
    expect(e1.message).toContain('maxMessageBytes');
    const big = new GrpcTransport({
      nodeId: 'learner_big',
      role: 'learner',
      connectTo: [{ nodeId: 'trainer', host: '127.0.0.1', port: server.boundPort! }],
      maxMessageBytes: 4 * 1024 * 1024,
      retry: FAST_RETRY,
    });
    track(big);
    await big.start();
    const bigPayload = { tensors: [{ name: 'w', shape: [1_000_000], dtype: 'uint8' as const, data: new Uint8Array(1_000_000) }] };
    const e2 = (await big.call('trainer', 'up', bigPayload).catch((e: unknown) => e)) as TransportError;
    expect(e2.code).toBe('PAYLOAD_TOO_LARGE');
    expect((await client.call('trainer', 'up', {})).body).toBe('ok');
  });

  it('rejects a duplicate node id while the first is alive, and a peer claiming the server id', async () => {
    const { server, client } = await startPair();
    track(client, server);
    const port = server.boundPort!;
    const dup = new GrpcTransport({ nodeId: 'learner_0', role: 'learner', connectTo: [{ nodeId: 'trainer', host: '127.0.0.1', port }], retry: FAST_RETRY });
    const e1 = (await dup.start().catch((e: unknown) => e)) as TransportError;
    expect(e1.code).toBe('ALREADY_EXISTS');
    expect(e1.message).toContain('learner_0');
    expect(await rawRegisterStatus(port, 'trainer')).toMatchObject({ code: grpc.status.ALREADY_EXISTS });
    expect(((await rawRegisterStatus(port, 'trainer')) as grpc.ServiceError).details).toContain("server's own id");
    const wrongTarget = new GrpcTransport({ nodeId: 'l9', role: 'learner', connectTo: [{ nodeId: 'other', host: '127.0.0.1', port }], retry: FAST_RETRY });
    const e3 = (await wrongTarget.start().catch((e: unknown) => e)) as TransportError;
    expect(e3.code).toBe('UNKNOWN_PEER');
    server.handle('ping', () => ({ body: 'pong' }));
    expect((await client.call('trainer', 'ping', {})).body).toBe('pong');
    expect(server.peers().map((p) => p.nodeId)).toEqual(['learner_0']);
  });

  it('learner reconnects and re-registers after the trainer restarts on the same port', async () => {
    const { server, client } = await startPair();
    track(client);
    const port = server.boundPort!;
    const disconnected = waitEvent(client, 'disconnected');
    await server.stop();
    expect((await disconnected).nodeId).toBe('trainer');
    const server2 = new GrpcTransport({ nodeId: 'trainer', role: 'trainer', listen: { host: '127.0.0.1', port } });
    track(server2);
    const joined = waitEvent(server2, 'peer-joined');
    const reconnected = waitEvent(client, 'reconnected');
    await server2.start();
    expect((await joined).nodeId).toBe('learner_0');
    expect((await reconnected).nodeId).toBe('trainer');
    client.handle('hello', () => ({ body: 'again' }));
    expect((await server2.call('learner_0', 'hello', {})).body).toBe('again');
  });

  it('heartbeat declares a silent peer gone on the server', async () => {
    const server = new GrpcTransport({ nodeId: 'trainer', role: 'trainer', listen: { host: '127.0.0.1', port: 0 }, heartbeat: { intervalMs: 50, timeoutMs: 300 } });
    track(server);
    await server.start();
    // A raw client that registers and then never answers a ping.
    const raw = new grpc.Client(`127.0.0.1:${server.boundPort}`, grpc.credentials.createInsecure());
    const joined = waitEvent(server, 'peer-joined');
    const left = waitEvent(server, 'peer-left');
    const stream = raw.makeBidiStreamRequest(PATHS.connect, nodeServiceDefinition.connect.requestSerialize, nodeServiceDefinition.connect.responseDeserialize, authMetadata(undefined)) as grpc.ClientDuplexStream<Frame, Frame>;
    stream.on('error', () => {});
    stream.write({ kind: { $case: 'register', register: { nodeId: 'zombie', role: 'learner', metadata: {}, expectedTarget: '' } } });
    expect((await joined).nodeId).toBe('zombie');
    expect((await left).nodeId).toBe('zombie');
    expect(server.peers()).toEqual([]);
    raw.close();
  });

  it('heartbeat on the learner detects a silent trainer and reconnects', async () => {
    // A fake trainer that acks registration and then stays silent.
    const fake = new grpc.Server();
    let registrations = 0;
    fake.addService(nodeServiceDefinition, {
      call: () => {},
      notify: () => {},
      connect: (s: grpc.ServerDuplexStream<Frame, Frame>) => {
        s.once('data', () => {
          registrations++;
          s.write({ kind: { $case: 'registerAck', registerAck: { nodeId: 'trainer', role: 'trainer', metadata: {} } } });
        });
        s.on('error', () => {});
      },
    });
    const port = await new Promise<number>((res, rej) => fake.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? rej(e) : res(p))));
    const client = new GrpcTransport({
      nodeId: 'learner_0',
      role: 'learner',
      connectTo: [{ nodeId: 'trainer', host: '127.0.0.1', port }],
      heartbeat: { intervalMs: 50, timeoutMs: 300 },
      retry: FAST_RETRY,
    });
    track(client);
    await client.start();
    const lost = waitEvent(client, 'disconnected');
    const back = waitEvent(client, 'reconnected');
    expect((await lost).nodeId).toBe('trainer');
    expect((await back).nodeId).toBe('trainer');
    expect(registrations).toBeGreaterThanOrEqual(2);
    await client.stop();
    fake.forceShutdown();
  });

  it('requires the bearer token when authToken is set', async () => {
    const { server, client } = await startPair({ authToken: 's3cret' }, { authToken: 's3cret' });
    track(client, server);
    server.handle('x', () => ({ body: 1 }));
    expect((await client.call('trainer', 'x', {})).body).toBe(1);
    const intruder = new GrpcTransport({ nodeId: 'evil', role: 'learner', connectTo: [{ nodeId: 'trainer', host: '127.0.0.1', port: server.boundPort! }], authToken: 'wrong', retry: FAST_RETRY });
    const e = (await intruder.start().catch((err: unknown) => err)) as TransportError;
    expect(e.code).toBe('UNAUTHENTICATED');
  });

  it('works with gzip compression and retries idempotent calls on UNAVAILABLE', async () => {
    const patient = { maxAttempts: 200, strategy: 'constant', initialDelayMs: 50, maxDelayMs: 50 } as const;
    const { server, client } = await startPair({ compression: 'gzip' }, { compression: 'gzip', retry: patient });
    track(client, server);
    server.handle('echo', (p) => p);
    const t: Tensor = { name: 'z', shape: [10_000], dtype: 'float32', data: new Float32Array(10_000) };
    expectTensorsBitExact((await client.call('trainer', 'echo', { tensors: [t] })).tensors, [t]);
    const port = server.boundPort!;
    await server.stop();
    const e = (await client.call('trainer', 'echo', {}).catch((err: unknown) => err)) as TransportError;
    expect(e.code).toBe('UNAVAILABLE');
    const server2 = new GrpcTransport({ nodeId: 'trainer', role: 'trainer', listen: { host: '127.0.0.1', port } });
    track(server2);
    server2.handle('echo', () => ({ body: 'back' }));
    const pending = client.call('trainer', 'echo', {}, { retry: true });
    await server2.start();
    expect((await pending).body).toBe('back');
  });
});
