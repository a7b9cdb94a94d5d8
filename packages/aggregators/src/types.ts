/**
 * Domain types shared by every aggregation rule. Everything here is plain data on
 * Float32Array so the trainer, the learner and third-party plugins can use it without tfjs.
 */
import type { ArgsSchema } from '@oiafed/component';

/** One tensor inside the flat weight vector; entries of a {@link WeightLayout} are in vector order. */
export interface TensorSpec {
  /** Stable tensor name (e.g. `conv2d_1/kernel`). */
  name: string;
  /** Tensor shape; the product equals {@link TensorSpec.size}. */
  shape: number[];
  /** Index of the tensor's first element in the flat vector. */
  offset: number;
  /** Number of elements. */
  size: number;
  /** Whether the optimizer updates it (false for e.g. batch-norm moving statistics). */
  trainable: boolean;
  /** Whether it belongs to a normalization layer (FedBN keeps these local). */
  isNormalization: boolean;
}

/** Fixed-order description of the flat weight vector. */
export type WeightLayout = readonly TensorSpec[];

/** What one learner sends back after local training. */
export interface ClientUpdate {
  clientId: string;
  /** The learner's full new weights, same layout and length as the global vector. */
  weights: Float32Array;
  /** Number of local training samples (FedAvg weight). */
  numSamples: number;
  metrics?: Record<string, number>;
  /** SGD steps taken locally (FedNova). */
  localSteps?: number;
  /** Extra vectors, e.g. SCAFFOLD's `control_delta`. */
  extras?: Record<string, Float32Array>;
  /** Scalar hints such as `momentum` or `lr` (FedNova's a_i). */
  meta?: Record<string, number | string | boolean>;
}

/** What the trainer knows about the round being configured or aggregated. */
export interface RoundContext {
  round: number;
  /** Global weights at the start of the round (read-only for rules). */
  global: Float32Array;
  layout: WeightLayout;
  /** Number of registered learners (N in SCAFFOLD). */
  totalClients: number;
  selectedClients: string[];
}

/**
 * Learner-side instructions: an open, JSON-serialisable map. Each key is owned by one learner
 * algorithm registered on the learner (`registerLearnerAlgorithm` in @oiafed/core), whose schema
 * validates the value; a key set to anything but undefined, null, false or 0 switches that
 * algorithm on for the round, and a learner must announce the key as a capability.
 * The built-ins own `proximal_mu` (fedprox), `scaffold`, `keep_local` (fedbn) and `report_steps` (fednova).
 */
export type LearnerInstructions = Record<string, unknown>;

/** Per-round plan sent to the selected learners. */
export interface RoundPlan {
  instructions: LearnerInstructions;
  /** Extra vectors for learners, e.g. SCAFFOLD's `server_control` (c). */
  tensors?: Record<string, Float32Array>;
}

/**
 * A learner selected for the round whose update does not count, and why: no reply in time, a
 * refused reply (out-of-bounds fields, wrong shapes), or an update the rule's accumulator threw on.
 */
export interface RoundFailure {
  learner: string;
  reason: string;
}

/** New global weights plus optional scalar metrics about the aggregation. */
export interface AggregateResult {
  weights: Float32Array;
  metrics?: Record<string, number>;
}

/**
 * Streaming aggregation: updates are folded in one at a time so memory stays O(model),
 * not O(n * model). `finish` may be called once.
 */
export interface Accumulator {
  add(update: ClientUpdate): void;
  /** `failures`: the round's selected learners whose update does not count (see {@link Aggregator.aggregate}). */
  finish(failures?: readonly RoundFailure[]): AggregateResult;
}

/** Checkpointable server-side state of a rule. */
export type AggregatorState = Record<string, Float32Array | number>;

/** An aggregation rule. The trainer owns the round loop and calls these hooks. */
export interface Aggregator {
  /** The registry type it was created from (e.g. `fedavg`). */
  readonly type: string;
  /**
   * Chooses the round's learners (Flower's configure_fit selection). `available`: the registered
   * learners able to serve the rule, sorted; `defaultSelection`: the trainer's seeded sampling of
   * `client_fraction` of them (at least `min_clients`), which is used when this hook is absent.
   * Names that are not in `available` are dropped (and logged); the order does not matter.
   */
  selectLearners?(round: number, available: readonly string[], defaultSelection: readonly string[]): readonly string[];
  /**
   * Decides what learners do this round; called once per round. The first round's plan is asked
   * before learners register (its `ctx.selectedClients` is empty), because its instruction keys
   * are the capabilities a learner must announce to be selected.
   */
  configureRound(ctx: RoundContext): RoundPlan;
  /**
   * Combines all updates of a round into new global weights. `failures` (Flower's
   * aggregate_fit failures): the selected learners whose update does not count, and why; a rule
   * may ignore it.
   */
  aggregate(ctx: RoundContext, updates: readonly ClientUpdate[], failures?: readonly RoundFailure[]): AggregateResult;
  /** Present for rules that can fold updates in one at a time. */
  createAccumulator?(ctx: RoundContext): Accumulator;
  /**
   * Server state for checkpoints (momentum, Adam moments, control variate, step), as copies: the
   * trainer also takes it before each aggregation and restores it when the round fails (a rule
   * that throws or yields a non-finite aggregate must not keep a half-updated state).
   */
  getState(): AggregatorState;
  /** Restores what {@link Aggregator.getState} returned. */
  setState(state: AggregatorState): void;
}

/** Builds an aggregator from validated config args. */
export type AggregatorFactory = (args: Record<string, unknown>) => Aggregator;

/**
 * The JSON Schema subset validated by the registry: @oiafed/component's `ArgsSchema` (`type`,
 * `properties`, `required`, bounds, `enum`, `items`, `minItems`, `maxItems`,
 * `additionalProperties`, `default`, `description`), the one every component kind uses.
 */
export type JsonSchemaObject = ArgsSchema;
