import type {
  AggregateResult,
  Aggregator,
  AggregatorState,
  ClientUpdate,
  JsonSchemaObject,
  RoundContext,
  RoundPlan,
} from '../types.js';
import { axpyInto, selectKth, squaredDistance } from '../vector.js';
import { checkStateKeys, checkUpdate, requireUpdates } from './common.js';

/**
 * Byzantine-robust rules. They must see every update at once (order statistics, pairwise
 * distances), so they have no accumulator; the trainer holds the n updates anyway.
 * NaN coordinates rank as +Infinity, so a NaN-sending client is treated as an extreme outlier.
 */
abstract class RobustAggregator implements Aggregator {
  abstract readonly type: string;

  configureRound(_ctx: RoundContext): RoundPlan {
    return { instructions: {} };
  }

  abstract aggregate(ctx: RoundContext, updates: readonly ClientUpdate[]): AggregateResult;

  protected check(ctx: RoundContext, updates: readonly ClientUpdate[]): Float32Array[] {
    requireUpdates(this.type, updates.length);
    for (const u of updates) checkUpdate(this.type, ctx, u);
    return updates.map((u) => u.weights);
  }

  getState(): AggregatorState {
    return {};
  }

  setState(state: AggregatorState): void {
    checkStateKeys(this.type, state, []);
  }
}

/** Coordinates transposed per block, so each update is read sequentially rather than n strided streams. */
const BLOCK = 256;

/**
 * Copies coordinates [i0, i0 + len) of every vector into `cols` column by column
 * (`cols[b * n + j] = vectors[j][i0 + b]`), NaN mapped to +Infinity so quickselect stays well-defined.
 */
function gatherBlock(vectors: readonly Float32Array[], i0: number, len: number, cols: Float64Array): void {
  const n = vectors.length;
  for (let j = 0; j < n; j++) {
    const v = vectors[j];
    for (let b = 0; b < len; b++) {
      const x = v[i0 + b];
      cols[b * n + j] = x === x ? x : Infinity;
    }
  }
}

export const medianSchema: JsonSchemaObject = { type: 'object', additionalProperties: false, properties: {} };

/** Coordinate-wise median (Yin et al. 2018, "Byzantine-robust distributed learning", Option I). */
export class CoordinateMedian extends RobustAggregator {
  readonly type = 'median';

  aggregate(ctx: RoundContext, updates: readonly ClientUpdate[]): AggregateResult {
    const vs = this.check(ctx, updates);
    const n = vs.length;
    const p = ctx.global.length;
    const out = new Float32Array(p);
    const cols = new Float64Array(n * BLOCK);
    const mid = n >> 1;
    const odd = (n & 1) === 1;
    for (let i0 = 0; i0 < p; i0 += BLOCK) {
      const len = Math.min(BLOCK, p - i0);
      gatherBlock(vs, i0, len, cols);
      for (let b = 0; b < len; b++) {
        const lo = b * n;
        const upper = selectKth(cols, lo, lo + n - 1, lo + mid);
        if (odd) {
          out[i0 + b] = upper;
        } else {
          // after selection everything left of the median slot is <= upper; the lower median is their maximum
          let lower = cols[lo];
          for (let j = lo + 1; j < lo + mid; j++) if (cols[j] > lower) lower = cols[j];
          out[i0 + b] = (lower + upper) / 2;
        }
      }
    }
    return { weights: out, metrics: { num_updates: n } };
  }
}

/** Args of `trimmed_mean`. */
export interface TrimmedMeanArgs {
  /** Fraction dropped from each end of every coordinate, in [0, 0.5). */
  beta?: number;
}

export const trimmedMeanSchema: JsonSchemaObject = {
  type: 'object',
  additionalProperties: false,
  properties: { beta: { type: 'number', minimum: 0, exclusiveMaximum: 0.5, default: 0.1 } },
};

/** Coordinate-wise beta-trimmed mean (Yin et al. 2018, Option II): drop floor(beta n) values at each end. */
export class TrimmedMean extends RobustAggregator {
  readonly type = 'trimmed_mean';
  readonly beta: number;

  constructor(args: TrimmedMeanArgs = {}) {
    super();
    this.beta = args.beta ?? 0.1;
    if (!(this.beta >= 0 && this.beta < 0.5)) {
      throw new Error(`trimmed_mean: beta must be in [0, 0.5), got ${this.beta}`);
    }
  }

