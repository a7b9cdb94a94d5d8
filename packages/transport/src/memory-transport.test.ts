import { describe, expect, it } from 'vitest';
import { describeTransportContract } from './testing/index.js';
import { MemoryHub, MemoryTransport } from './memory-transport.js';
import type { TransportError } from './errors.js';

describeTransportContract('MemoryTransport', async () => {
  const hub = new MemoryHub();
  const server = new MemoryTransport({ hub, nodeId: 'trainer', role: 'trainer' });
  const client = new MemoryTransport({ hub, nodeId: 'learner_0', role: 'learner', connectTo: ['trainer'], metadata: { gpu: '0' } });
  await server.start();
  await client.start();
  return {
    server,
    client,
    cleanup: async () => {
      await client.stop();
      await server.stop();
    },
  };
});

describe('MemoryTransport specifics', () => {
  it('rejects a duplicate node id on the same hub and a missing connectTo peer', async () => {
    const hub = new MemoryHub();
    const a = new MemoryTransport({ hub, nodeId: 'n', role: 'trainer' });
    await a.start();
    const b = new MemoryTransport({ hub, nodeId: 'n', role: 'learner' });
    await expect(b.start()).rejects.toMatchObject({ code: 'ALREADY_EXISTS' });
    const c = new MemoryTransport({ hub, nodeId: 'c', role: 'learner', connectTo: ['nobody'] });
    const err = (await c.start().catch((e: unknown) => e)) as TransportError;
    expect(err.code).toBe('UNAVAILABLE');
    expect(err.message).toContain('nobody');
    await a.stop();
  });

  it('passes the registration metadata to the server and emits disconnected when the server stops', async () => {
    const hub = new MemoryHub();
    const server = new MemoryTransport({ hub, nodeId: 't', role: 'trainer' });
    await server.start();
    const client = new MemoryTransport({ hub, nodeId: 'l', role: 'learner', connectTo: ['t'], metadata: { gpu: 'none' } });
    const lost: string[] = [];
    client.on('disconnected', (p) => lost.push(p.nodeId));
    await client.start();
    expect(server.peers()).toMatchObject([{ nodeId: 'l', role: 'learner', metadata: { gpu: 'none' } }]);
    await server.stop();
    expect(lost).toEqual(['t']);
    expect(client.peers()).toEqual([]);
    await client.stop();
  });
});
