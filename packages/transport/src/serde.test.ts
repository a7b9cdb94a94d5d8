import { describe, expect, it } from 'vitest';
import { bodyFromBytes, decodeEnvelope, encodeEnvelope, jsonNestsDeeperThan, payloadFromWire, payloadToWire, tensorFromProto, tensorToProto } from './serde.js';
import { EnvelopeKind, type Envelope } from './generated/oiafed/v1/node.js';
import { DataType } from './generated/oiafed/v1/node.js';

describe('serde', () => {
  it('tensorToProto views the typed array memory without copying', () => {
    const data = new Float32Array([1, 2, 3, 4]);
    const p = tensorToProto({ name: 'w', shape: [2, 2], dtype: 'float32', data });
    expect(p.data.buffer).toBe(data.buffer);
    expect(p.dtype).toBe(DataType.DATA_TYPE_FLOAT32);
    expect(Array.from(p.data.subarray(4, 8))).toEqual([0, 0, 0, 64]); // 2.0f little-endian
  });

  it('tensorFromProto views aligned bytes and copies misaligned ones', () => {
    const backing = new Uint8Array(13);
    new Float32Array(backing.buffer, 4, 2).set([1.5, -2]);
    const aligned = tensorFromProto({ name: 'a', shape: [2], dtype: DataType.DATA_TYPE_FLOAT32, data: backing.subarray(4, 12) });
    expect(aligned.data.buffer).toBe(backing.buffer);
    expect(Array.from(aligned.data)).toEqual([1.5, -2]);
    const odd = new Uint8Array(9);
    odd.set(backing.subarray(4, 12), 1);
    const mis = tensorFromProto({ name: 'm', shape: [2], dtype: DataType.DATA_TYPE_FLOAT32, data: odd.subarray(1, 9) });
    expect(mis.data.buffer).not.toBe(odd.buffer);
    expect(Array.from(mis.data)).toEqual([1.5, -2]);
  });

  it('rejects mismatched shape, dtype and data with messages naming the tensor', () => {
    expect(() => tensorToProto({ name: 'w', shape: [3], dtype: 'float32', data: new Float32Array(2) })).toThrow(/'w'.*3 elements.*2/);
    expect(() => tensorToProto({ name: 'w', shape: [2], dtype: 'int32', data: new Float32Array(2) })).toThrow(/Int32Array/);
    expect(() => tensorToProto({ name: 'w', shape: [2], dtype: 'float64' as 'float32', data: new Float32Array(2) })).toThrow(/dtype/);
    expect(() => tensorFromProto({ name: 'r', shape: [4], dtype: DataType.DATA_TYPE_INT32, data: new Uint8Array(15) })).toThrow(/'r'.*16 bytes.*15/);
    expect(() => payloadToWire({ body: 10n }, 'call')).toThrow(/JSON/);
  });

  it('round-trips an envelope through its encoded bytes', () => {
    const env: Envelope = {
      id: 'i1',
      method: 'fit',
      source: 'trainer',
      target: 'learner_0',
      correlationId: '',
      timestampMs: 1_700_000_000_123,
      metadata: { round: '3' },
      kind: EnvelopeKind.ENVELOPE_KIND_REQUEST,
      timeoutMs: 5000,
      ...payloadToWire({ body: { lr: 0.01 }, tensors: [{ name: 'b', shape: [3], dtype: 'int8', data: new Int8Array([-1, 0, 1]) }] }, 't'),
    };
    const back = decodeEnvelope(encodeEnvelope(env));
    expect(back).toMatchObject({ id: 'i1', method: 'fit', timestampMs: 1_700_000_000_123, metadata: { round: '3' }, timeoutMs: 5000 });
    const payload = payloadFromWire(back, 't');
    expect(payload.body).toEqual({ lr: 0.01 });
    expect(Array.from(payload.tensors![0].data)).toEqual([-1, 0, 1]);
    expect(() => decodeEnvelope(new Uint8Array([0xff, 0xff, 0xff]))).toThrow(/malformed envelope/);
  });
});

describe('JSON body limits, checked before parsing', () => {
  it('refuses a body over maxBytes and one nesting deeper than maxDepth, without parsing it', () => {
    const big = new TextEncoder().encode(JSON.stringify({ a: 'x'.repeat(2000) }));
    expect(() => bodyFromBytes(big, 'reply', { maxBytes: 1000, maxDepth: 64 })).toThrow(/JSON body of \d+ bytes is over the limit of 1000/);
    // 24 MB of '[' would take JSON.parse seconds; the scan refuses it at level 65.
    const deep = Buffer.alloc(24 * 1024 * 1024, '[');
    expect(() => bodyFromBytes(deep, 'reply', { maxBytes: 64 * 1024 * 1024, maxDepth: 64 })).toThrow(/nests deeper than 64 levels/);
  });

  it('counts brackets inside strings (and escaped quotes) as text, not nesting', () => {
    const ok = new TextEncoder().encode(JSON.stringify({ s: '[[[[[[\\"[[[[', n: [[1]] }));
    expect(jsonNestsDeeperThan(ok, 3)).toBe(false);
    expect(bodyFromBytes(ok, 'x', { maxBytes: 1000, maxDepth: 3 })).toEqual({ s: '[[[[[[\\"[[[[', n: [[1]] });
    expect(jsonNestsDeeperThan(new TextEncoder().encode('[[[[]]]]'), 3)).toBe(true);
  });
});
