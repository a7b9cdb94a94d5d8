import type { Accumulator, AggregatorState, ClientUpdate, JsonSchemaObject, RoundContext, RoundPlan } from '../types.js';
import { axpyDiffInto } from '../vector.js';
import { checkStateKeys, checkStateLength, checkUpdate, requireUpdates, stateVector, StreamingAggregator } from './common.js';

/** Args of `feddyn`. */
export interface FedDynArgs {
  /** alpha, the dynamic regularization coefficient (the paper tries 1e-3 to 1e-1). */
  alpha?: number;
}

export const fedDynSchema: JsonSchemaObject = {
  type: 'object',
  additionalProperties: false,
  properties: { alpha: { type: 'number', exclusiveMinimum: 0, default: 0.01 } },
};

/** The instruction key (value: alpha) that switches on the `feddyn` learner algorithm. */
export const FEDDYN_INSTRUCTION = 'feddyn';

/**
 * FedDyn, server side (Acar et al. 2021, "Federated Learning Based on Dynamic Regularization",
 * ICLR, Algorithm 1):
 *   h^t = h^{t-1} - alpha (1/m) sum_{k in P_t} (theta_k^t - theta^{t-1})
 *   theta^t = (1/|P_t|) sum_{k in P_t} theta_k^t - (1/alpha) h^t
 * with m every registered learner (ctx.totalClients). Learners minimise
 * L_k(theta) - <grad L_k(theta_k^{t-1}), theta> + alpha/2 ||theta - theta^{t-1}||^2 (the `feddyn`
 * learner algorithm of @oiafed/core, switched on by `instructions.feddyn = alpha`). Tensors that
 * are not trainable (batch-norm statistics) have no gradient and no h: they are plain means.
 */
export class FedDyn extends StreamingAggregator {
  readonly type = 'feddyn';
  readonly alpha: number;
  /** h, the server state, zero at the start. */
  private h: Float32Array | undefined;

  constructor(args: FedDynArgs = {}) {
    super();
    this.alpha = args.alpha ?? 0.01;
  }

  configureRound(_ctx: RoundContext): RoundPlan {
    return { instructions: { [FEDDYN_INSTRUCTION]: this.alpha } };
  }

  createAccumulator(ctx: RoundContext): Accumulator {
    const n = ctx.global.length;
    const drift = new Float64Array(n);
    let count = 0;
    let samples = 0;
    let finished = false;
    return {
      add: (u: ClientUpdate) => {
        if (finished) throw new Error('feddyn: add() called after finish()');
        checkUpdate(this.type, ctx, u);
        axpyDiffInto(drift, u.weights, ctx.global, 1);
        count++;
        if (Number.isFinite(u.numSamples)) samples += u.numSamples;
      },
      finish: () => {
        if (finished) throw new Error('feddyn: finish() called twice');
        finished = true;
        requireUpdates(this.type, count);
        const m = ctx.totalClients;
        if (!Number.isFinite(m) || m < count) {
          throw new Error(`feddyn: ctx.totalClients is ${m} but ${count} updates arrived; m must count every registered learner`);
        }
        return { weights: this.step(ctx, drift, count, m), metrics: { num_updates: count, total_samples: samples } };
      },
    };
  }

  /** Updates h and returns theta^t from sum_k (theta_k - theta^{t-1}) over `count` updates. */
  private step(ctx: RoundContext, drift: Float64Array, count: number, m: number): Float32Array {
    const h = this.stateFor(ctx.global.length);
    const out = new Float32Array(ctx.global.length);
    for (const spec of ctx.layout) {
      for (let i = spec.offset; i < spec.offset + spec.size; i++) {
        const mean = ctx.global[i]! + drift[i]! / count;
        if (!spec.trainable) {
          out[i] = mean;
          continue;
        }
        h[i] = h[i]! - (this.alpha / m) * drift[i]!;
        out[i] = mean - h[i]! / this.alpha;
      }
    }
    return out;
  }

  private stateFor(length: number): Float32Array {
    checkStateLength(this.type, 'h', this.h, length);
    this.h ??= new Float32Array(length);
    return this.h;
  }

  getState(): AggregatorState {
    return this.h ? { h: new Float32Array(this.h) } : {};
  }

  setState(state: AggregatorState): void {
    checkStateKeys(this.type, state, ['h']);
    this.h = stateVector(this.type, state, 'h');
  }
}
