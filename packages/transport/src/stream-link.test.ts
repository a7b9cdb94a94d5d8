import { describe, expect, it } from 'vitest';
import { Envelope, EnvelopeKind, Frame } from './generated/oiafed/v1/node.js';
import { encodeEnvelope } from './serde.js';
import { StreamLink, type StreamLimits } from './stream-link.js';

function harness(limits: Partial<StreamLimits> = {}) {
  const errors: string[] = [];
  const received: Envelope[] = [];
  const violations: string[] = [];
  const link = new StreamLink(
    { write: (_f, done) => (done?.(), true) },
    'peer',
    {
      onEnvelope: async (env) => {
        received.push(env);
        return undefined;
      },
      onDead: () => undefined,
      onViolation: (reason) => violations.push(reason),
      countBytes: () => undefined,
    },
    {
      chunkBytes: 16,
      limits,
      logger: { debug() {}, info() {}, warn() {}, error: (msg: string) => errors.push(msg) },
      selfId: 'self',
    },
  );
  return { link, errors, received, violations };
}

const chunk = (envelopeId: string, seq: number, last: boolean, data: Uint8Array, totalBytes: number): Frame => ({
  kind: { $case: 'chunk', chunk: { envelopeId, seq, last, data, totalBytes } },
});

describe('StreamLink chunk reassembly under hostile input', () => {
  it('drops an envelope whose total_bytes lies (smaller than its data, not an integer) without throwing', () => {
    const { link, errors, received, violations } = harness();
    expect(() => link.receive(chunk('b', 0, true, new Uint8Array(8), 3))).not.toThrow();
    expect(() => link.receive(chunk('c', 0, false, new Uint8Array(8), 2 ** 60))).not.toThrow();
    expect(errors.filter((e) => /announces total_bytes/.test(e))).toHaveLength(2);
    expect(received).toHaveLength(0);
    expect(violations).toEqual([]);
  });

  it('closes the link at the first chunk of an envelope announcing more than maxEnvelopeBytes, before keeping anything', () => {
    const { link, violations } = harness({ maxEnvelopeBytes: 1024 });
    link.receive(chunk('a', 0, false, new Uint8Array(8), 2 ** 31 - 1));
    expect(violations).toEqual(['envelope over the size limit']);
    expect(link.isClosed).toBe(true);
    expect(link.heldBytes).toBe(0);
    // Frames after the close are ignored, not reassembled.
    link.receive(chunk('b', 0, false, new Uint8Array(8), 16));
    expect(link.heldBytes).toBe(0);
  });

  it('closes the link when a peer opens more partial envelopes than maxPartials', () => {
    const { link, violations } = harness({ maxPartials: 4 });
    for (let i = 0; i < 4; i++) link.receive(chunk(`p${i}`, 0, false, new Uint8Array(8), 100));
    expect(link.isClosed).toBe(false);
    expect(link.heldBytes).toBeGreaterThan(0);
    link.receive(chunk('p4', 0, false, new Uint8Array(8), 100));
    expect(violations).toEqual(['too many partial envelopes']);
    expect(link.heldBytes).toBe(0);
  });

  it('closes the link when partial envelopes would hold more than maxInFlightBytes', () => {
    const { link, violations } = harness({ maxEnvelopeBytes: 100_000, maxInFlightBytes: 150_000 });
    const part = new Uint8Array(70_000);
    link.receive(chunk('a', 0, false, part, 100_000));
    link.receive(chunk('b', 0, false, part, 100_000));
    expect(link.isClosed).toBe(false);
    link.receive(chunk('c', 0, false, part, 100_000));
    expect(violations).toEqual(['in-flight budget exceeded']);
    expect(link.heldBytes).toBe(0);
  });

  it('counts tiny chunks at their overhead, so 1-byte chunks cannot pin memory outside the budget', () => {
    const { link, violations } = harness({ maxInFlightBytes: 10_000 });
    for (let seq = 0; seq < 200 && !link.isClosed; seq++) link.receive(chunk('a', seq, false, new Uint8Array(1), 1_000_000));
    expect(violations).toEqual(['in-flight budget exceeded']);
  });

  it('closes the link when a partial envelope gets no chunk within reassemblyTimeoutMs', async () => {
    const { link, violations } = harness({ reassemblyTimeoutMs: 40 });
    link.receive(chunk('slow', 0, false, new Uint8Array(8), 100));
    const deadline = Date.now() + 5_000;
    while (!link.isClosed && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    expect(violations).toEqual(['reassembly timeout']);
    expect(link.heldBytes).toBe(0);
  });

  it('frees partial envelopes when the stream closes', () => {
    const { link } = harness();
    link.receive(chunk('a', 0, false, new Uint8Array(8), 100));
    expect(link.heldBytes).toBeGreaterThan(0);
    link.close('stream closed');
    expect(link.heldBytes).toBe(0);
  });

  it('reassembles a multi-chunk envelope and rejects one that overruns its announced size', async () => {
    const { link, errors, received } = harness();
    const env: Envelope = {
      id: 'e1', method: 'm', source: 'peer', target: 'self', correlationId: '', timestampMs: 1, metadata: {},
      body: new TextEncoder().encode('{"hello":"world, long enough to need several chunks"}'), tensors: [],
      kind: EnvelopeKind.ENVELOPE_KIND_NOTIFY, timeoutMs: 0,
    };
    const bytes = new Uint8Array(encodeEnvelope(env));
    for (let off = 0, seq = 0; off < bytes.length; off += 16, seq++) {
      link.receive(chunk('e1', seq, off + 16 >= bytes.length, bytes.subarray(off, off + 16), seq === 0 ? bytes.length : 0));
    }
    await new Promise((r) => setTimeout(r, 10));
    expect(received.map((e) => new TextDecoder().decode(e.body))).toEqual([new TextDecoder().decode(env.body)]);
    link.receive(chunk('e2', 0, false, new Uint8Array(8), 10));
    link.receive(chunk('e2', 1, true, new Uint8Array(8), 0));
    expect(errors.some((e) => /bad chunk 1 of envelope e2/.test(e))).toBe(true);
    link.close('test over');
  });
});

describe('StreamLink sending to slow and silent readers', () => {
  const envelope = (id: string, bytes: number): Envelope => ({
    id, method: 'train', source: 'self', target: 'peer', correlationId: '', timestampMs: 1, metadata: {},
    body: new Uint8Array(0), tensors: [{ name: 'w', shape: [bytes / 4], dtype: 1, data: new Uint8Array(bytes).fill(3) }],
    kind: EnvelopeKind.ENVELOPE_KIND_REQUEST, timeoutMs: 0,
  });
  const owner = (violations: string[], received: Envelope[] = []) => ({
    onEnvelope: async (env: Envelope) => {
      received.push(env);
      return undefined;
    },
    onDead: () => undefined,
    onViolation: (reason: string) => violations.push(reason),
    countBytes: () => undefined,
  });
  const logger = { debug() {}, info() {}, warn() {}, error() {} };

  it('holds about two small frames for a peer that never reads, and drops it when the request is given up', async () => {
    const written: Buffer[] = [];
    const violations: string[] = [];
    const link = new StreamLink({ write: (f) => (written.push(f as unknown as Buffer), false) }, 'silent', owner(violations), {
      chunkBytes: 4 * 1024 * 1024,
      logger,
      selfId: 'self',
    });
    const req = link.request(envelope('r1', 8 * 1024 * 1024));
    req.response.catch(() => undefined);
    await new Promise((r) => setTimeout(r, 20));
    const held = written.reduce((a, f) => a + f.byteLength, 0);
    expect(held).toBeLessThanOrEqual(2 * 64 * 1024 + 256);
    expect(link.heldBytes).toBe(held);
    req.cancel('deadline');
    expect(violations).toEqual(['did not read a request within its deadline']);
    expect(link.isClosed).toBe(true);
  });

  it('grows frames as a reading peer flushes them, up to chunkBytes, and the peer reassembles them', async () => {
    const received: Envelope[] = [];
    const receiver = new StreamLink({ write: () => true }, 'sender', owner([], received), { chunkBytes: 1 << 20, logger, selfId: 'peer' });
    const sizes: number[] = [];
    const sender = new StreamLink(
      {
        write: (f, done) => {
          const frame = Frame.decode(f as unknown as Buffer);
          if (frame.kind?.$case === 'chunk') sizes.push(frame.kind.chunk.data.byteLength);
          receiver.receive(frame);
          setImmediate(() => done?.());
          return true;
        },
      },
      'peer',
      owner([]),
      { chunkBytes: 256 * 1024, logger, selfId: 'self' },
    );
    await sender.send(envelope('big', 1024 * 1024));
    await new Promise((r) => setTimeout(r, 10));
    // Small first, doubling as frames are flushed (the next frame is already queued meanwhile).
    expect(sizes[0]).toBe(64 * 1024);
    expect(sizes.every((n, i) => i === 0 || n >= sizes[i - 1]! || i === sizes.length - 1)).toBe(true);
    expect(Math.max(...sizes)).toBe(256 * 1024);
    expect(received).toHaveLength(1);
    expect(received[0]!.tensors[0]!.data.byteLength).toBe(1024 * 1024);
    expect(received[0]!.tensors[0]!.data.every((b) => b === 3)).toBe(true);
  });
});

describe('StreamLink and a response that does not decode', () => {
  it('fails the matching pending call at once when its correlation id can be read', async () => {
    const frames: Frame[] = [];
    const link = new StreamLink({ write: (f, done) => (frames.push(Frame.decode(f as unknown as Buffer)), done?.(), true) }, 'peer', {
      onEnvelope: async () => undefined,
      onDead: () => undefined,
      countBytes: () => undefined,
    }, { chunkBytes: 1 << 20, logger: { debug() {}, info() {}, warn() {}, error() {} }, selfId: 'self' });
    const req = link.request({
      id: 'call-1', method: 'train', source: 'self', target: 'peer', correlationId: '', timestampMs: 1, metadata: {},
      body: new Uint8Array(0), tensors: [], kind: EnvelopeKind.ENVELOPE_KIND_REQUEST, timeoutMs: 0,
    });
    await new Promise((r) => setTimeout(r, 5));
    // A tensor whose shape holds 2^62: Envelope.decode refuses it (over Number.MAX_SAFE_INTEGER).
    const bad = Envelope.encode({
      id: 'r-1', method: 'train', source: 'peer', target: 'self', correlationId: 'call-1', timestampMs: 1, metadata: {},
      body: new Uint8Array(0), kind: EnvelopeKind.ENVELOPE_KIND_RESPONSE, timeoutMs: 0,
      tensors: [{ name: 'w', shape: ['4611686018427387904' as unknown as number], dtype: 1, data: new Uint8Array(4) }],
    }).finish();
    expect(() => Envelope.decode(bad)).toThrow();
    link.receive(chunk('r-1', 0, true, bad, bad.byteLength));
    await expect(req.response).rejects.toThrow(/response of 'peer' to 'train' could not be decoded/);
    expect(frames.length).toBeGreaterThan(0);
  });
});
