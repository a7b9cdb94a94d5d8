import type { Accumulator, AggregatorState, ClientUpdate, JsonSchemaObject, RoundContext, RoundPlan } from '../types.js';
import { fednovaNormalizer } from '../learner-helpers.js';
import { axpyDiffInto } from '../vector.js';
import { checkStateKeys, checkUpdate, requireUpdates, StreamingAggregator, updateWeight } from './common.js';

/** Args of `fednova`. */
export interface FedNovaArgs {
  /** Sample-count weights p_i (the paper's choice); false = 1/|S|. */
  weighted?: boolean;
}

export const fedNovaSchema: JsonSchemaObject = {
  type: 'object',
  additionalProperties: false,
  properties: { weighted: { type: 'boolean', default: true } },
};

/**
 * FedNova (Wang et al. 2020, eq. 6-7): d_i = (x - y_i) / a_i, tau_eff = sum p_i a_i,
 * x <- x - tau_eff * sum p_i d_i. a_i comes from `localSteps` and `meta.momentum`
 * (see {@link fednovaNormalizer}); clients with a_i = 0 made no progress and add nothing.
 */
export class FedNova extends StreamingAggregator {
  readonly type = 'fednova';
  readonly weighted: boolean;

  constructor(args: FedNovaArgs = {}) {
    super();
    this.weighted = args.weighted ?? true;
  }

  configureRound(_ctx: RoundContext): RoundPlan {
    return { instructions: { report_steps: true } };
  }

  createAccumulator(ctx: RoundContext): Accumulator {
    const n = ctx.global.length;
    // sum_i w_i (x - y_i) / a_i, normalised by sum w_i at the end
    const acc = new Float64Array(n);
    let weightSum = 0;
    let weightedA = 0;
    let count = 0;
    let samples = 0;
    let finished = false;
    return {
      add: (u: ClientUpdate) => {
        if (finished) throw new Error('fednova: add() called after finish()');
        checkUpdate(this.type, ctx, u);
        const w = updateWeight(this.type, u, this.weighted);
        const steps = u.localSteps;
        if (typeof steps !== 'number' || !Number.isFinite(steps) || steps < 0) {
          throw new Error(
            `fednova: update from client "${u.clientId}" has localSteps ${String(steps)}, expected a finite number >= 0 (the learner reports it when instructions.report_steps is set)`,
          );
        }
        const rawMomentum = u.meta?.momentum ?? 0;
        if (typeof rawMomentum !== 'number') {
          throw new Error(`fednova: meta.momentum from client "${u.clientId}" must be a number, got ${typeof rawMomentum}`);
        }
        const a = fednovaNormalizer(steps, rawMomentum);
        // w * a feeds tau_eff, which scales every client's step: an overflow here (1e9 samples x
        // 1e308 steps) turned the whole model into Infinity * 0 = NaN. Refuse the one update instead.
        if (!Number.isFinite(w * a) || !Number.isFinite(weightedA + w * a)) {
          throw new Error(
            `fednova: update from client "${u.clientId}" has numSamples x a_i = ${w} x ${a}, which overflows tau_eff; rejected`,
          );
        }
        if (a > 0 && w > 0) axpyDiffInto(acc, ctx.global, u.weights, w / a);
        weightSum += w;
        weightedA += w * a;
        count++;
        if (Number.isFinite(u.numSamples)) samples += u.numSamples;
      },
      finish: () => {
        if (finished) throw new Error('fednova: finish() called twice');
        finished = true;
        requireUpdates(this.type, count);
        if (!(weightSum > 0)) {
          throw new Error(`fednova: the ${count} updates report 0 samples in total; cannot weight them (set weighted: false)`);
        }
        const tauEff = weightedA / weightSum;
        const scale = tauEff / weightSum;
        const x = ctx.global;
        const out = new Float32Array(n);
        for (let i = 0; i < n; i++) out[i] = x[i] - scale * acc[i];
        return { weights: out, metrics: { num_updates: count, total_samples: samples, tau_eff: tauEff } };
      },
    };
  }

  getState(): AggregatorState {
    return {};
  }

  setState(state: AggregatorState): void {
    checkStateKeys(this.type, state, []);
  }
}
