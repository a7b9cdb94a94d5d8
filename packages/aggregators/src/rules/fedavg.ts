import type {
  Accumulator,
  AggregatorState,
  ClientUpdate,
  JsonSchemaObject,
  LearnerInstructions,
  RoundContext,
  RoundPlan,
} from '../types.js';
import { checkStateKeys, checkStateLength, MeanAccumulator, stateVector, StreamingAggregator, streamingMean } from './common.js';

/** Args of `fedavg`. */
export interface FedAvgArgs {
  /** Weight each update by its sample count (McMahan et al. 2017); false = plain mean. */
  weighted?: boolean;
}

export const fedAvgSchema: JsonSchemaObject = {
  type: 'object',
  additionalProperties: false,
  properties: { weighted: { type: 'boolean', default: true } },
};

/**
 * FedAvg (McMahan et al. 2017, Algorithm 1): x <- sum_k (n_k / n) w_k. Also the aggregation of
 * FedProx and FedBN, which differ only in what the learner does or keeps.
 */
export class FedAvg extends StreamingAggregator {
  readonly weighted: boolean;

  constructor(
    args: FedAvgArgs = {},
    readonly type: string = 'fedavg',
    private readonly instructions: LearnerInstructions = {},
    /** FedBN: tensors flagged isNormalization keep the global's previous values. */
    private readonly keepNormalization = false,
  ) {
    super();
    this.weighted = args.weighted ?? true;
  }

  configureRound(_ctx: RoundContext): RoundPlan {
    return { instructions: { ...this.instructions } };
  }

  createAccumulator(ctx: RoundContext): Accumulator {
    const mean = new MeanAccumulator(this.type, ctx, this.weighted);
    return {
      add: (u: ClientUpdate) => void mean.add(u),
      finish: () => {
        const out = mean.finishMeanInto(new Float32Array(ctx.global.length));
        if (this.keepNormalization) keepGlobalNormalization(ctx, out);
        return { weights: out, metrics: mean.metrics() };
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

/** FedBN (Li et al. 2021): normalization tensors are not averaged; the server keeps its own copy. */
function keepGlobalNormalization(ctx: RoundContext, out: Float32Array): void {
  for (const spec of ctx.layout) {
    if (!spec.isNormalization) continue;
    if (spec.offset < 0 || spec.offset + spec.size > out.length) {
      throw new Error(
        `fedbn: layout tensor "${spec.name}" spans [${spec.offset}, ${spec.offset + spec.size}) outside the ${out.length}-element weight vector`,
      );
    }
    out.set(ctx.global.subarray(spec.offset, spec.offset + spec.size), spec.offset);
  }
}

/** Args of `fedprox`. */
export interface FedProxArgs extends FedAvgArgs {
  /** Proximal coefficient mu (Li et al. 2020, eq. 2: h_k = F_k(w) + mu/2 ||w - w^t||^2). */
  mu?: number;
}

export const fedProxSchema: JsonSchemaObject = {
  type: 'object',
  additionalProperties: false,
  properties: {
    mu: { type: 'number', minimum: 0, default: 0.01 },
    weighted: { type: 'boolean', default: true },
  },
};

/** FedProx (Li et al. 2020): FedAvg aggregation; the learner adds the proximal term. */
export function createFedProx(args: FedProxArgs = {}): FedAvg {
  return new FedAvg(args, 'fedprox', { proximal_mu: args.mu ?? 0.01 });
}

export const fedBnSchema: JsonSchemaObject = fedAvgSchema;

/** FedBN (Li et al. 2021): FedAvg except normalization tensors, which learners also keep local. */
export function createFedBn(args: FedAvgArgs = {}): FedAvg {
  return new FedAvg(args, 'fedbn', { keep_local: 'normalization' }, true);
}

/** Args of `fedavgm`. */
export interface FedAvgMArgs extends FedAvgArgs {
  server_lr?: number;
  momentum?: number;
}

export const fedAvgMSchema: JsonSchemaObject = {
  type: 'object',
  additionalProperties: false,
  properties: {
    server_lr: { type: 'number', exclusiveMinimum: 0, default: 1 },
    momentum: { type: 'number', minimum: 0, exclusiveMaximum: 1, default: 0.9 },
    weighted: { type: 'boolean', default: true },
  },
};

/**
 * FedAvgM (Hsu et al. 2019, "Measuring the effects of non-identical data distribution", Sec. 3):
 * Delta = x - avg(w_k); v <- beta v + Delta; x <- x - server_lr * v.
 * With momentum 0 and server_lr 1 it is FedAvg.
 */
export class FedAvgM extends StreamingAggregator {
  readonly type = 'fedavgm';
  readonly serverLr: number;
  readonly momentum: number;
  readonly weighted: boolean;
  private velocity: Float32Array | undefined;

  constructor(args: FedAvgMArgs = {}) {
    super();
    this.serverLr = args.server_lr ?? 1;
    this.momentum = args.momentum ?? 0.9;
    this.weighted = args.weighted ?? true;
  }

  configureRound(_ctx: RoundContext): RoundPlan {
    return { instructions: {} };
  }

  createAccumulator(ctx: RoundContext): Accumulator {
    return streamingMean(this.type, ctx, this.weighted, (m, metrics) => {
      checkStateLength(this.type, 'velocity', this.velocity, m.length);
      const v = this.velocity ?? new Float32Array(m.length);
      const x = ctx.global;
      const out = new Float32Array(m.length);
      const beta = this.momentum;
      const lr = this.serverLr;
      for (let i = 0; i < m.length; i++) {
        const vi = beta * v[i] + (x[i] - m[i]);
        v[i] = vi;
        out[i] = x[i] - lr * vi;
      }
      this.velocity = v;
      return { weights: out, metrics };
    });
  }

  getState(): AggregatorState {
    return this.velocity ? { velocity: new Float32Array(this.velocity) } : {};
  }

  setState(state: AggregatorState): void {
    checkStateKeys(this.type, state, ['velocity']);
    this.velocity = stateVector(this.type, state, 'velocity');
  }
}
