// Contract suite every Transport implementation must pass. Imported by test files only
// (it uses vitest), through `@oiafed/transport/testing`.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { RemoteError, TransportError } from '../errors.js';
import type { PeerInfo, Tensor, Transport } from '../types.js';

export interface TransportPair {
  /** Listening side (trainer); already started. */
  server: Transport;
  /** Dialing side (learner) registered with `server`; already started. */
  client: Transport;
  cleanup(): Promise<void>;
}

function waitFor<T>(fn: () => T | undefined, what: string, ms = 5_000): Promise<T> {
  return new Promise((resolve, reject) => {
    const t0 = Date.now();
    const tick = () => {
      const v = fn();
      if (v !== undefined && v !== false) return resolve(v);
      if (Date.now() - t0 > ms) return reject(new Error(`timed out waiting for ${what}`));
      setTimeout(tick, 10);
    };
    tick();
  });
}

/** One tensor of every dtype, with odd and zero lengths; values chosen to exercise every bit. */
export function sampleTensors(): Tensor[] {
  const f32 = new Float32Array([0, -0, 1.5, -3.25, Number.NaN, Infinity, -Infinity, 1e-45, 3.4028234663852886e38]);
  const f16 = new Uint16Array([0x0000, 0x3c00, 0xfbff, 0x7e00, 0x8001]);
  const i8 = new Int8Array([-128, -1, 0, 1, 127]);
  const i32 = new Int32Array([-2147483648, -1, 0, 7, 2147483647]);
  const u8 = new Uint8Array([0, 1, 254, 255, 128, 7, 9]);
  return [
    { name: 'f32', shape: [3, 3], dtype: 'float32', data: f32 },
    { name: 'f16', shape: [5], dtype: 'float16', data: f16 },
    { name: 'i8', shape: [5, 1], dtype: 'int8', data: i8 },
    { name: 'i32', shape: [5], dtype: 'int32', data: i32 },
    { name: 'u8', shape: [7], dtype: 'uint8', data: u8 },
    { name: 'empty', shape: [0, 4], dtype: 'float32', data: new Float32Array(0) },
    { name: 'scalar', shape: [], dtype: 'int32', data: new Int32Array([42]) },
  ];
}

function bytesOf(t: Tensor): Buffer {
  return Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength);
}

/** Asserts two tensor lists are equal bit for bit (NaN payloads and -0 included). */
export function expectTensorsBitExact(actual: Tensor[] | undefined, expected: Tensor[]): void {
  expect(actual?.length).toBe(expected.length);
  for (const [i, e] of expected.entries()) {
    const a = actual![i];
    expect(a.name).toBe(e.name);
    expect(a.shape).toEqual(e.shape);
    expect(a.dtype).toBe(e.dtype);
    expect(a.data.constructor).toBe(e.data.constructor);
    expect(bytesOf(a).equals(bytesOf(e))).toBe(true);
  }
}

/**
 * Registers the transport contract tests under `describe(name)`. `makePair` builds a fresh,
 * started server/client pair for each test.
 */
