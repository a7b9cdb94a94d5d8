import type { Accumulator, AggregatorState, JsonSchemaObject, RoundContext, RoundPlan } from '../types.js';
import {
  checkStateKeys,
  checkStateLength,
  stateNumber,
  stateVector,
  StreamingAggregator,
  streamingMean,
} from './common.js';

/** Which second-moment rule of Reddi et al. 2021, Algorithm 2 to use. */
export type FedOptVariant = 'fedadam' | 'fedyogi' | 'fedadagrad';

/** Args of `fedadam`, `fedyogi`, `fedadagrad`. */
export interface FedOptArgs {
  /** Server learning rate eta (`lr` is accepted as an alias, as configs often write it). */
  server_lr?: number;
  lr?: number;
  beta1?: number;
  beta2?: number;
  /** Adaptivity tau: eps in the denominator and initial v = tau^2. */
  tau?: number;
  /** Sample-weighted mean of client models (Flower's choice); false = the paper's plain 1/|S| mean. */
  weighted?: boolean;
}

/** Default server learning rates (those of Flower's FedAdam / FedYogi / FedAdagrad). */
const DEFAULT_LR: Record<FedOptVariant, number> = { fedadam: 0.1, fedyogi: 0.01, fedadagrad: 0.1 };

export function fedOptSchema(variant: FedOptVariant): JsonSchemaObject {
  return {
    type: 'object',
    additionalProperties: false,
    properties: {
      server_lr: { type: 'number', exclusiveMinimum: 0, description: `server learning rate (default ${DEFAULT_LR[variant]})` },
      lr: { type: 'number', exclusiveMinimum: 0, description: 'alias of server_lr' },
      beta1: { type: 'number', minimum: 0, exclusiveMaximum: 1, default: 0.9 },
      beta2: { type: 'number', minimum: 0, exclusiveMaximum: 1, default: 0.99 },
      tau: { type: 'number', exclusiveMinimum: 0, default: 1e-3 },
      weighted: { type: 'boolean', default: true },
    },
  };
}

/**
 * Adaptive server optimizers (Reddi et al. 2021, "Adaptive Federated Optimization", Algorithm 2):
 * Delta = avg(w_k) - x; m = b1 m + (1-b1) Delta;
 * v = v + Delta^2 (Adagrad) | v - (1-b2) Delta^2 sign(v - Delta^2) (Yogi) | b2 v + (1-b2) Delta^2 (Adam);
 * x = x + eta m / (sqrt(v) + tau). No bias correction, v starts at tau^2, as in the paper.
 */
export class FedOpt extends StreamingAggregator {
  readonly serverLr: number;
  readonly beta1: number;
  readonly beta2: number;
  readonly tau: number;
  readonly weighted: boolean;
  private m: Float32Array | undefined;
  private v: Float32Array | undefined;
  private step = 0;

  constructor(
    readonly type: FedOptVariant,
    args: FedOptArgs = {},
  ) {
    super();
    if (args.lr !== undefined && args.server_lr !== undefined && args.lr !== args.server_lr) {
      throw new Error(`${type}: args.lr (${args.lr}) and args.server_lr (${args.server_lr}) disagree; give one`);
    }
    this.serverLr = args.server_lr ?? args.lr ?? DEFAULT_LR[type];
    this.beta1 = args.beta1 ?? 0.9;
    this.beta2 = args.beta2 ?? 0.99;
    this.tau = args.tau ?? 1e-3;
    this.weighted = args.weighted ?? true;
  }

  configureRound(_ctx: RoundContext): RoundPlan {
    return { instructions: {} };
  }

  createAccumulator(ctx: RoundContext): Accumulator {
    return streamingMean(this.type, ctx, this.weighted, (avg, metrics) => {
      const n = avg.length;
      checkStateLength(this.type, 'm', this.m, n);
      checkStateLength(this.type, 'v', this.v, n);
      const m = this.m ?? new Float32Array(n);
      const v = this.v ?? new Float32Array(n).fill(this.tau * this.tau);
      const x = ctx.global;
      const out = new Float32Array(n);
      const { beta1: b1, beta2: b2, tau, serverLr: lr } = this;
      const variant = this.type;
      for (let i = 0; i < n; i++) {
        const d = avg[i] - x[i];
        const mi = b1 * m[i] + (1 - b1) * d;
        const d2 = d * d;
        let vi = v[i];
        if (variant === 'fedadam') vi = b2 * vi + (1 - b2) * d2;
        else if (variant === 'fedyogi') vi = vi - (1 - b2) * d2 * Math.sign(vi - d2);
        else vi = vi + d2;
        m[i] = mi;
        v[i] = vi;
        // Reads back the float32-rounded moments so a restored checkpoint reproduces the step exactly.
        out[i] = x[i] + (lr * m[i]) / (Math.sqrt(v[i]) + tau);
      }
      this.m = m;
      this.v = v;
      this.step++;
      return { weights: out, metrics: { ...metrics, server_step: this.step } };
    });
  }

  getState(): AggregatorState {
    const s: AggregatorState = { step: this.step };
    if (this.m) s.m = new Float32Array(this.m);
    if (this.v) s.v = new Float32Array(this.v);
    return s;
  }

  setState(state: AggregatorState): void {
    checkStateKeys(this.type, state, ['m', 'v', 'step']);
    this.m = stateVector(this.type, state, 'm');
    this.v = stateVector(this.type, state, 'v');
    this.step = stateNumber(this.type, state, 'step', 0);
  }
}
