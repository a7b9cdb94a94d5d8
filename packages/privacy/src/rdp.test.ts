/**
 * The accountant against published numbers and against an independent reference.
 *
 * Published (TF Privacy, which used the classic conversion when these were written, so they are checked
 * with `conversion: 'classic'`):
 * - tensorflow/privacy `rdp_accountant_test.py`, test_get_privacy_spent_check_target_delta: q=0.01, sigma=4,
 *   10000 steps, orders 2..32, delta=1e-5 -> eps 1.258575 at order 20;
 * - same file, test_check_composition: (q=1e-4, sigma=0.4, 40000 steps) then (q=0.1, sigma=2, 100 steps),
 *   21 orders from 1.25 to 256, delta=1e-5 -> eps 8.509656 at order 2.5 (a fractional order);
 * - tensorflow/privacy `tutorials/README.md`, MNIST DP-SGD table (60000 examples, batch 256, delta=1e-5,
 *   steps = epochs * 60000 // 256): sigma 1.12 / 60 epochs -> 2.92; sigma 0.6 / 30 epochs -> 9.74;
 *   sigma 1.2 / 10 epochs -> 1.20.
 * The often-quoted "sigma 1.1, 60 epochs -> eps 3.01" of the MNIST tutorial could not be confirmed from a
 * published source here, so it is checked only against the reference below (3.008272), not as published.
 *
 * Reference: an independent Python/mpmath computation (40 digits) straight from the definition
 * A_alpha = E_{z~N(0,s^2)}[((1-q) + q e^{(2z-1)/(2s^2)})^alpha] — the binomial sum for integer orders,
 * numerical quadrature for fractional ones (not the erfc series this package uses) — then both conversions.
 * It reproduces every published number above to the digits given.
 */
import { describe, expect, it } from 'vitest';
import { DEFAULT_ORDERS, computeRdp, epsilonFromRdp, logErfc } from './rdp.js';

const MNIST_Q = 256 / 60000;
const mnistSteps = (epochs: number) => Math.floor((epochs * 60000) / 256);
const COMPOSITION_ORDERS = [1.25, 1.5, 1.75, 2, 2.5, 3, 4, 5, 6, 7, 8, 10, 12, 14, 16, 20, 24, 28, 32, 64, 256];
const ORDERS_2_32 = Array.from({ length: 31 }, (_, k) => k + 2);

function compositionRdp(): number[] {
  const a = computeRdp(1e-4, 0.4, 40000, COMPOSITION_ORDERS);
  const b = computeRdp(0.1, 2, 100, COMPOSITION_ORDERS);
  return a.map((x, k) => x + b[k]);
}

function within(actual: number, expected: number, relative: number): void {
  expect(Math.abs(actual - expected) / expected, `${actual} vs ${expected}`).toBeLessThanOrEqual(relative);
}

describe('published TF Privacy values (classic conversion), within 1%', () => {
  it('q=0.01, sigma=4, 10000 steps, orders 2..32, delta 1e-5 -> 1.258575 at order 20', () => {
    const got = epsilonFromRdp(ORDERS_2_32, computeRdp(0.01, 4, 10000, ORDERS_2_32), 1e-5, 'classic');
    within(got.epsilon, 1.258575, 0.01);
    expect(got.order).toBe(20);
  });

  it('composition of two mechanisms -> 8.509656 at order 2.5', () => {
    const got = epsilonFromRdp(COMPOSITION_ORDERS, compositionRdp(), 1e-5, 'classic');
    within(got.epsilon, 8.509656, 0.01);
    expect(got.order).toBe(2.5);
  });

  it.each([
    [1.12, 60, 2.92],
    [0.6, 30, 9.74],
    [1.2, 10, 1.2],
  ])('MNIST tutorial table: sigma %s, %s epochs -> %s', (sigma, epochs, published) => {
    const rdp = computeRdp(MNIST_Q, sigma, mnistSteps(epochs));
    within(epsilonFromRdp(DEFAULT_ORDERS, rdp, 1e-5, 'classic').epsilon, published, 0.01);
  });
});

describe('the independent mpmath reference, to 1e-6 relative', () => {
  it.each([
    // sigma, epochs, classic, improved
    [1.1, 60, 3.008272, 2.596556],
    [1.12, 60, 2.922239, 2.51859],
    [0.6, 30, 9.75272, 8.769489],
    [1.2, 10, 1.198237, 0.931622],
  ])('MNIST q=256/60000, sigma %s, %s epochs, default orders', (sigma, epochs, classic, improved) => {
    const rdp = computeRdp(MNIST_Q, sigma, mnistSteps(epochs));
    within(epsilonFromRdp(DEFAULT_ORDERS, rdp, 1e-5, 'classic').epsilon, classic, 1e-6);
    within(epsilonFromRdp(DEFAULT_ORDERS, rdp, 1e-5).epsilon, improved, 1e-6);
  });

  it('the improved conversion of the two TF Privacy test cases', () => {
    within(epsilonFromRdp(ORDERS_2_32, computeRdp(0.01, 4, 10000, ORDERS_2_32), 1e-5).epsilon, 1.03549, 1e-6);
    within(epsilonFromRdp(COMPOSITION_ORDERS, compositionRdp(), 1e-5).epsilon, 7.38797, 1e-6);
  });

  it('log erfc, also far in the tails', () => {
    const cases: [number, number][] = [
      [-3, 0.693136135250447],
      [-1, 0.61123231767807],
      [0.5, -0.735011129837084],
      [1.9, -4.93234586278027],
      [2.1, -5.81601096886756],
      [5, -27.2008895455374],
      [30, -903.974117110644],
    ];
    for (const [x, ref] of cases) within(Math.abs(logErfc(x)), Math.abs(ref), 1e-12);
  });
});

describe('edge cases', () => {
  it('no sampling or no steps costs nothing; full batches are the plain Gaussian mechanism alpha / (2 sigma^2)', () => {
    expect(computeRdp(0, 1, 100, [2, 3])).toEqual([0, 0]);
    expect(computeRdp(0.5, 1, 0, [2, 3])).toEqual([0, 0]);
    expect(computeRdp(1, 2, 3, [2, 8])).toEqual([3 * (2 / 8), 3 * (8 / 8)]);
    expect(computeRdp(0.5, 0, 1, [2])).toEqual([Infinity]);
  });

  it('RDP is linear in steps and the reported epsilon is never negative', () => {
    const one = computeRdp(0.02, 1.3, 1);
    const many = computeRdp(0.02, 1.3, 250);
    many.forEach((r, k) => within(r, 250 * one[k], 1e-12));
    expect(epsilonFromRdp(DEFAULT_ORDERS, computeRdp(1e-6, 50, 1), 0.5).epsilon).toBe(0);
  });

  it('refuses arguments outside their domain', () => {
    expect(() => computeRdp(1.5, 1, 1)).toThrow(/sampling rate/);
    expect(() => computeRdp(0.1, 1, 1, [1])).toThrow(/order must be > 1/);
    expect(() => epsilonFromRdp([2], [1], 0)).toThrow(/delta/);
  });
});