export function describeTransportContract(name: string, makePair: () => Promise<TransportPair>): void {
  describe(`Transport contract: ${name}`, () => {
    let pair: TransportPair;
    beforeEach(async () => {
      pair = await makePair();
    });
    afterEach(async () => {
      await pair.cleanup();
    });

    it('client -> server call carries body and tensors both ways', async () => {
      const { server, client } = pair;
      server.handle('echo', (p, ctx) => ({ body: { got: p.body, from: ctx.source, method: ctx.method }, tensors: p.tensors }));
      const tensors = sampleTensors();
      const res = await client.call(server.nodeId, 'echo', { body: { a: 1, s: 'x', nested: [true, null] }, tensors });
      expect(res.body).toEqual({ got: { a: 1, s: 'x', nested: [true, null] }, from: client.nodeId, method: 'echo' });
      expectTensorsBitExact(res.tensors, tensors);
    });

    it('server -> client call reaches the dialing node', async () => {
      const { server, client } = pair;
      client.handle('train', (p, ctx) => ({ body: { round: (p.body as { round: number }).round + 1, from: ctx.source } }));
      const res = await server.call(client.nodeId, 'train', { body: { round: 4 } });
      expect(res.body).toEqual({ round: 5, from: server.nodeId });
    });

    it('server -> client tensors are bit-exact for every dtype', async () => {
      const { server, client } = pair;
      client.handle('echo', (p) => p);
      const tensors = sampleTensors();
      const res = await server.call(client.nodeId, 'echo', { tensors });
      expectTensorsBitExact(res.tensors, tensors);
      expect(res.body).toBeUndefined();
    });

    it('received payloads do not alias the sender memory', async () => {
      const { server, client } = pair;
      let received: Float32Array | undefined;
      server.handle('keep', (p) => {
        received = p.tensors![0].data as Float32Array;
        return {};
      });
      const data = new Float32Array([1, 2, 3]);
      await client.call(server.nodeId, 'keep', { tensors: [{ name: 'w', shape: [3], dtype: 'float32', data }] });
      data[0] = 99;
      expect(Array.from(received!)).toEqual([1, 2, 3]);
    });

    it('notify delivers in both directions', async () => {
      const { server, client } = pair;
      const got: string[] = [];
      server.handle('log', (p, ctx) => {
        got.push(`server<-${ctx.source}:${String(p.body)}`);
        return {};
      });
      client.handle('log', (p, ctx) => {
        got.push(`client<-${ctx.source}:${String(p.body)}`);
        return {};
      });
      await client.notify(server.nodeId, 'log', { body: 'up' });
      await server.notify(client.nodeId, 'log', { body: 'down' });
      await waitFor(() => got.length === 2 || undefined, 'two notifications');
      expect(got.sort()).toEqual([`client<-${server.nodeId}:down`, `server<-${client.nodeId}:up`]);
    });

    it('a handler error arrives as RemoteError with its code and message', async () => {
      const { server, client } = pair;
      server.handle('boom', () => {
        throw Object.assign(new Error('model not ready'), { code: 'NOT_READY' });
      });
      client.handle('bad', () => {
        throw Object.assign(new Error('bad shape'), { code: 'INVALID_ARGUMENT' });
      });
      server.handle('plain', async () => {
        throw new Error('plain failure');
      });
      const e1 = await client.call(server.nodeId, 'boom', {}).catch((e: unknown) => e);
      expect(e1).toBeInstanceOf(RemoteError);
      expect((e1 as RemoteError).code).toBe('REMOTE');
      expect((e1 as RemoteError).remoteCode).toBe('NOT_READY');
      expect((e1 as RemoteError).remoteMessage).toBe('model not ready');
      expect((e1 as RemoteError).remote).toBe(server.nodeId);
      const e2 = await server.call(client.nodeId, 'bad', {}).catch((e: unknown) => e);
      expect(e2).toBeInstanceOf(RemoteError);
      expect((e2 as RemoteError).code).toBe('INVALID_ARGUMENT');
      expect((e2 as RemoteError).remoteMessage).toBe('bad shape');
      const e3 = await client.call(server.nodeId, 'plain', {}).catch((e: unknown) => e);
      expect((e3 as RemoteError).remoteCode).toBe('REMOTE');
      expect((e3 as RemoteError).remoteMessage).toBe('plain failure');
    });

    it('an unknown method is UNKNOWN_METHOD in both directions', async () => {
      const { server, client } = pair;
      const e1 = await client.call(server.nodeId, 'nope', {}).catch((e: unknown) => e);
      expect(e1).toBeInstanceOf(TransportError);
      expect(e1).not.toBeInstanceOf(RemoteError);
      expect((e1 as TransportError).code).toBe('UNKNOWN_METHOD');
      expect((e1 as TransportError).message).toContain('nope');
      const e2 = await server.call(client.nodeId, 'nope', {}).catch((e: unknown) => e);
      expect((e2 as TransportError).code).toBe('UNKNOWN_METHOD');
    });

    it('an unknown target is UNKNOWN_PEER', async () => {
      const { server, client } = pair;
      server.handle('x', () => ({}));
      for (const t of [client, server]) {
        const e = await t.call('ghost', 'x', {}).catch((err: unknown) => err);
        expect((e as TransportError).code).toBe('UNKNOWN_PEER');
        expect((e as TransportError).message).toContain('ghost');
        const n = await t.notify('ghost', 'x', {}).catch((err: unknown) => err);
        expect((n as TransportError).code).toBe('UNKNOWN_PEER');
      }
    });

    it('a slow handler hits the deadline and sees its signal abort', async () => {
      const { server, client } = pair;
      let aborted: Promise<void> | undefined;
      const hang = (_: unknown, ctx: { signal: AbortSignal }) => {
        aborted = new Promise<void>((resolve) => ctx.signal.addEventListener('abort', () => resolve(), { once: true }));
        return new Promise<never>(() => {});
      };
      server.handle('slow', hang);
      client.handle('slow', hang);
      const e1 = await client.call(server.nodeId, 'slow', {}, { timeoutMs: 150 }).catch((e: unknown) => e);
      expect((e1 as TransportError).code).toBe('DEADLINE_EXCEEDED');
      await aborted;
      aborted = undefined;
      const e2 = await server.call(client.nodeId, 'slow', {}, { timeoutMs: 150 }).catch((e: unknown) => e);
      expect((e2 as TransportError).code).toBe('DEADLINE_EXCEEDED');
      await waitFor(() => aborted, 'handler start');
      await aborted;
    });

    it('peers() lists both ends; peer-left on stop, peer-joined on start', async () => {
      const { server, client } = pair;
      expect(server.peers().map((p) => p.nodeId)).toContain(client.nodeId);
      expect(client.peers().map((p) => p.nodeId)).toContain(server.nodeId);
      const mine = server.peers().find((p) => p.nodeId === client.nodeId)!;
      expect(typeof mine.role).toBe('string');
      expect(mine.connectedAt).toBeGreaterThan(0);
      const left: PeerInfo[] = [];
      const off = server.on('peer-left', (p) => left.push(p));
      await client.stop();
      await waitFor(() => left.length > 0 || undefined, 'peer-left');
      off();
      expect(left[0].nodeId).toBe(client.nodeId);
      expect(server.peers().map((p) => p.nodeId)).not.toContain(client.nodeId);
      const joined: PeerInfo[] = [];
      server.on('peer-joined', (p) => joined.push(p));
      await client.start();
      await waitFor(() => joined.length > 0 || undefined, 'peer-joined');
      expect(joined[0].nodeId).toBe(client.nodeId);
      expect(server.peers().map((p) => p.nodeId)).toContain(client.nodeId);
    });

    it('stats count calls and bytes', async () => {
      const { server, client } = pair;
      server.handle('echo', (p) => p);
      const before = client.stats();
      await client.call(server.nodeId, 'echo', { tensors: [{ name: 'w', shape: [256], dtype: 'float32', data: new Float32Array(256) }] });
      const after = client.stats();
      expect(after.callsSent).toBe(before.callsSent + 1);
      expect(after.bytesSent - before.bytesSent).toBeGreaterThanOrEqual(1024);
      expect(after.bytesReceived - before.bytesReceived).toBeGreaterThanOrEqual(1024);
      expect(server.stats().callsReceived).toBeGreaterThanOrEqual(1);
    });
  });
}
export type { TestCertificate, TestPki } from './certificates.js';
export { createTestPki } from './certificates.js';
