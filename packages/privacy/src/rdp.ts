/**
 * Renyi differential privacy of the Poisson-subsampled Gaussian mechanism (Mironov, Talwar, Zhang 2019,
 * "Renyi Differential Privacy of the Sampled Gaussian Mechanism", arXiv:1908.10530), computed in log space,
 * and its conversion to (epsilon, delta). The same computation as TF Privacy's `rdp_accountant` and Opacus'
 * `privacy_analysis`, so their published numbers can be checked against it (see rdp.test.ts).
 */

/** The orders TF Privacy and Opacus use by default: 1.1 ... 10.9, 12 ... 63, 128, 256, 512. */
export const DEFAULT_ORDERS: readonly number[] = Object.freeze([
  ...Array.from({ length: 99 }, (_, x) => 1 + (x + 1) / 10),
  ...Array.from({ length: 52 }, (_, x) => 12 + x),
  128,
  256,
  512,
]);

/** log(e^a + e^b) without overflow. */
export function logAdd(a: number, b: number): number {
  const hi = Math.max(a, b);
  if (hi === -Infinity) return -Infinity;
  return hi + Math.log1p(Math.exp(Math.min(a, b) - hi));
}

/** log(e^a - e^b) for a >= b. */
function logSub(a: number, b: number): number {
  if (b === -Infinity) return a;
  if (a <= b) return -Infinity; // rounding can make a tiny negative difference; the true value is ~0
  return a + Math.log(-Math.expm1(b - a));
}

const LOG_SQRT_PI = 0.5 * Math.log(Math.PI);

/** erf by its Taylor series: accurate to ~1e-15 absolute for |x| < 2. */
function erfSeries(x: number): number {
  let term = x;
  let sum = x;
  for (let n = 1; n < 200 && Math.abs(term) > 1e-18 * Math.abs(sum); n++) {
    term *= (-x * x) / n;
    sum += term / (2 * n + 1);
  }
  return (2 / Math.sqrt(Math.PI)) * sum;
}

/** log(erfc(x) * e^{x^2} * sqrt(pi)) for x >= 2, by the Laplace continued fraction (evaluated bottom-up). */
function logErfcScaledTail(x: number): number {
  let t = x;
  for (let n = 120; n >= 1; n--) t = x + n / 2 / t;
  return -Math.log(t);
}

/** log(erfc(x)) for any x, with relative accuracy far beyond what the accountant needs, also deep in the tail. */
export function logErfc(x: number): number {
  if (x >= 2) return -x * x - LOG_SQRT_PI + logErfcScaledTail(x);
  if (x > -2) return Math.log1p(-erfSeries(x));
  return Math.log(2 - Math.exp(-x * x - LOG_SQRT_PI + logErfcScaledTail(-x)));
}

/** log A_alpha for an integer order (MTZ 2019, Section 3.3): a finite binomial sum. */
function logAInt(q: number, sigma: number, alpha: number): number {
  let logA = -Infinity;
  let logBinom = 0;
  const logQ = Math.log(q);
  const log1mQ = Math.log1p(-q);
  for (let i = 0; i <= alpha; i++) {
    logA = logAdd(logA, logBinom + i * logQ + (alpha - i) * log1mQ + (i * i - i) / (2 * sigma * sigma));
    logBinom += Math.log(alpha - i) - Math.log(i + 1);
  }
  return logA;
}

/** log A_alpha for a fractional order (MTZ 2019, Section 3.3): two converging series with erfc weights. */
function logAFrac(q: number, sigma: number, alpha: number): number {
  let logA0 = -Infinity;
  let logA1 = -Infinity;
  const z0 = sigma * sigma * Math.log(1 / q - 1) + 0.5;
  const logQ = Math.log(q);
  const log1mQ = Math.log1p(-q);
  let logCoef = 0; // log |binom(alpha, i)|
  let positive = true; // sign of binom(alpha, i)
  for (let i = 0; i < 100_000; i++) {
    const j = alpha - i;
    const logS0 = logCoef + i * logQ + j * log1mQ + (i * i - i) / (2 * sigma * sigma) + Math.log(0.5) + logErfc((i - z0) / (Math.SQRT2 * sigma));
    const logS1 = logCoef + j * logQ + i * log1mQ + (j * j - j) / (2 * sigma * sigma) + Math.log(0.5) + logErfc((z0 - j) / (Math.SQRT2 * sigma));
    logA0 = positive ? logAdd(logA0, logS0) : logSub(logA0, logS0);
    logA1 = positive ? logAdd(logA1, logS1) : logSub(logA1, logS1);
    if (Math.max(logS0, logS1) < -30) break;
    const ratio = (alpha - i) / (i + 1);
    logCoef += Math.log(Math.abs(ratio));
    if (ratio < 0) positive = !positive;
  }
  return logAdd(logA0, logA1);
}

