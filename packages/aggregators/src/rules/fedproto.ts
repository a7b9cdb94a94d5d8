import type { Accumulator, AggregatorState, ClientUpdate, JsonSchemaObject, RoundContext, RoundPlan } from '../types.js';
import { checkStateKeys, checkUpdate, requireUpdates, stateNumber, stateVector, StreamingAggregator } from './common.js';

/** Instruction key (value: lambda), learner extra and plan tensor of FedProto. */
export const FEDPROTO_INSTRUCTION = 'fedproto';
export const FEDPROTO_LOCAL = 'class_prototypes';
export const FEDPROTO_GLOBAL = 'global_prototypes';
/** The same for FedDistill, whose per-class vectors are mean logits. */
export const FEDDISTILL_INSTRUCTION = 'feddistill';
export const FEDDISTILL_LOCAL = 'class_logits';
export const FEDDISTILL_GLOBAL = 'global_logits';

/** Where a per-class averaging rule finds its vectors: instruction key, learner extra, plan tensor. */
export interface ClassVectorKeys {
  instruction: string;
  local: string;
  global: string;
}

export const FEDPROTO_KEYS: ClassVectorKeys = { instruction: FEDPROTO_INSTRUCTION, local: FEDPROTO_LOCAL, global: FEDPROTO_GLOBAL };
export const FEDDISTILL_KEYS: ClassVectorKeys = { instruction: FEDDISTILL_INSTRUCTION, local: FEDDISTILL_LOCAL, global: FEDDISTILL_GLOBAL };

/** Args of `fedproto`. */
export interface FedProtoArgs {
  /** lambda of the learners' prototype regularizer. */
  lambda?: number;
}

export const fedProtoSchema: JsonSchemaObject = {
  type: 'object',
  additionalProperties: false,
  properties: { lambda: { type: 'number', exclusiveMinimum: 0, default: 1, description: "Weight of the learners' prototype loss." } },
};

/**
 * Per-class vectors and per-class counts in one vector of the model's length (extras and plan
 * tensors are model-sized): `[classes * dim]` prototypes, then `[classes]` counts, then zeros.
 */
export function packPrototypes(prototypes: Float32Array, counts: Float32Array, length: number): Float32Array {
  if (prototypes.length + counts.length > length) {
    throw new Error(`fedproto: ${counts.length} prototypes of ${prototypes.length / counts.length} values do not fit a model of ${length} weights`);
  }
  const packed = new Float32Array(length);
  packed.set(prototypes, 0);
  packed.set(counts, prototypes.length);
  return packed;
}

/** The inverse of {@link packPrototypes}. */
export function unpackPrototypes(packed: Float32Array, classes: number, dim: number): { prototypes: Float32Array; counts: Float32Array } {
  return { prototypes: packed.slice(0, classes * dim), counts: packed.slice(classes * dim, classes * dim + classes) };
}

/**
 * FedProto, server side (Tan et al. 2022, "FedProto: Federated Prototype Learning across
 * Heterogeneous Clients", AAAI, eq. 6 as the authors' code computes it): the global prototype of
 * class j is the mean of the local prototypes C_i^(j) over the learners i in N_j that have class
 * j (each learner counts once; the paper's printed eq. 6 also weighs by |D_ij| / N_j and divides
 * by |N_j|, which would shrink prototypes, and its code does not). No model weights are shared:
 * the global weights stay as they are (learners keep their whole model), so FedProto's "global
 * accuracy" is that of the initial model; its personalized accuracy is the one to read. A class
 * no learner of the round has keeps its previous global prototype.
 *
 * With `type` feddistill and FEDDISTILL_KEYS the same rule averages per-class mean logits:
 * federated distillation's server (Jeong et al. 2018, "Communication-Efficient On-Device Machine
 * Learning: Federated Distillation and Augmentation under Non-IID Private Data", as PFLlib's
 * FedDistill: each label's global logit vector is the plain mean over the clients that have it).
 */
export class FedProto extends StreamingAggregator {
  readonly lambda: number;
  private global: { prototypes: Float32Array; counts: Float32Array; classes: number; dim: number } | undefined;

  constructor(
    args: FedProtoArgs = {},
    readonly type: string = 'fedproto',
    private readonly keys: ClassVectorKeys = FEDPROTO_KEYS,
  ) {
    super();
    this.lambda = args.lambda ?? 1;
  }

