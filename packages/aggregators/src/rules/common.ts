import type {
  Accumulator,
  AggregateResult,
  Aggregator,
  AggregatorState,
  ClientUpdate,
  RoundContext,
  RoundPlan,
} from '../types.js';
import { createSumBuffer, type SumBuffer } from '../vector.js';

/** Throws unless `update.weights` matches the global vector's length. */
export function checkUpdate(type: string, ctx: RoundContext, update: ClientUpdate): void {
  if (!(update.weights instanceof Float32Array)) {
    throw new Error(`${type}: update from client "${update.clientId}" has no Float32Array weights`);
  }
  if (update.weights.length !== ctx.global.length) {
    throw new Error(
      `${type}: update from client "${update.clientId}" has ${update.weights.length} weights, expected ${ctx.global.length} (the global model's length)`,
    );
  }
}

/** Sample-count weight of an update (1 when unweighted); rejects negative or non-finite counts. */
export function updateWeight(type: string, update: ClientUpdate, weighted: boolean): number {
  if (!weighted) return 1;
  const n = update.numSamples;
  if (typeof n !== 'number' || !Number.isFinite(n) || n < 0) {
    throw new Error(
      `${type}: update from client "${update.clientId}" has numSamples ${String(n)}, expected a finite number >= 0`,
    );
  }
  return n;
}

/** Throws a clear error for an empty round. */
export function requireUpdates(type: string, count: number, minimum = 1, why = ''): void {
  if (count < minimum) {
    throw new Error(
      `${type}: got ${count} update${count === 1 ? '' : 's'}, needs at least ${minimum}${why ? ` (${why})` : ''}`,
    );
  }
}

/** A float32 state vector from a checkpoint, checked for type and (optionally) length. */
export function stateVector(type: string, state: AggregatorState, key: string): Float32Array | undefined {
  const v = state[key];
  if (v === undefined) return undefined;
  if (!(v instanceof Float32Array)) {
    throw new Error(`${type}: state.${key} must be a Float32Array, got ${typeof v}`);
  }
  return new Float32Array(v);
}

/** A numeric state entry from a checkpoint. */
export function stateNumber(type: string, state: AggregatorState, key: string, fallback: number): number {
  const v = state[key];
  if (v === undefined) return fallback;
  if (typeof v !== 'number' || !Number.isFinite(v)) {
    throw new Error(`${type}: state.${key} must be a finite number, got ${String(v)}`);
  }
  return v;
}

/** Rejects state keys a rule does not know, so a checkpoint from another rule is not silently ignored. */
export function checkStateKeys(type: string, state: AggregatorState, allowed: readonly string[]): void {
  if (state === null || typeof state !== 'object') throw new Error(`${type}: state must be an object`);
  for (const key of Object.keys(state)) {
    if (!allowed.includes(key)) {
      throw new Error(
        `${type}: unknown state key "${key}" (expected ${allowed.length ? allowed.join(', ') : 'no keys'})`,
      );
    }
  }
}

/** Ensures a restored state vector fits the current model. */
export function checkStateLength(type: string, key: string, v: Float32Array | undefined, length: number): void {
  if (v && v.length !== length) {
    throw new Error(`${type}: state.${key} has length ${v.length} but the global model has ${length} weights`);
  }
}

/**
 * Streams a (weighted) mean of update weights into one float64 buffer. `finish` scales the
 * buffer in place and returns it, so callers derive the result without another model-size array.
 */
export class MeanAccumulator {
  readonly sum: Float64Array;
  private readonly buffer: SumBuffer;
  count = 0;
  totalWeight = 0;
  totalSamples = 0;
  private finished = false;

  constructor(
    private readonly type: string,
    private readonly ctx: RoundContext,
    private readonly weighted: boolean,
  ) {
    // wasm SIMD for large models (bit-identical to the JS loop), see createSumBuffer.
    this.buffer = createSumBuffer(ctx.global.length);
    this.sum = this.buffer.sum;
  }

  add(update: ClientUpdate): number {
    if (this.finished) throw new Error(`${this.type}: add() called after finish()`);
    checkUpdate(this.type, this.ctx, update);
    const w = updateWeight(this.type, update, this.weighted);
    if (w > 0) this.buffer.axpy(update.weights, w);
    this.count++;
    this.totalWeight += w;
    if (Number.isFinite(update.numSamples)) this.totalSamples += update.numSamples;
    return w;
  }

  /** Turns the running sum into the mean in place. */
  finishMean(): Float64Array {
    const inv = this.closeMean();
    const s = this.sum;
    for (let i = 0; i < s.length; i++) s[i] *= inv;
    return s;
  }

  /** The mean narrowed to float32 in one pass (same values as finishMean() then a copy). */
  finishMeanInto(out: Float32Array): Float32Array {
    const inv = this.closeMean();
    const s = this.sum;
    for (let i = 0; i < s.length; i++) out[i] = s[i] * inv;
    return out;
  }

  /** Marks the accumulator finished and returns 1 / total weight, or throws for an unusable round. */
  private closeMean(): number {
    if (this.finished) throw new Error(`${this.type}: finish() called twice`);
    this.finished = true;
    requireUpdates(this.type, this.count);
    if (!(this.totalWeight > 0)) {
      throw new Error(
        `${this.type}: the ${this.count} updates report 0 samples in total; cannot form a sample-weighted mean (set weighted: false or report numSamples)`,
      );
    }
    return 1 / this.totalWeight;
  }

  metrics(): Record<string, number> {
    return { num_updates: this.count, total_samples: this.totalSamples };
  }
}

/**
 * Base for rules that stream: `aggregate` is defined through the accumulator, so the batch and
 * streaming paths cannot drift apart.
 */
export abstract class StreamingAggregator implements Aggregator {
  abstract readonly type: string;
  abstract configureRound(ctx: RoundContext): RoundPlan;
  abstract createAccumulator(ctx: RoundContext): Accumulator;
  abstract getState(): AggregatorState;
  abstract setState(state: AggregatorState): void;

  aggregate(ctx: RoundContext, updates: readonly ClientUpdate[]): AggregateResult {
    requireUpdates(this.type, updates.length);
    const acc = this.createAccumulator(ctx);
    for (const u of updates) acc.add(u);
    return acc.finish();
  }
}

/**
 * The accumulator of a server-optimiser rule (FedAvgM, FedAdam, a plugin's own): the (weighted)
 * mean of the updates streams in, and `step` turns it into the new global weights once the round's
 * updates have all arrived.
 */
export function streamingMean(
  type: string,
  ctx: RoundContext,
  weighted: boolean,
  step: (mean: Float64Array, metrics: Record<string, number>) => AggregateResult,
): Accumulator {
  const mean = new MeanAccumulator(type, ctx, weighted);
  return {
    add: (update: ClientUpdate) => void mean.add(update),
    finish: () => step(mean.finishMean(), mean.metrics()),
  };
}
