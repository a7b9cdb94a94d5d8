import { StreamingAggregator, streamingMean } from '@oiafed/aggregators';
import type {
  Accumulator,
  AggregatorState,
  JsonSchemaObject,
  RoundContext,
  RoundPlan,
} from '@oiafed/aggregators';

/** The config `type` this plugin registers. */
export const MY_ALGO_TYPE = 'my_algo';

/** Args of `my_algo`. */
export interface MyAlgoArgs {
  /** Server learning rate eta: x <- x + eta * (mean(w_k) - x). 1 is FedAvg. */
  server_lr?: number;
  /** Weight clients by sample count. */
  weighted?: boolean;
}

/** Checked by createAggregator before the factory runs; errors come back prefixed with `my_algo`. */
export const myAlgoSchema: JsonSchemaObject = {
  type: 'object',
  additionalProperties: false,
  properties: {
    server_lr: { type: 'number', exclusiveMinimum: 0, maximum: 10, default: 1 },
    weighted: { type: 'boolean', default: true },
  },
};

/**
 * FedAvg with a server learning rate (the "FedAvg with eta_g" baseline of Reddi et al. 2021):
 * x <- x + eta * (avg(w_k) - x). Streams, so memory stays O(model).
 */
export class MyAlgo extends StreamingAggregator {
  readonly type = MY_ALGO_TYPE;
  readonly serverLr: number;
  readonly weighted: boolean;

  constructor(args: MyAlgoArgs = {}) {
    super();
    this.serverLr = args.server_lr ?? 1;
    this.weighted = args.weighted ?? true;
  }

  configureRound(_ctx: RoundContext): RoundPlan {
    return { instructions: {} };
  }

  createAccumulator(ctx: RoundContext): Accumulator {
    return streamingMean(this.type, ctx, this.weighted, (avg, metrics) => {
      const x = ctx.global;
      const out = new Float32Array(x.length);
      for (let i = 0; i < out.length; i++) out[i] = x[i] + this.serverLr * (avg[i] - x[i]);
      return { weights: out, metrics };
    });
  }

  getState(): AggregatorState {
    return {};
  }

  setState(_state: AggregatorState): void {}
}
