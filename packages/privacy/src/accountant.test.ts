import { describe, expect, it } from 'vitest';
import { PrivacyAccountant, epsilonFor, noiseMultiplierFor } from './accountant.js';
import { DEFAULT_ORDERS, computeRdp, epsilonFromRdp } from './rdp.js';

const Q = 256 / 60000;

describe('PrivacyAccountant', () => {
  it('steps in pieces spend what computeRdp says for all of them at once (2.596556 by the mpmath reference)', () => {
    const acc = new PrivacyAccountant();
    acc.step(Q, 1.1, 14000).step(Q, 1.1, 60).step(Q, 1.1).step(Q, 1.1);
    const whole = epsilonFromRdp(DEFAULT_ORDERS, computeRdp(Q, 1.1, 14062), 1e-5).epsilon;
    expect(acc.epsilon(1e-5)).toBeCloseTo(whole, 10);
    expect(Math.abs(acc.epsilon(1e-5) - 2.596556) / 2.596556).toBeLessThan(1e-6);
    expect(acc.getState().history).toEqual([{ q: Q, sigma: 1.1, steps: 14062 }]);
  });

  it('composes different mechanisms, and epsilonAfter looks ahead without recording', () => {
    const acc = new PrivacyAccountant().step(0.1, 1, 5);
    const ahead = acc.epsilonAfter(0.2, 2, 3, 1e-5);
    expect(acc.getState().history).toHaveLength(1);
    acc.step(0.2, 2, 3);
    expect(acc.epsilon(1e-5)).toBeCloseTo(ahead, 12);
    expect(acc.epsilon(1e-5)).toBeGreaterThan(new PrivacyAccountant().step(0.1, 1, 5).epsilon(1e-5));
  });

  it('setState resumes exactly', () => {
    const acc = new PrivacyAccountant().step(0.05, 0.9, 40).step(0.1, 1.5, 7);
    const resumed = new PrivacyAccountant();
    resumed.setState(JSON.parse(JSON.stringify(acc.getState())));
    expect(resumed.epsilon(1e-6)).toBe(acc.epsilon(1e-6));
  });

  it('spends nothing before the first step', () => {
    expect(new PrivacyAccountant().epsilon(1e-5)).toBe(0);
  });
});

describe('noiseMultiplierFor', () => {
  it('finds back the noise multiplier of a known epsilon, and never overspends', () => {
    const sigma = noiseMultiplierFor(2.596556, Q, 14062, 1e-5);
    expect(Math.abs(sigma - 1.1)).toBeLessThanOrEqual(1e-3);
    expect(epsilonFor(Q, sigma, 14062, 1e-5)).toBeLessThanOrEqual(2.596556);
  });

  it('works for federated settings (10 of 100 learners per round, 100 rounds)', () => {
    for (const target of [1, 4, 8]) {
      const sigma = noiseMultiplierFor(target, 0.1, 100, 1e-5);
      expect(epsilonFor(0.1, sigma, 100, 1e-5)).toBeLessThanOrEqual(target);
      expect(epsilonFor(0.1, sigma - 2e-3, 100, 1e-5)).toBeGreaterThan(target);
    }
  });

  it('refuses a non-positive target', () => {
    expect(() => noiseMultiplierFor(0, 0.1, 10, 1e-5)).toThrow(/target epsilon/);
  });
});
