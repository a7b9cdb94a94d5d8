import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { GrpcTransport, type PeerInfo } from '@oiafed/transport';
import { BrowserLink, parseCsv, type WebSocketClass } from '../src/index.js';

const quiet = { debug() {}, info() {}, warn() {}, error() {} };
const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** A real listening trainer transport with transport.web on a loopback HTTP server. */
async function trainer(extra: Partial<ConstructorParameters<typeof GrpcTransport>[0]> = {}) {
  const t = new GrpcTransport({ nodeId: 'trainer', role: 'trainer', listen: { host: '127.0.0.1', port: 0 }, logger: quiet, ...extra });
  await t.start();
  const http = createServer((_req, res) => res.writeHead(404).end());
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  t.acceptWebSockets(http, '/learn');
  cleanups.push(() => new Promise<void>((resolve) => http.close(() => resolve())), () => t.stop());
  return { t, url: `ws://127.0.0.1:${(http.address() as AddressInfo).port}/learn` };
}

function joined(t: GrpcTransport): Promise<PeerInfo> {
  return new Promise((resolve) => {
    const off = t.on('peer-joined', (p) => {
      off();
      resolve(p);
    });
  });
}

// ws's WebSocket speaks the DOM API BrowserLink uses (binaryType, onmessage, bufferedAmount).
const NodeWebSocket = WebSocket as unknown as WebSocketClass;

describe('BrowserLink against a real trainer transport', () => {
  it('registers with its metadata and token, answers a chunked call both ways, and hears shutdown', async () => {
    const { t, url } = await trainer({ authToken: 'tok', chunkBytes: 128 * 1024 });
    const peer = joined(t);
    let shutdown = '';
    const link = await BrowserLink.connect(
      { url, nodeId: 'browser_1', token: 'tok', metadata: { 'oiafed.backend': 'wasm' }, chunkBytes: 64 * 1024, WebSocket: NodeWebSocket },
      {
        'oiafed.learner.train': (p) => ({ body: { got: (p.body as { round: number }).round }, tensors: p.tensors!.map((x) => ({ ...x, data: x.data.map((v) => v * 2) })) }),
        'oiafed.learner.shutdown': (p) => {
          shutdown = (p.body as { reason: string }).reason;
          return {};
        },
      },
    );
    cleanups.push(() => link.close());
    expect(link.trainerId).toBe('trainer');
    expect((await peer).metadata).toEqual({ 'oiafed.backend': 'wasm', 'oiafed.link': 'websocket' });
    const data = Float32Array.from({ length: 200_000 }, (_, i) => i);
    const reply = await t.call('browser_1', 'oiafed.learner.train', { body: { round: 3 }, tensors: [{ name: 'weights/w', shape: [200_000], dtype: 'float32', data }] });
    expect(reply.body).toEqual({ got: 3 });
    expect((reply.tensors![0]!.data as Float32Array)[199_999]).toBe(2 * 199_999);
    await expect(t.call('browser_1', 'no.such.method', {})).rejects.toThrow(/no handler/);
    await t.notify('browser_1', 'oiafed.learner.shutdown', { body: { reason: 'done here' } });
    await expect.poll(() => shutdown).toBe('done here');
  });

  it('is refused with the trainer\'s reason for a wrong token', async () => {
    const { url } = await trainer({ authToken: 'tok' });
    await expect(BrowserLink.connect({ url, nodeId: 'browser_2', token: 'nope', metadata: {}, WebSocket: NodeWebSocket }, {})).rejects.toThrow(/1008.*wrong bearer token/);
  });
});

describe('parseCsv', () => {
  it('reads the label column (named or last), numbers classes and refuses bad cells', () => {
    const named = parseCsv('a,label,b\n1,2,3\n4,0,6\n');
    expect([...named.features]).toEqual([1, 3, 4, 6]);
    expect([...named.labels]).toEqual([2, 0]);
    expect(named.numClasses).toBe(3);
    const names = parseCsv('x,y,kind\n0.5,1,cat\n2,3,dog\n1,1,cat\n');
    expect(names.classNames).toEqual(['cat', 'dog']);
    expect([...names.labels]).toEqual([0, 1, 0]);
    expect(names.sampleShape).toEqual([2]);
    expect(() => parseCsv('x,label\nfoo,1\n')).toThrow(/line 2, column 'x'/);
  });
});
