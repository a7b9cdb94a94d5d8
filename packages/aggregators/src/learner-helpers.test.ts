import { describe, expect, it } from 'vitest';
import { fednovaNormalizer, scaffoldControlUpdate } from './index.js';

describe('scaffoldControlUpdate (option II)', () => {
  it('matches hand-computed values', () => {
    // (x - y) / (K lr) = [0.2, -0.2] / 0.4 = [0.5, -0.5]
    // c_i+ = c_i - c + that = [0.1 - 0.2 + 0.5, 0 - 0.1 - 0.5] = [0.4, -0.6]; delta = c_i+ - c_i = [0.3, -0.6]
    const { newClientControl, delta } = scaffoldControlUpdate({
      clientControl: Float32Array.from([0.1, 0]),
      serverControl: Float32Array.from([0.2, 0.1]),
      global: Float32Array.from([1, 1]),
      local: Float32Array.from([0.8, 1.2]),
      steps: 4,
      lr: 0.1,
    });
    expect(newClientControl[0]).toBeCloseTo(0.4, 6);
    expect(newClientControl[1]).toBeCloseTo(-0.6, 6);
    expect(delta[0]).toBeCloseTo(0.3, 6);
    expect(delta[1]).toBeCloseTo(-0.6, 6);
  });

  it('rejects mismatched lengths and bad steps or lr', () => {
    const v = new Float32Array(2);
    const base = { clientControl: v, serverControl: v, global: v, local: v, steps: 1, lr: 0.1 };
    expect(() => scaffoldControlUpdate({ ...base, local: new Float32Array(3) })).toThrow(/local has length 3 but clientControl has 2/);
    expect(() => scaffoldControlUpdate({ ...base, steps: 0 })).toThrow(/steps must be a positive number/);
    expect(() => scaffoldControlUpdate({ ...base, lr: Number.NaN })).toThrow(/lr must be a positive learning rate/);
  });
});

describe('fednovaNormalizer', () => {
  it('is tau for plain SGD', () => {
    expect(fednovaNormalizer(7, 0)).toBe(7);
    expect(fednovaNormalizer(0, 0)).toBe(0);
  });

  it('sums the momentum coefficients of every gradient', () => {
    // tau=2, rho=0.5: g0 weighs 1 + 0.5, g1 weighs 1 -> 2.5
    expect(fednovaNormalizer(2, 0.5)).toBeCloseTo(2.5, 12);
    // tau=3, rho=0.5: 1.75 + 1.5 + 1 = 4.25
    expect(fednovaNormalizer(3, 0.5)).toBeCloseTo(4.25, 12);
    // tau=1: one step is one gradient whatever the momentum
    expect(fednovaNormalizer(1, 0.9)).toBeCloseTo(1, 12);
  });

  it('rejects momentum outside [0, 1)', () => {
    expect(() => fednovaNormalizer(3, 1)).toThrow(/momentum must be in \[0, 1\), got 1/);
  });
});
