import { describe, expect, it } from 'vitest';
import { PayloadMismatchError } from '../src/serde.js';
import { announcedSampleCount, checkReplyScalars, clipUpdateNorm, firstNonFinite } from '../src/update-checks.js';

const bounds = { maxSamples: 1e9, announcedSamples: 100, localEpochs: 1 };
const ok = { round: 1, num_samples: 100, local_steps: 4, meta: { momentum: 0.9, lr: 0.05 }, metrics: { loss: 1, accuracy: 0.5, seconds: 2, samples_per_second: 50 } };

describe('update_norm_clip', () => {
  it('scales a delta of norm 5 down to 2.5 (hand-computed) and leaves a short one alone', () => {
    const global = Float32Array.from([1, 1, 1]);
    const update = Float32Array.from([4, 5, 1]); // delta (3, 4, 0), |delta| = 5
    expect(clipUpdateNorm(update, global, 2.5)).toBe(5);
    expect([...update]).toEqual([2.5, 3, 1]); // delta (1.5, 2, 0), |delta| = 2.5
    const short = Float32Array.from([1, 2, 1]); // |delta| = 1 <= 2.5
    expect(clipUpdateNorm(short, global, 2.5)).toBe(1);
    expect([...short]).toEqual([1, 2, 1]);
  });
});

describe('train reply scalars', () => {
  it('accepts what the default learner sends', () => {
    expect(checkReplyScalars(ok, bounds)).toEqual({
      numSamples: 100,
      localSteps: 4,
      meta: { momentum: 0.9, lr: 0.05 },
      metrics: { loss: 1, accuracy: 0.5, seconds: 2, samplesPerSecond: 50 },
    });
    expect(checkReplyScalars({ ...ok, local_steps: undefined, meta: undefined }, bounds).localSteps).toBeUndefined();
  });

  it.each<[string, Record<string, unknown>, RegExp]>([
    ['FedNova poison: local_steps 1e308', { local_steps: 1e308 }, /local_steps must be an integer in 0..10000 \(num_samples x max\(local_epochs, 100\)\), got 1e\+308/],
    ['num_samples above the announced count', { num_samples: 1e9 }, /num_samples must be an integer in 1..100 \(the count it announced\), got 1000000000/],
    ['fractional local_steps', { local_steps: 2.5 }, /local_steps must be an integer/],
    ['negative local_steps', { local_steps: -1 }, /local_steps must be an integer/],
    ['momentum 1 (FedNova divides by 1 - momentum)', { meta: { momentum: 1 } }, /meta.momentum must be a number in \[0, 1\), got 1/],
    ['a string momentum', { meta: { momentum: '0.5' } }, /meta.momentum must be a number in \[0, 1\), got "0.5"/],
    ['lr 0', { meta: { lr: 0 } }, /meta.lr must be a number > 0, got 0/],
    ['a nested meta value', { meta: { x: { y: 1 } } }, /meta.x must be a number, string or boolean, got object/],
    ['too many meta keys', { meta: Object.fromEntries(Array.from({ length: 33 }, (_, i) => [`k${i}`, i])) }, /meta has 33 keys, at most 32/],
    ['meta that is an array', { meta: [1] }, /meta must be an object/],
  ])('rejects %s', (_label, change, message) => {
    expect(() => checkReplyScalars({ ...ok, ...change }, bounds)).toThrow(PayloadMismatchError);
    expect(() => checkReplyScalars({ ...ok, ...change }, bounds)).toThrow(message);
  });

  it('caps num_samples at max_samples when nothing was announced, and keeps non-finite metrics out', () => {
    expect(() => checkReplyScalars({ ...ok, num_samples: 2e9 }, { ...bounds, announcedSamples: undefined })).toThrow(/1..1000000000, got 2000000000/);
    const m = checkReplyScalars({ ...ok, metrics: { loss: Infinity, accuracy: 'x', seconds: -3, samples_per_second: NaN } }, bounds).metrics;
    expect(m).toEqual({ loss: NaN, accuracy: NaN, seconds: 0, samplesPerSecond: 0 });
  });

  it('reads the announced sample count only when it is a positive integer', () => {
    expect(announcedSampleCount('200')).toBe(200);
    expect([announcedSampleCount(undefined), announcedSampleCount('0'), announcedSampleCount('1e9'), announcedSampleCount('-5')]).toEqual([
      undefined,
      undefined,
      undefined,
      undefined,
    ]);
    expect(firstNonFinite(Float32Array.from([0, 1, NaN]))).toBe(2);
    expect(firstNonFinite([1, 2])).toBe(-1);
  });
});