  configureRound(ctx: RoundContext): RoundPlan {
    const plan: RoundPlan = { instructions: { [this.keys.instruction]: this.lambda } };
    if (this.global) plan.tensors = { [this.keys.global]: packPrototypes(this.global.prototypes, this.global.counts, ctx.global.length) };
    return plan;
  }

  /** Streams the learners' per-class vectors into per-class sums: memory O(classes * dim), not O(updates * model). */
  createAccumulator(ctx: RoundContext): Accumulator {
    let shape: { classes: number; dim: number } | undefined;
    let sums = new Float64Array(0);
    let holders = new Float64Array(0);
    let count = 0;
    let finished = false;
    return {
      add: (update: ClientUpdate) => {
        if (finished) throw new Error(`${this.type}: add() called after finish()`);
        checkUpdate(this.type, ctx, update);
        const packed = update.extras?.[this.keys.local];
        if (!(packed instanceof Float32Array) || packed.length !== ctx.global.length) {
          throw new Error(`${this.type}: update from "${update.clientId}" lacks extras.${this.keys.local} of the model's length`);
        }
        const own = shapeOf(this.type, update, shape);
        if (!shape) [shape, sums, holders] = [own, new Float64Array(own.classes * own.dim), new Float64Array(own.classes)];
        const local = unpackPrototypes(packed, own.classes, own.dim);
        for (let j = 0; j < own.classes; j++) {
          if (!(local.counts[j]! > 0)) continue;
          holders[j]! += 1;
          for (let k = 0; k < own.dim; k++) sums[j * own.dim + k]! += local.prototypes[j * own.dim + k]!;
        }
        count++;
      },
      finish: () => {
        if (finished) throw new Error(`${this.type}: finish() called twice`);
        finished = true;
        requireUpdates(this.type, count);
        this.global = this.nextGlobal(shape!, sums, holders);
        const known = this.global.counts.reduce((n, c) => n + (c > 0 ? 1 : 0), 0);
        return { weights: ctx.global.slice(), metrics: { num_updates: count, prototype_classes: known } };
      },
    };
  }

  /** The round's means where some learner had the class, the previous global vectors elsewhere. */
  private nextGlobal(shape: { classes: number; dim: number }, sums: Float64Array, holders: Float64Array) {
    const { classes, dim } = shape;
    const previous = this.global?.classes === classes && this.global.dim === dim ? this.global : undefined;
    const prototypes = previous ? previous.prototypes.slice() : new Float32Array(classes * dim);
    const counts = previous ? previous.counts.slice() : new Float32Array(classes);
    for (let j = 0; j < classes; j++) {
      if (holders[j] === 0) continue;
      counts[j] = holders[j]!;
      for (let k = 0; k < dim; k++) prototypes[j * dim + k] = sums[j * dim + k]! / holders[j]!;
    }
    return { prototypes, counts, classes, dim };
  }

  getState(): AggregatorState {
    if (!this.global) return {};
    const { prototypes, counts, classes, dim } = this.global;
    return { prototypes: prototypes.slice(), counts: counts.slice(), classes, dim };
  }

  setState(state: AggregatorState): void {
    checkStateKeys(this.type, state, ['prototypes', 'counts', 'classes', 'dim']);
    const prototypes = stateVector(this.type, state, 'prototypes');
    const counts = stateVector(this.type, state, 'counts');
    const classes = stateNumber(this.type, state, 'classes', 0);
    const dim = stateNumber(this.type, state, 'dim', 0);
    this.global = prototypes && counts ? { prototypes, counts, classes, dim } : undefined;
  }
}

/** Classes and vector size an update reports (meta.proto_classes, meta.proto_dim), equal to `expected` when given. */
function shapeOf(type: string, update: ClientUpdate, expected?: { classes: number; dim: number }): { classes: number; dim: number } {
  const classes = update.meta?.proto_classes;
  const dim = update.meta?.proto_dim;
  if (typeof classes !== 'number' || typeof dim !== 'number' || !Number.isInteger(classes) || !Number.isInteger(dim) || classes < 1 || dim < 1) {
    throw new Error(`${type}: update from "${update.clientId}" lacks meta.proto_classes / meta.proto_dim (is its learner ${type}?)`);
  }
  if (expected && (expected.classes !== classes || expected.dim !== dim)) {
    throw new Error(`${type}: learners disagree on the per-class vectors' shape (${update.clientId} sends ${classes} x ${dim}, expected ${expected.classes} x ${expected.dim})`);
  }
  return { classes, dim };
}
