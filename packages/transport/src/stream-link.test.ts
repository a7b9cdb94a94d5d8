import { describe, expect, it } from 'vitest';
import { EnvelopeKind, type Envelope, type Frame } from './generated/oiafed/v1/node.js';
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
