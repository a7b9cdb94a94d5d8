import { describe, expect, it } from 'vitest';
import { DataType, Envelope, EnvelopeKind, Frame } from './generated/oiafed/v1/node.js';
import { tensorFromProto } from './serde.js';
import { encodeChunkFrame, encodeEnvelopeBuffer, encodeEnvelopeParts, varintSize } from './wire-codec.js';

function envelope(tensorBytes: number[]): Envelope {
  return {
    id: 'env-1',
    method: 'fit',
    source: 'trainer',
    target: 'learner_0',
    correlationId: '',
    timestampMs: 1234567,
    metadata: { round: '3' },
    body: new TextEncoder().encode('{"round":3}'),
    tensors: tensorBytes.map((n, i) => ({
      name: `layer${i}/kernel`,
      shape: [n],
      dtype: DataType.DATA_TYPE_UINT8,
      data: Uint8Array.from({ length: n }, (_, k) => (k * 7 + i) & 255),
    })),
    kind: EnvelopeKind.ENVELOPE_KIND_REQUEST,
    timeoutMs: 5000,
  };
}

describe('wire-codec', () => {
  it('varintSize matches the protobuf varint length', () => {
    expect([0, 127, 128, 16383, 16384, 2 ** 31 - 1, 2 ** 35].map(varintSize)).toEqual([1, 1, 2, 2, 3, 5, 6]);
  });

  it('encodes an envelope the generated decoder reads back field for field, tensor data aligned', () => {
    for (const base of [0, 5]) {
      for (const sizes of [[], [0], [1, 3, 8], [300, 17, 100_000]]) {
        const env = envelope(sizes);
        const bytes = encodeEnvelopeBuffer(env, base);
        expect(bytes.byteLength).toBe(encodeEnvelopeParts(env, base).byteLength);
        // Place the bytes where the receiver would hold them, then decode.
        const held = new Uint8Array(bytes.byteLength + base);
        held.set(bytes, base);
        const back = Envelope.decode(held.subarray(base));
        expect({ ...back, tensors: [] }).toEqual({ ...env, tensors: [] });
        expect(back.tensors.map((t) => t.name)).toEqual(env.tensors.map((t) => t.name));
        back.tensors.forEach((t, i) => {
          expect(Buffer.compare(Buffer.from(t.data), Buffer.from(env.tensors[i]!.data))).toBe(0);
          if (t.data.byteLength > 0) expect(t.data.byteOffset % 8).toBe(0);
        });
      }
    }
  });

  it('float32 tensors decode as views (no copy) when the receiver holds the envelope at alignBase', () => {
    const data = Float32Array.from([1.5, -2, 3.25, 1e-7, 7]);
    const env = { ...envelope([]), tensors: [{ name: 'w', shape: [5], dtype: DataType.DATA_TYPE_FLOAT32, data: new Uint8Array(data.buffer) }] };
    const bytes = encodeEnvelopeBuffer(env, 0);
    const held = new Uint8Array(bytes.byteLength);
    held.set(bytes);
    const t = tensorFromProto(Envelope.decode(held).tensors[0]!);
    expect(Array.from(t.data)).toEqual(Array.from(data));
    expect(t.data.buffer).toBe(held.buffer);
  });

  it('chunk frames decode with the generated Frame codec and concatenate to the envelope', () => {
    const env = envelope([1000, 5, 40_000]);
    const parts = encodeEnvelopeParts(env, 0);
    const whole = encodeEnvelopeBuffer(env, 0);
    const size = 777;
    const got: Uint8Array[] = [];
    for (let off = 0, seq = 0; off < parts.byteLength; off += size, seq++) {
      const end = Math.min(off + size, parts.byteLength);
      const frame = Frame.decode(encodeChunkFrame(parts, { envelopeId: env.id, seq, last: end === parts.byteLength, from: off, length: end - off }));
      if (frame.kind?.$case !== 'chunk') throw new Error('expected a chunk frame');
      const c = frame.kind.chunk;
      expect(c).toMatchObject({ envelopeId: 'env-1', seq, last: end === parts.byteLength, totalBytes: seq === 0 ? parts.byteLength : 0 });
      got.push(c.data);
    }
    expect(Buffer.compare(Buffer.concat(got), whole)).toBe(0);
    const empty = Frame.decode(encodeChunkFrame({ parts: [], byteLength: 0 }, { envelopeId: 'e', seq: 0, last: true, from: 0, length: 0 }));
    expect(empty.kind).toEqual({ $case: 'chunk', chunk: { envelopeId: 'e', seq: 0, last: true, data: new Uint8Array(0), totalBytes: 0 } });
  });
});
