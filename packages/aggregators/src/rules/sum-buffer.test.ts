import { describe, expect, it } from 'vitest';
import { createAggregator, registerBuiltins } from '../index.js';
import { makeContext, makeUpdate } from '../testing/index.js';
import { axpyInto, createSumBuffer } from '../vector.js';

registerBuiltins();

function pseudoRandom(n: number, seed: number): Float32Array {
  const v = new Float32Array(n);
  let s = seed;
  for (let i = 0; i < n; i++) {
    s = (s * 1103515245 + 12345) >>> 0;
    v[i] = (s / 2 ** 32) * 2 - 1;
  }
  return v;
}

describe('createSumBuffer (wasm SIMD above 4096 elements)', () => {
  it.each([10, 4096, 40_003])('matches the JS float64 loop bit for bit at length %i', (n) => {
    const buf = createSumBuffer(n);
    const ref = new Float64Array(n);
    for (let k = 0; k < 3; k++) {
      const x = pseudoRandom(n, k + 1);
      buf.axpy(x, 0.3 + k * 7.25);
      axpyInto(ref, x, 0.3 + k * 7.25);
    }
    expect(buf.sum).toEqual(ref);
  });

  it('rejects a vector of the wrong length', () => {
    expect(() => createSumBuffer(5000).axpy(new Float32Array(4999), 1)).toThrow(/length 4999, expected 5000/);
  });

  it('gives large-model FedAvg the exact weighted mean', () => {
    const n = 20_001;
    const a = pseudoRandom(n, 11);
    const b = pseudoRandom(n, 12);
    const res = createAggregator({ type: 'fedavg' }).aggregate(makeContext(new Float32Array(n)), [
      makeUpdate('a', [...a], { numSamples: 1 }),
      makeUpdate('b', [...b], { numSamples: 3 }),
    ]);
    const expected = a.map((x, i) => (x * 1 + b[i]! * 3) / 4);
    expect(res.weights).toEqual(expected);
  });
});
