import type { Accumulator, AggregatorState, ClientUpdate, JsonSchemaObject, RoundContext, RoundPlan } from '../types.js';
import { axpyDiffInto, axpyInto } from '../vector.js';
import { checkStateKeys, checkStateLength, checkUpdate, requireUpdates, stateVector, StreamingAggregator } from './common.js';

/** Args of `scaffold`. */
export interface ScaffoldArgs {
  /** Global step size eta_g. */
  server_lr?: number;
}

export const scaffoldSchema: JsonSchemaObject = {
  type: 'object',
  additionalProperties: false,
  properties: { server_lr: { type: 'number', exclusiveMinimum: 0, default: 1 } },
};

/** Name of the extras vector learners return and of the plan tensor they receive. */
export const SCAFFOLD_CONTROL_DELTA = 'control_delta';
export const SCAFFOLD_SERVER_CONTROL = 'server_control';

/**
 * SCAFFOLD (Karimireddy et al. 2020, Algorithm 1, lines 16-17):
 * x <- x + eta_g * (1/|S|) sum (y_i - x);  c <- c + (|S|/N) * (1/|S|) sum Delta c_i.
 * Learners correct each gradient by (c - c_i) and return `extras.control_delta`.
 */
export class Scaffold extends StreamingAggregator {
  readonly type = 'scaffold';
  readonly serverLr: number;
  private control: Float32Array | undefined;

  constructor(args: ScaffoldArgs = {}) {
    super();
    this.serverLr = args.server_lr ?? 1;
  }

  private controlFor(length: number): Float32Array {
    checkStateLength(this.type, 'server_control', this.control, length);
    this.control ??= new Float32Array(length);
    return this.control;
  }

  configureRound(ctx: RoundContext): RoundPlan {
    return {
      instructions: { scaffold: true },
      tensors: { [SCAFFOLD_SERVER_CONTROL]: new Float32Array(this.controlFor(ctx.global.length)) },
    };
  }

  createAccumulator(ctx: RoundContext): Accumulator {
    const n = ctx.global.length;
    const dx = new Float64Array(n);
    const dc = new Float64Array(n);
    let count = 0;
    let samples = 0;
    let finished = false;
    return {
      add: (u: ClientUpdate) => {
        if (finished) throw new Error('scaffold: add() called after finish()');
        checkUpdate(this.type, ctx, u);
        const delta = u.extras?.[SCAFFOLD_CONTROL_DELTA];
        if (!(delta instanceof Float32Array)) {
          throw new Error(
            `scaffold: update from client "${u.clientId}" lacks extras.${SCAFFOLD_CONTROL_DELTA} (did the learner run with instructions.scaffold?)`,
          );
        }
        if (delta.length !== n) {
          throw new Error(
            `scaffold: extras.${SCAFFOLD_CONTROL_DELTA} from client "${u.clientId}" has length ${delta.length}, expected ${n}`,
          );
        }
        axpyDiffInto(dx, u.weights, ctx.global, 1);
        axpyInto(dc, delta, 1);
        count++;
        if (Number.isFinite(u.numSamples)) samples += u.numSamples;
      },
      finish: () => {
        if (finished) throw new Error('scaffold: finish() called twice');
        finished = true;
        requireUpdates(this.type, count);
        const total = ctx.totalClients;
        if (!Number.isFinite(total) || total < count) {
          throw new Error(
            `scaffold: ctx.totalClients is ${total} but ${count} updates arrived; N must count every registered learner`,
          );
        }
        const c = this.controlFor(n);
        const x = ctx.global;
        const out = new Float32Array(n);
        const stepX = this.serverLr / count;
        // (|S|/N) * (1/|S|) = 1/N
        const stepC = 1 / total;
        for (let i = 0; i < n; i++) {
          out[i] = x[i] + stepX * dx[i];
          c[i] += stepC * dc[i];
        }
        return { weights: out, metrics: { num_updates: count, total_samples: samples } };
      },
    };
  }

  getState(): AggregatorState {
    return this.control ? { server_control: new Float32Array(this.control) } : {};
  }

  setState(state: AggregatorState): void {
    checkStateKeys(this.type, state, ['server_control']);
    this.control = stateVector(this.type, state, 'server_control');
  }
}
