import type { TensorSpec } from '@oiafed/aggregators';
import { describe, expect, it } from 'vitest';
import {
  compressUpdate,
  decodeUpdateWeights,
  float16ToFloat32,
  float32ToFloat16,
  isCompressedUpdate,
  toFloat16Bits,
  topKIndices,
} from '../src/compression.js';
import { PayloadMismatchError } from '../src/serde.js';

const layout: TensorSpec[] = [
  { name: 'dense/kernel', shape: [2, 4], offset: 0, size: 8, trainable: true, isNormalization: false },
  { name: 'dense/bias', shape: [2], offset: 8, size: 2, trainable: true, isNormalization: false },
];
const global = Float32Array.from([1, 2, 3, 4, 5, 6, 7, 8, 0.5, -0.5]);
const delta = Float32Array.from([0.1, -0.2, 0.0, 0.4, -1.27, 0.03, 0.002, -0.05, 0.25, -0.125]);
const local = global.map((g, i) => g + delta[i]!);

describe('float16', () => {
  it('encodes known values bit-exactly (round to nearest even, subnormals, overflow)', () => {
    expect(toFloat16Bits(1)).toBe(0x3c00);
    expect(toFloat16Bits(-2)).toBe(0xc000);
    expect(toFloat16Bits(65504)).toBe(0x7bff);
    expect(toFloat16Bits(65520)).toBe(0x7c00); // rounds up to Infinity
    expect(toFloat16Bits(2 ** -24)).toBe(0x0001); // smallest subnormal
    expect(toFloat16Bits(2 ** -26)).toBe(0x0000);
    expect(toFloat16Bits(1 + 2 ** -11)).toBe(0x3c00); // tie -> even
    expect(toFloat16Bits(1 + 3 * 2 ** -11)).toBe(0x3c02); // tie -> even (up)
    expect(toFloat16Bits(NaN) & 0x7fff).toBeGreaterThan(0x7c00);
  });

  it('round-trips every finite half exactly and float32 within half an ulp (2^-11 relative)', () => {
    const all = new Uint16Array(65536).map((_, i) => i);
    const f = float16ToFloat32(all);
    const back = float32ToFloat16(f);
    const wrong: number[] = [];
    for (let h = 0; h < 65536; h++) if ((h & 0x7c00) !== 0x7c00 && back[h] !== h) wrong.push(h);
    expect(wrong).toEqual([]);
    const xs = Float32Array.from([0.1, -3.14159, 1234.5, 6e-5, -0.0007]);
    const rt = float16ToFloat32(float32ToFloat16(xs));
    xs.forEach((x, i) => expect(Math.abs(rt[i]! - x)).toBeLessThanOrEqual(Math.max(Math.abs(x) * 2 ** -11, 2 ** -25)));
  });
});

