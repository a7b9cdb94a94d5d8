import { computeRdp, DEFAULT_ORDERS, epsilonFromRdp } from './rdp.js';
import type { RdpConversion } from './rdp.js';

/** One entry of the accountant's history: `steps` steps at sampling rate `q` and noise multiplier `sigma`. */
export interface AccountantEntry {
  q: number;
  sigma: number;
  steps: number;
}

/** What a checkpoint stores to resume the accountant exactly. */
export interface AccountantState {
  history: AccountantEntry[];
}

/**
 * Composes subsampled Gaussian steps and reports the (epsilon, delta) spent so far. RDP adds up over steps,
 * so the accountant keeps one RDP vector; steps with the same (q, sigma) as the last one merge in the history.
 */
export class PrivacyAccountant {
  readonly orders: readonly number[];
  private readonly conversion: RdpConversion;
  private rdp: number[];
  private history: AccountantEntry[] = [];
  private readonly perStep = new Map<string, number[]>();

  constructor(options: { orders?: readonly number[]; conversion?: RdpConversion } = {}) {
    this.orders = options.orders ?? DEFAULT_ORDERS;
    this.conversion = options.conversion ?? 'improved';
    this.rdp = this.orders.map(() => 0);
  }

  /** Records `n` steps of the mechanism with sampling rate `q` and noise multiplier `sigma`. */
  step(q: number, sigma: number, n = 1): this {
    const one = this.rdpPerStep(q, sigma);
    this.rdp = this.rdp.map((r, k) => r + n * one[k]);
    const last = this.history.at(-1);
    if (last && last.q === q && last.sigma === sigma) last.steps += n;
    else this.history.push({ q, sigma, steps: n });
    return this;
  }

  /** Epsilon spent so far at this delta. */
  epsilon(delta: number): number {
    return epsilonFromRdp(this.orders, this.rdp, delta, this.conversion).epsilon;
  }

  /** Epsilon after `n` more steps at (q, sigma), without recording them: for refusing a round that would overspend. */
  epsilonAfter(q: number, sigma: number, n: number, delta: number): number {
    const one = this.rdpPerStep(q, sigma);
    return epsilonFromRdp(this.orders, this.rdp.map((r, k) => r + n * one[k]), delta, this.conversion).epsilon;
  }

  getState(): AccountantState {
    return { history: this.history.map((e) => ({ ...e })) };
  }

  setState(state: AccountantState): void {
    this.rdp = this.orders.map(() => 0);
    this.history = [];
    for (const e of state.history) this.step(e.q, e.sigma, e.steps);
  }

  private rdpPerStep(q: number, sigma: number): number[] {
    const key = `${q}:${sigma}`;
    let one = this.perStep.get(key);
    if (!one) {
      one = computeRdp(q, sigma, 1, this.orders);
      this.perStep.set(key, one);
    }
    return one;
  }
}

/** Epsilon of `steps` steps at (q, sigma) for this delta (improved conversion, default orders). */
export function epsilonFor(q: number, sigma: number, steps: number, delta: number, orders: readonly number[] = DEFAULT_ORDERS): number {
  return epsilonFromRdp(orders, computeRdp(q, sigma, steps, orders), delta).epsilon;
}

/**
 * The smallest noise multiplier (to within `tolerance`) whose epsilon after `steps` steps at sampling rate `q`
 * stays at or under `targetEpsilon` for this delta. Bisection: epsilon falls as sigma grows. The answer is the
 * upper end of the final bracket, so it never overspends.
 */
export function noiseMultiplierFor(
  targetEpsilon: number,
  q: number,
  steps: number,
  delta: number,
  options: { tolerance?: number; orders?: readonly number[] } = {},
): number {
  if (!(targetEpsilon > 0)) throw new RangeError(`target epsilon must be > 0, got ${targetEpsilon}`);
  const tolerance = options.tolerance ?? 1e-3;
  const eps = (sigma: number) => epsilonFor(q, sigma, steps, delta, options.orders);
  let lo = 0;
  let hi = 1;
  while (eps(hi) > targetEpsilon) {
    lo = hi;
    hi *= 2;
    if (hi > 1e6) throw new RangeError(`no noise multiplier up to 1e6 reaches epsilon ${targetEpsilon} (q=${q}, steps=${steps}, delta=${delta})`);
  }
  while (hi - lo > tolerance) {
    const mid = (lo + hi) / 2;
    if (eps(mid) > targetEpsilon) lo = mid;
    else hi = mid;
  }
  return hi;
}