  aggregate(ctx: RoundContext, updates: readonly ClientUpdate[]): AggregateResult {
    const vs = this.check(ctx, updates);
    const n = vs.length;
    const k = Math.floor(this.beta * n);
    if (this.beta > 0 && k === 0) {
      throw new Error(
        `trimmed_mean: beta=${this.beta} with ${n} updates trims floor(${this.beta}*${n}) = 0 values per side, so nothing would be filtered; needs at least ${Math.ceil(1 / this.beta)} updates, or a larger beta`,
      );
    }
    const p = ctx.global.length;
    const out = new Float32Array(p);
    const cols = new Float64Array(n * BLOCK);
    const keep = n - 2 * k;
    for (let i0 = 0; i0 < p; i0 += BLOCK) {
      const len = Math.min(BLOCK, p - i0);
      gatherBlock(vs, i0, len, cols);
      for (let b = 0; b < len; b++) {
        const lo = b * n;
        const hi = lo + n - 1;
        if (k > 0) {
          selectKth(cols, lo, hi, lo + k);
          selectKth(cols, lo + k, hi, hi - k);
        }
        let s = 0;
        for (let j = lo + k; j <= hi - k; j++) s += cols[j];
        out[i0 + b] = s / keep;
      }
    }
    return { weights: out, metrics: { num_updates: n, trimmed_per_side: k } };
  }
}

/** Args of `krum`. */
export interface KrumArgs {
  /** Number of Byzantine clients tolerated. */
  f?: number;
  /** Number of best-scored updates averaged (1 = Krum, more = Multi-Krum). */
  m?: number;
}

export const krumSchema: JsonSchemaObject = {
  type: 'object',
  additionalProperties: false,
  properties: {
    f: { type: 'integer', minimum: 0, default: 1 },
    m: { type: 'integer', minimum: 1, default: 1 },
  },
};

/**
 * Krum and Multi-Krum (Blanchard et al. 2017, Sec. 4): score(i) = sum of squared distances to its
 * n - f - 2 nearest neighbours; pick the lowest score (or average the m lowest). Requires n > 2f + 2.
 */
export class Krum extends RobustAggregator {
  readonly type = 'krum';
  readonly f: number;
  readonly m: number;

  constructor(args: KrumArgs = {}) {
    super();
    this.f = args.f ?? 1;
    this.m = args.m ?? 1;
    if (!Number.isInteger(this.f) || this.f < 0) throw new Error(`krum: f must be an integer >= 0, got ${this.f}`);
    if (!Number.isInteger(this.m) || this.m < 1) throw new Error(`krum: m must be an integer >= 1, got ${this.m}`);
  }

  aggregate(ctx: RoundContext, updates: readonly ClientUpdate[]): AggregateResult {
    const vs = this.check(ctx, updates);
    const n = vs.length;
    const { f, m } = this;
    requireUpdates(this.type, n, 2 * f + 3, `Krum with f=${f} needs n > 2f + 2`);
    if (m > n - f) {
      throw new Error(`krum: m=${m} exceeds n - f = ${n - f} with ${n} updates and f=${f}; lower m`);
    }
    const dist = new Float64Array(n * n);
    for (let i = 0; i < n; i++) {
      for (let j = i + 1; j < n; j++) {
        const d = squaredDistance(vs[i], vs[j]);
        dist[i * n + j] = d;
        dist[j * n + i] = d;
      }
    }
    const neighbours = n - f - 2;
    const scores = new Float64Array(n);
    const row = new Float64Array(n - 1);
    for (let i = 0; i < n; i++) {
      let r = 0;
      for (let j = 0; j < n; j++) if (j !== i) row[r++] = dist[i * n + j];
      row.sort();
      let s = 0;
      for (let j = 0; j < neighbours; j++) s += row[j];
      scores[i] = s;
    }
    const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => scores[a] - scores[b] || a - b);
    const chosen = order.slice(0, m);
    const p = ctx.global.length;
    let out: Float32Array;
    if (m === 1) {
      out = new Float32Array(vs[chosen[0]]);
    } else {
      const acc = new Float64Array(p);
      for (const idx of chosen) axpyInto(acc, vs[idx], 1);
      out = new Float32Array(p);
      for (let i = 0; i < p; i++) out[i] = acc[i] / m;
    }
    return { weights: out, metrics: { num_updates: n, krum_best_score: scores[chosen[0]], krum_selected: m } };
  }
}