describe('compressUpdate / decodeUpdateWeights', () => {
  it('none sends the weights as views, and decoding returns them bit-exactly', () => {
    const t = compressUpdate(local, global, layout, { type: 'none' });
    expect(t.map((x) => x.name)).toEqual(['weights/dense/kernel', 'weights/dense/bias']);
    expect(t[0]!.data.buffer).toBe(local.buffer);
    expect(isCompressedUpdate(t)).toBe(false);
    expect(decodeUpdateWeights(t, layout, global)).toEqual(local);
  });

  it('float16 sends 2 bytes per weight and rebuilds global + delta within float16 rounding', () => {
    const t = compressUpdate(local, global, layout, { type: 'float16' });
    expect(t.map((x) => [x.name, x.dtype, x.shape])).toEqual([
      ['delta/dense/kernel', 'float16', [2, 4]],
      ['delta/dense/bias', 'float16', [2]],
    ]);
    const w = decodeUpdateWeights(t, layout, global);
    // local - global in float32 is not exactly delta; compare against the float32 delta actually sent.
    w.forEach((x, i) => expect(Math.abs(x - local[i]!)).toBeLessThan(Math.abs(local[i]! - global[i]!) * 2 ** -10 + 1e-6));
  });

  it('int8 uses a per-tensor scale max|delta|/127 and errs by at most scale/2 per weight', () => {
    const t = compressUpdate(local, global, layout, { type: 'int8' });
    expect(t.map((x) => [x.name, x.dtype])).toEqual([
      ['delta/dense/kernel', 'int8'],
      ['delta_scale/dense/kernel', 'float32'],
      ['delta/dense/bias', 'int8'],
      ['delta_scale/dense/bias', 'float32'],
    ]);
    const kernelScale = t[1]!.data[0]!;
    expect(kernelScale).toBeCloseTo(1.27 / 127, 6);
    expect(t[0]!.data[4]).toBe(-127);
    expect(t[0]!.data[1]).toBe(-20);
    const w = decodeUpdateWeights(t, layout, global);
    for (let i = 0; i < 8; i++) expect(Math.abs(w[i]! - local[i]!)).toBeLessThanOrEqual(kernelScale / 2 + 1e-6);
    expect(w[8]).toBeCloseTo(local[8]!, 6); // max of its tensor: exact up to float rounding
  });

  it('topk keeps the ceil(ratio * size) largest-magnitude entries of each tensor', () => {
    const t = compressUpdate(local, global, layout, { type: 'topk', topk_ratio: 0.25 });
    expect(t.map((x) => [x.name, x.dtype, x.shape])).toEqual([
      ['delta/dense/kernel', 'float32', [2]],
      ['delta_index/dense/kernel', 'int32', [2]],
      ['delta/dense/bias', 'float32', [1]],
      ['delta_index/dense/bias', 'int32', [1]],
    ]);
    expect([...t[1]!.data]).toEqual([3, 4]); // |0.4| and |-1.27|
    expect([...t[3]!.data]).toEqual([0]);
    const w = decodeUpdateWeights(t, layout, global);
    const expected = Float32Array.from(global);
    expected[3] = local[3]!;
    expected[4] = local[4]!;
    expected[8] = local[8]!;
    for (let i = 0; i < 10; i++) expect(w[i]).toBeCloseTo(expected[i]!, 6);
  });

  it('error feedback carries what top-k dropped into the next round', () => {
    const residual = new Float32Array(global.length);
    compressUpdate(local, global, layout, { type: 'topk', topk_ratio: 0.25 }, residual);
    expect(residual[3]).toBe(0);
    expect(residual[0]).toBeCloseTo(0.1, 6);
    expect(residual[9]).toBeCloseTo(-0.125, 6);
    // Next round with no new change: the residual itself is what gets sent.
    const t = compressUpdate(global, global, layout, { type: 'topk', topk_ratio: 0.25 }, residual);
    expect([...t[1]!.data]).toEqual([0, 1]); // |0.1| and |-0.2|, dropped last round, lead now
  });

  it('rejects deltas beyond float16 range with a clear error', () => {
    const far = Float32Array.from(global);
    far[2] = 1e6;
    expect(() => compressUpdate(far, global, layout, { type: 'float16' })).toThrow(/dense\/kernel.*float16's range/);
  });

  it('rejects bad settings', () => {
    expect(() => compressUpdate(local, global, layout, { type: 'zip' as 'none' })).toThrow(/none\|float16\|int8\|topk/);
    expect(() => compressUpdate(local, global, layout, { type: 'topk', topk_ratio: 0 })).toThrow(/topk_ratio.*\(0, 1\]/);
  });

  it.each([
    ['a missing tensor', (t: ReturnType<typeof compressUpdate>) => t.slice(2), /no "delta\/dense\/kernel"/],
    ['a missing scale', (t: ReturnType<typeof compressUpdate>) => t.filter((x) => x.name !== 'delta_scale/dense/bias'), /dense\/bias: int8 delta needs/],
    ['a NaN scale', (t: ReturnType<typeof compressUpdate>) => t.map((x) => (x.name === 'delta_scale/dense/bias' ? { ...x, data: Float32Array.of(NaN) } : x)), /scale NaN/],
    ['a wrong shape', (t: ReturnType<typeof compressUpdate>) => t.map((x) => (x.name === 'delta/dense/kernel' ? { ...x, shape: [4, 2] } : x)), /delta shape \[4,2\]/],
    ['a stray tensor', (t: ReturnType<typeof compressUpdate>) => [...t, { name: 'delta/other', shape: [1], dtype: 'float32' as const, data: new Float32Array(1) }], /unexpected tensor "delta\/other"/],
  ])('rejects %s in an int8 update', (_label, mutate, message) => {
    const t = mutate(compressUpdate(local, global, layout, { type: 'int8' }));
    expect(() => decodeUpdateWeights(t, layout, global)).toThrow(PayloadMismatchError);
    expect(() => decodeUpdateWeights(t, layout, global)).toThrow(message);
  });

  it('rejects out-of-range top-k indices and non-finite values', () => {
    const t = compressUpdate(local, global, layout, { type: 'topk', topk_ratio: 0.25 });
    const badIndex = t.map((x) => (x.name === 'delta_index/dense/bias' ? { ...x, data: Int32Array.of(2) } : x));
    expect(() => decodeUpdateWeights(badIndex, layout, global)).toThrow(/dense\/bias: top-k index 2 outside \[0, 2\)/);
    const inf = t.map((x) => (x.name === 'delta/dense/bias' ? { ...x, data: Float32Array.of(Infinity) } : x));
    expect(() => decodeUpdateWeights(inf, layout, global)).toThrow(/non-finite value Infinity/);
  });

  it('rejects top-k updates with repeated or unsorted indices (three 1e38 values on one index)', () => {
    const t = compressUpdate(local, global, layout, { type: 'topk', topk_ratio: 0.25 });
    const withIndex = (index: Int32Array, values: Float32Array) =>
      t.map((x) =>
        x.name === 'delta_index/dense/kernel'
          ? { ...x, shape: [index.length], data: index }
          : x.name === 'delta/dense/kernel'
            ? { ...x, shape: [values.length], data: values }
            : x,
      );
    const repeated = withIndex(Int32Array.of(3, 3, 3), Float32Array.of(1e38, 1e38, 1e38));
    expect(() => decodeUpdateWeights(repeated, layout, global)).toThrow(PayloadMismatchError);
    expect(() => decodeUpdateWeights(repeated, layout, global)).toThrow(/dense\/kernel: top-k index 3 at position 1 repeats the previous 3/);
    const unsorted = withIndex(Int32Array.of(4, 1), Float32Array.of(0.5, 0.5));
    expect(() => decodeUpdateWeights(unsorted, layout, global)).toThrow(/top-k index 1 at position 1 is below the previous 4 \(indices must be strictly ascending\)/);
    // What the encoder sends (ascending, distinct) still decodes.
    expect(decodeUpdateWeights(withIndex(Int32Array.of(1, 4), Float32Array.of(0.5, 0.5)), layout, global)[4]).toBeCloseTo(global[4]! + 0.5);
  });

  it('topKIndices handles ties and k >= n', () => {
    expect([...topKIndices(Float32Array.from([1, -1, 1, 0.5]), 2)]).toEqual([0, 1]);
    expect([...topKIndices(Float32Array.from([3, 1]), 5)]).toEqual([0, 1]);
  });
});

describe('compressed updates in a federation', () => {
  it.each(['float16', 'int8', 'topk'] as const)('trains with %s updates, receiving fewer bytes than uncompressed', async (type) => {
    const { runSerial } = await import('../src/runner.js');
    const { syntheticTrainerConfig } = await import('./helpers.js');
    const trainer = { args: { max_rounds: 2, min_clients: 3, local_epochs: 1, registration_timeout: 20, round_timeout: 60 } };
    const plain = await runSerial(syntheticTrainerConfig({ trainer }), { numClients: 3 });
    const config = syntheticTrainerConfig({ trainer, transport: { mode: 'memory', update_compression: { type, topk_ratio: 0.1 } } });
    const summary = await runSerial(config, { numClients: 3 });
    expect(summary.rounds.every((r) => r.participants === 3 && r.aggregated)).toBe(true);
    expect(summary.weights.every(Number.isFinite)).toBe(true);
    const limit = { float16: 0.6, int8: 0.35, topk: 0.3 }[type];
    expect(summary.rounds[1]!.bytes_received).toBeLessThan(plain.rounds[1]!.bytes_received * limit);
    expect(summary.finalAccuracy!).toBeGreaterThan(plain.finalAccuracy! - 0.15);
  });
});
