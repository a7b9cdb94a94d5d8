import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GrpcTransport } from './grpc-transport.js';
import { createTestPki } from './testing/certificates.js';
import type { TransportError } from './errors.js';

// Fixture certificates generated at test time: a CA and a server certificate for 127.0.0.1.
let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'oiafed-tls-'));
  createTestPki(dir).issue('server', { cn: '127.0.0.1' });
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('GrpcTransport over TLS', () => {
  it('connects with the CA, and fails without it', async () => {
    const server = new GrpcTransport({
      nodeId: 'trainer',
      role: 'trainer',
      listen: { host: '127.0.0.1', port: 0 },
      tls: { cert: join(dir, 'server.pem'), key: join(dir, 'server.key') },
    });
    await server.start();
    server.handle('hi', () => ({ body: 'secure' }));
    const retry = { maxAttempts: 1, strategy: 'constant', initialDelayMs: 10, maxDelayMs: 10 } as const;
    const client = new GrpcTransport({
      nodeId: 'learner_0',
      role: 'learner',
      connectTo: [{ nodeId: 'trainer', host: '127.0.0.1', port: server.boundPort! }],
      tls: { ca: join(dir, 'ca.pem') },
      retry,
    });
    const plain = new GrpcTransport({ nodeId: 'learner_1', role: 'learner', connectTo: [{ nodeId: 'trainer', host: '127.0.0.1', port: server.boundPort! }], retry });
    try {
      await client.start();
      expect((await client.call('trainer', 'hi', {})).body).toBe('secure');
      client.handle('back', () => ({ body: 'also secure' }));
      expect((await server.call('learner_0', 'back', {})).body).toBe('also secure');
      const e = (await plain.start().catch((err: unknown) => err)) as TransportError;
      expect(e.code).toBe('UNAVAILABLE');
    } finally {
      await client.stop();
      await server.stop();
    }
  });

  it('names an unreadable PEM file', async () => {
    const t = new GrpcTransport({ nodeId: 'x', role: 'trainer', listen: { host: '127.0.0.1', port: 0 }, tls: { cert: '/nope/c.pem', key: '/nope/k.pem' } });
    const e = (await t.start().catch((err: unknown) => err)) as TransportError;
    expect(e.code).toBe('INVALID_ARGUMENT');
    expect(e.message).toContain('/nope/k.pem');
  });
});
