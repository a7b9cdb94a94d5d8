import { describe, expect, it } from 'vitest';
import { epsilonFor } from './accountant.js';
import { dpSgdSamplingRate, dpSgdStepsPerRound, localDpEpsilon, privatizeUpdate } from './local-dp.js';
import { seededNormal } from './random.js';

const f32 = (...v: number[]) => Float32Array.from(v);
const ones = () => 1; // every draw is 1: the noise on each coordinate is exactly its std

describe('local DP on one update', () => {
  it('clips the delta (3, 4) to norm 1 around the global model and adds noise_multiplier * clip per coordinate', () => {
    const r = privatizeUpdate(f32(13, 24), f32(10, 20), { clipNorm: 1, noiseMultiplier: 0.5, normal: ones });
    // global (10, 20) + clipped delta (0.6, 0.8) + noise 0.5 * 1 on each coordinate
    expect(r.weights[0]).toBeCloseTo(11.1, 5);
    expect(r.weights[1]).toBeCloseTo(21.3, 5);
    expect(r.norm).toBe(5);
    expect(r.noiseStd).toBe(0.5);
  });

  it('leaves a short delta unclipped, and its noise has the stated std (seeded, 20000 coordinates)', () => {
    const n = 20000;
    const global = new Float32Array(n);
    const local = new Float32Array(n).fill(1e-4); // norm 0.014 < clip 1
    const r = privatizeUpdate(local, global, { clipNorm: 1, noiseMultiplier: 2, normal: seededNormal(3) });
    let sum = 0;
    let sq = 0;
    for (let i = 0; i < n; i++) {
      const noise = r.weights[i]! - 1e-4;
      sum += noise;
      sq += noise * noise;
    }
    const mean = sum / n;
    const std = Math.sqrt(sq / n - mean * mean);
    expect(Math.abs(mean)).toBeLessThan(5 * (2 / Math.sqrt(n)));
    expect(Math.abs(std - 2) / 2).toBeLessThan(0.03);
  });

  it('refuses an update of another length', () => {
    expect(() => privatizeUpdate(f32(1, 2), f32(1), { clipNorm: 1, noiseMultiplier: 1, normal: ones })).toThrow(/length/);
  });
});

describe('local DP accounting', () => {
  it('charges each released update as an unsampled Gaussian with sensitivity 2 * clip (noise multiplier z / 2)', () => {
    expect(localDpEpsilon(2, 1, 1e-5)).toBe(epsilonFor(1, 1, 1, 1e-5));
    expect(localDpEpsilon(4, 10, 1e-5)).toBe(epsilonFor(1, 2, 10, 1e-5));
    expect(localDpEpsilon(1, 0, 1e-5)).toBe(0);
  });

  it('spends more with more rounds and less with more noise', () => {
    expect(localDpEpsilon(2, 5, 1e-5)).toBeGreaterThan(localDpEpsilon(2, 4, 1e-5));
    expect(localDpEpsilon(4, 5, 1e-5)).toBeLessThan(localDpEpsilon(2, 5, 1e-5));
  });
});

describe('DP-SGD accounting inputs', () => {
  it('samples one lot of batch / n and takes epochs * ceil(n / batch) steps per round', () => {
    expect(dpSgdSamplingRate(32, 600)).toBeCloseTo(32 / 600, 15);
    expect(dpSgdSamplingRate(64, 10)).toBe(1);
    expect(dpSgdStepsPerRound(32, 600, 2)).toBe(2 * 19);
    expect(() => dpSgdSamplingRate(32, 0)).toThrow(/at least one sample/);
  });
});
