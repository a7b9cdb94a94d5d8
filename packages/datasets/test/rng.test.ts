import { describe, expect, it } from 'vitest';
import { createRng, deriveSeed } from '../src/index.js';

describe('createRng', () => {
  it('repeats the same sequence for the same seed and differs across seeds', () => {
    const a = createRng(42);
    const b = createRng(42);
    const c = createRng(43);
    const sa = Array.from({ length: 20 }, () => a.next());
    const sb = Array.from({ length: 20 }, () => b.next());
    const sc = Array.from({ length: 20 }, () => c.next());
    expect(sa).toEqual(sb);
    expect(sa).not.toEqual(sc);
    expect(sa.every((x) => x >= 0 && x < 1)).toBe(true);
  });

  it('accepts negative and fractional seeds deterministically', () => {
    expect(createRng(-1).next()).toBe(createRng(-1).next());
    expect(createRng(0.5).next()).not.toBe(createRng(0).next());
    expect(() => createRng(Number.NaN)).toThrow(/seed must be a finite number/);
  });

  it('nextInt covers 0..n-1 roughly uniformly', () => {
    const rng = createRng(7);
    const counts = new Array(5).fill(0);
    for (let i = 0; i < 50_000; i++) counts[rng.nextInt(5)]++;
    for (const c of counts) expect(Math.abs(c - 10_000)).toBeLessThan(500);
    expect(() => rng.nextInt(0)).toThrow(/positive integer/);
  });

  it('normal has mean 0 and variance 1', () => {
    const rng = createRng(1);
    const n = 100_000;
    let sum = 0;
    let sq = 0;
    for (let i = 0; i < n; i++) {
      const x = rng.normal();
      sum += x;
      sq += x * x;
    }
    expect(Math.abs(sum / n)).toBeLessThan(0.02);
    expect(Math.abs(sq / n - 1)).toBeLessThan(0.02);
  });

  it.each([0.1, 0.5, 1, 3.5])('gamma(%f) has mean and variance equal to its shape', (shape) => {
    const rng = createRng(3);
    const n = 100_000;
    let sum = 0;
    let sq = 0;
    let min = Infinity;
    for (let i = 0; i < n; i++) {
      const x = rng.gamma(shape);
      min = Math.min(min, x);
      sum += x;
      sq += x * x;
    }
    const mean = sum / n;
    const variance = sq / n - mean * mean;
    expect(min).toBeGreaterThanOrEqual(0);
    // Five standard errors of the sample mean: sd(mean)/shape = 1/sqrt(shape * n).
    expect(Math.abs(mean - shape) / shape).toBeLessThan(5 / Math.sqrt(shape * n));
    expect(Math.abs(variance - shape) / shape).toBeLessThan(0.15);
  });

  it('deriveSeed gives distinct, repeatable seeds per path', () => {
    expect(deriveSeed(5, 1, 2)).toBe(deriveSeed(5, 1, 2));
    const seeds = new Set(Array.from({ length: 100 }, (_, k) => deriveSeed(5, 1, k)));
    expect(seeds.size).toBe(100);
    expect(deriveSeed(5, 1)).not.toBe(deriveSeed(6, 1));
  });
});
