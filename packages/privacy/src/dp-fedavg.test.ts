import { describe, expect, it } from 'vitest';
import { adaptClipNorm, adaptiveUpdateNoiseMultiplier, addGaussianNoise, centralNoiseStd, clipL2, dpMean, l2Norm } from './dp-fedavg.js';
import { cryptoNormal, seededNormal } from './random.js';

const f32 = (...v: number[]) => Float32Array.from(v);
const ones = () => 1; // a "normal source" that always draws 1: noise becomes exactly its std

describe('clipping', () => {
  it('scales a (3, 4) update of norm 5 down to norm 1 and leaves a short one alone', () => {
    const long = clipL2(f32(3, 4), 1);
    expect(Array.from(long.clipped)).toEqual([Math.fround(0.6), Math.fround(0.8)]);
    expect(long.norm).toBe(5);
    expect(long.withinClip).toBe(false);
    const short = clipL2(f32(0.3, 0.4), 1);
    expect(Array.from(short.clipped)).toEqual([Math.fround(0.3), Math.fround(0.4)]);
    expect(short.withinClip).toBe(true);
    expect(l2Norm(f32(1, 2, 2))).toBe(3);
    expect(() => clipL2(f32(1), 0)).toThrow(/clip norm/);
  });
});

describe('central DP-FedAvg mean', () => {
  it('clips, sums and divides by the expected participants: ((0.6, 0.8) + (0.3, 0.4)) / 2 without noise', () => {
    const r = dpMean([f32(3, 4), f32(0.3, 0.4)], { clipNorm: 1, noiseMultiplier: 0, expectedParticipants: 2, normal: ones });
    expect(r.mean[0]).toBeCloseTo(0.45, 6);
    expect(r.mean[1]).toBeCloseTo(0.6, 6);
    expect(r.withinClip).toBe(1);
    expect(r.noiseStd).toBe(0);
  });

  it('divides by the expected participants, not by the number that answered (fixed denominator)', () => {
    const r = dpMean([f32(0.3, 0.4)], { clipNorm: 1, noiseMultiplier: 0, expectedParticipants: 4, normal: ones });
    expect(r.mean[0]).toBeCloseTo(0.075, 7);
  });

  it('adds noise of std noise_multiplier * clip / participants: 1.5 * 2 / 3 = 1 per coordinate', () => {
    expect(centralNoiseStd(1.5, 2, 3)).toBe(1);
    const r = dpMean([f32(0, 0), f32(0, 0), f32(0, 0)], { clipNorm: 2, noiseMultiplier: 1.5, expectedParticipants: 3, normal: ones });
    expect(Array.from(r.mean)).toEqual([1, 1]);
    expect(r.noiseStd).toBe(1);
  });

  it('the noise has the stated spread (seeded, 200k coordinates: mean ~0, std within 1%)', () => {
    const noised = addGaussianNoise(new Float32Array(200_000), 0.25, seededNormal(7));
    let sum = 0;
    let sq = 0;
    for (const x of noised) {
      sum += x;
      sq += x * x;
    }
    const mean = sum / noised.length;
    expect(Math.abs(mean)).toBeLessThan(0.25 * 5 / Math.sqrt(noised.length));
    expect(Math.abs(Math.sqrt(sq / noised.length - mean * mean) / 0.25 - 1)).toBeLessThan(0.01);
  });

  it('seeded noise repeats; CSPRNG noise does not', () => {
    const a = addGaussianNoise(new Float32Array(8), 1, seededNormal(3));
    expect(addGaussianNoise(new Float32Array(8), 1, seededNormal(3))).toEqual(a);
    expect(addGaussianNoise(new Float32Array(8), 1, cryptoNormal())).not.toEqual(addGaussianNoise(new Float32Array(8), 1, cryptoNormal()));
  });

  it('CSPRNG normals are standard normal (100k draws: mean within 5 standard errors, variance within 2%)', () => {
    const normal = cryptoNormal();
    let sum = 0;
    let sq = 0;
    const n = 100_000;
    for (let i = 0; i < n; i++) {
      const x = normal();
      sum += x;
      sq += x * x;
    }
    expect(Math.abs(sum / n)).toBeLessThan(5 / Math.sqrt(n));
    expect(Math.abs(sq / n - 1)).toBeLessThan(0.02);
  });
});

describe('adaptive clipping (Andrew et al. 2021)', () => {
  const opts = { targetQuantile: 0.5, learningRate: 0.2, countStd: 0, normal: ones };

  it('3 of 4 inside a clip of 1, target 0.5, rate 0.2: C = exp(-0.2 * 0.25) = 0.951229...', () => {
    expect(adaptClipNorm(1, 3, 4, opts)).toBeCloseTo(Math.exp(-0.05), 12);
    expect(adaptClipNorm(1, 3, 4, opts)).toBeCloseTo(0.951229424500714, 12);
  });

  it('grows when too few updates fit: 0 of 4, clip 2 -> 2 * exp(0.1)', () => {
    expect(adaptClipNorm(2, 0, 4, opts)).toBeCloseTo(2 * Math.exp(0.1), 12);
  });

  it('noises the count: a draw of 1 with sigma_b 2 counts as 2 more of 4 -> exp(-0.2 * (5/4 - 0.5))', () => {
    expect(adaptClipNorm(1, 3, 4, { ...opts, countStd: 2 })).toBeCloseTo(Math.exp(-0.2 * 0.75), 12);
  });

  it('converges to the target quantile of fixed norms 1..10 (median between 5 and 6)', () => {
    const norms = Array.from({ length: 10 }, (_, k) => k + 1);
    let clip = 0.1;
    for (let round = 0; round < 300; round++) clip = adaptClipNorm(clip, norms.filter((n) => n <= clip).length, 10, opts);
    expect(clip).toBeGreaterThan(4.5);
    expect(clip).toBeLessThan(6.5);
  });

  it('splits the noise budget: z = 1, sigma_b = 1 -> z_delta = (1 - 1/4)^(-1/2) = 1.1547', () => {
    expect(adaptiveUpdateNoiseMultiplier(1, 1)).toBeCloseTo(1 / Math.sqrt(0.75), 12);
    expect(() => adaptiveUpdateNoiseMultiplier(1, 0.5)).toThrow(/too small/);
  });
});