/** RDP of one step of the sampled Gaussian mechanism at one order. */
function rdpOneStep(q: number, sigma: number, alpha: number): number {
  if (q === 0) return 0;
  if (sigma === 0) return Infinity;
  if (q === 1) return alpha / (2 * sigma * sigma);
  if (!Number.isFinite(alpha)) return Infinity;
  const logA = Number.isInteger(alpha) ? logAInt(q, sigma, alpha) : logAFrac(q, sigma, alpha);
  return logA / (alpha - 1);
}

function checkRdpArgs(q: number, noiseMultiplier: number, steps: number, orders: readonly number[]): void {
  if (!(q >= 0 && q <= 1)) throw new RangeError(`sampling rate q must be in [0, 1], got ${q}`);
  if (!(noiseMultiplier >= 0)) throw new RangeError(`noise multiplier must be >= 0, got ${noiseMultiplier}`);
  if (!(steps >= 0)) throw new RangeError(`steps must be >= 0, got ${steps}`);
  const bad = orders.find((a) => !(a > 1));
  if (bad !== undefined) throw new RangeError(`every RDP order must be > 1, got ${bad}`);
}

/**
 * RDP at each order of `steps` compositions of the Poisson-subsampled Gaussian mechanism with sampling
 * rate `q` and noise standard deviation `noiseMultiplier` times the L2 sensitivity.
 */
export function computeRdp(q: number, noiseMultiplier: number, steps: number, orders: readonly number[] = DEFAULT_ORDERS): number[] {
  checkRdpArgs(q, noiseMultiplier, steps, orders);
  return orders.map((alpha) => (steps === 0 ? 0 : steps * rdpOneStep(q, noiseMultiplier, alpha)));
}

/**
 * How RDP becomes (epsilon, delta):
 * - `improved` (default; Balle et al. 2020, "Hypothesis Testing Interpretations and Renyi DP", Thm 21; what
 *   Opacus and current TF Privacy use): eps = rdp - (log(delta) + log(order)) / (order - 1) + log((order - 1) / order),
 *   and 0 where the KL bound delta^2 + expm1(-rdp) > 0 already holds;
 * - `classic` (Mironov 2017, Prop. 3; what TF Privacy used until 2020 and the numbers it published then):
 *   eps = rdp - log(delta) / (order - 1).
 */
export type RdpConversion = 'improved' | 'classic';

export interface EpsilonAtOrder {
  epsilon: number;
  /** The order that gave the smallest epsilon. */
  order: number;
}

function epsilonAtOrder(alpha: number, rdp: number, logDelta: number, conversion: RdpConversion): number {
  if (conversion === 'classic') return rdp - logDelta / (alpha - 1);
  // The KL bound delta <= sqrt(1 - e^-rdp) gives epsilon 0 outright for tiny rdp (as TF Privacy's
  // dp_accounting does); without it an accountant that has spent nothing would report ~0.008.
  if (Math.exp(2 * logDelta) + Math.expm1(-rdp) > 0) return 0;
  return rdp - (logDelta + Math.log(alpha)) / (alpha - 1) + Math.log1p(-1 / alpha);
}

/** The smallest epsilon over the orders for the given delta (never below 0). */
export function epsilonFromRdp(
  orders: readonly number[],
  rdp: readonly number[],
  delta: number,
  conversion: RdpConversion = 'improved',
): EpsilonAtOrder {
  if (orders.length !== rdp.length) throw new RangeError(`orders (${orders.length}) and rdp (${rdp.length}) differ in length`);
  if (!(delta > 0 && delta < 1)) throw new RangeError(`delta must be in (0, 1), got ${delta}`);
  const logDelta = Math.log(delta);
  let best: EpsilonAtOrder = { epsilon: Infinity, order: NaN };
  orders.forEach((alpha, k) => {
    const eps = epsilonAtOrder(alpha, rdp[k], logDelta, conversion);
    if (eps < best.epsilon) best = { epsilon: eps, order: alpha };
  });
  return { epsilon: Math.max(0, best.epsilon), order: best.order };
}
