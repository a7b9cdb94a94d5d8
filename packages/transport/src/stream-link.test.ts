import { describe, expect, it } from 'vitest';
import { EnvelopeKind, type Envelope, type Frame } from './generated/oiafed/v1/node.js';
import { encodeEnvelope } from './serde.js';
import { StreamLink } from './stream-link.js';

function harness() {
  const errors: string[] = [];
  const received: Envelope[] = [];
  const link = new StreamLink(
    { write: () => true, once: () => undefined, removeListener: () => undefined },
    'peer',
    {
      onEnvelope: async (env) => {
        received.push(env);
        return undefined;
      },
      onDead: () => undefined,
      countBytes: () => undefined,
    },
    {
      chunkBytes: 16,
      logger: { debug() {}, info() {}, warn() {}, error: (msg: string) => errors.push(msg) },
      selfId: 'self',
    },
  );
  return { link, errors, received };
}

const chunk = (envelopeId: string, seq: number, last: boolean, data: Uint8Array, totalBytes: number): Frame => ({
  kind: { $case: 'chunk', chunk: { envelopeId, seq, last, data, totalBytes } },
});

describe('StreamLink chunk reassembly under hostile input', () => {
  it('drops an envelope whose total_bytes lies (too large or smaller than its data) without throwing', () => {
    const { link, errors, received } = harness();
    expect(() => link.receive(chunk('a', 0, false, new Uint8Array(8), 2 ** 40))).not.toThrow();
    expect(() => link.receive(chunk('b', 0, true, new Uint8Array(8), 3))).not.toThrow();
    expect(() => link.receive(chunk('c', 0, false, new Uint8Array(8), 2 ** 53))).not.toThrow();
    expect(errors.filter((e) => /announces total_bytes/.test(e))).toHaveLength(3);
    expect(received).toHaveLength(0);
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
