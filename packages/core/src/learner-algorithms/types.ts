/**
 * The learner half of a federated algorithm as a plugin: a registered definition whose instance
 * wraps one learner's local training with hooks. The Learner owns the loop (load the global
 * model, train, send the update); an algorithm only changes the steps it needs, the way a Flower
 * client mod wraps `fit` without the client knowing it.
 */
import type { JsonSchemaObject, TensorSpec, WeightLayout } from '@oiafed/aggregators';
import type { TrainOptions, TrainResult } from '@oiafed/models';

/**
 * What an algorithm changes in one round's local training: FedModel's per-step terms, applied
 * to every optimizer step (a proximal pull on the loss, a correction added to each gradient).
 */
export type TrainingAdjustments = Pick<
  TrainOptions,
  'proximalMu' | 'proximalCenter' | 'gradientCorrection' | 'dpSgd' | 'frozen' | 'stepTerms' | 'stepHooks'
>;

/** One local training run an algorithm asks the learner for, on the learner's training data. */
export interface LocalRunRequest extends TrainingAdjustments {
  /** The weights to start from (full layout). */
  start: Float32Array;
  /** Epochs of this run; default: the round's. */
  epochs?: number;
}

/** What one local training run produced. */
export interface LocalRun {
  /** The trained weights (full layout). */
  weights: Float32Array;
  result: TrainResult;
}

/**
 * Runs local training for an algorithm: the learner's model, data and optimizer settings, with
 * the round's merged adjustments overridden by the request's.
 */
export type RunLocalTraining = (request: LocalRunRequest) => Promise<LocalRun>;

/** What `localTraining` sees: the round, and the weights the default run would start from. */
export interface LocalTrainingContext extends LocalRoundContext {
  /** The global weights with this learner's kept tensors put back (see keepsLocal). */
  start: Float32Array;
}

/** The learner's local optimizer settings for the round. */
export interface LocalTrainingSettings {
  epochs: number;
  batchSize: number;
  lr: number;
  optimizer: 'sgd' | 'adam';
  momentum: number;
  weightDecay: number;
}

/** What a hook sees of the round before local training. */
export interface LocalRoundContext {
  round: number;
  /** The round's global weights (full layout); read-only. */
  global: Float32Array;
  layout: WeightLayout;
  /** Vectors the trainer's plan sent along (e.g. SCAFFOLD's `server_control`); read-only. */
  tensors: Readonly<Record<string, Float32Array>>;
  /** The instruction keys this algorithm owns that the round sets, validated by its schemas. */
  instructions: Readonly<Record<string, unknown>>;
  settings: Readonly<LocalTrainingSettings>;
  /** Size of this learner's training partition (DP-SGD's sampling rate is batch / this); set by the Learner. */
  numSamples?: number;
}

/** What a hook sees after local training. */
export interface LocalTrainingOutcome extends LocalRoundContext {
  /** The locally trained weights (full layout); read-only. */
  local: Float32Array;
  result: TrainResult;
}

/** What an algorithm adds to the update it sends back, for its aggregator. */
export interface UpdateAdditions {
  /** Model-sized vectors, e.g. SCAFFOLD's `control_delta`. */
  extras?: Record<string, Float32Array>;
  /** Scalars merged into the update's `meta`. */
  meta?: Record<string, number | string | boolean>;
}

/**
 * One learner's instance of an algorithm. It keeps its own state between rounds in its fields
 * (SCAFFOLD's client control variate); every hook is optional.
 */
export interface LearnerAlgorithm {
  /** The registered type it was created from. */
  readonly type: string;
  /**
   * Personalization: tensors that stay local. The learner keeps its own trained values of these
   * and puts them over the global model before training and before evaluating (FedBN's
   * normalization layers). `layout` is the whole model's, for rules such as "the last layer".
   */
  keepsLocal?(spec: TensorSpec, layout: WeightLayout): boolean;
  /** Before local training: per-step terms for FedModel, from instructions and own state. */
  beforeTraining?(ctx: LocalRoundContext): TrainingAdjustments | undefined;
  /** After local training: extras and meta for the aggregator; may update own state. */
  afterTraining?(outcome: LocalTrainingOutcome): UpdateAdditions | undefined;
  /**
   * Replaces the round's one training run (from `ctx.start` with beforeTraining's terms): the
   * algorithm runs its own sequence through `train` (FedRep's head then body phases, Ditto's
   * global and personal models) and returns the run whose weights go to the aggregator, with the
   * result to report. At most one active algorithm may have it.
   */
  localTraining?(ctx: LocalTrainingContext, train: RunLocalTraining): Promise<LocalRun>;
  /**
   * After `afterTraining`: the weights to send instead of the trained ones (local DP's clipped and
   * noised update). Applied in the order the algorithms run, each to the previous one's result.
   */
  transformUpdate?(outcome: LocalTrainingOutcome): Float32Array | undefined;
  /**
   * Set by differential privacy (local_dp, dp_sgd): it covers the weights only, so a round in which
   * another active algorithm adds extra vectors (SCAFFOLD's control delta, prototypes) is refused.
   */
  readonly privatizesWeightsOnly?: boolean;
  /**
   * Personalized evaluation: the weights this learner's personalized model has, when they are not
   * simply the global model with the kept local tensors over it (`ctx.weights`), e.g. FedBABU
   * fine-tunes the head first, Ditto evaluates its own personal model. Undefined keeps `ctx.weights`.
   * Must not change the algorithm's training state (the evaluation happens between rounds).
   */
  personalizedWeights?(ctx: PersonalizationContext): Float32Array | undefined | Promise<Float32Array | undefined>;
}

/** What {@link LearnerAlgorithm.personalizedWeights} sees. */
export interface PersonalizationContext {
  /** The round whose global model is evaluated. */
  round: number;
  /** That round's global weights (full layout); read-only. */
  global: Float32Array;
  /** The global weights with every kept local tensor over them, or an earlier algorithm's result; read-only. */
  weights: Float32Array;
  layout: WeightLayout;
  settings: Readonly<LocalTrainingSettings>;
  /**
   * Trains the learner's model from `start` on its own train split with the learner's settings
   * (overridden by `options`, e.g. `epochs`, `frozen`) and returns the trained weights. Nothing
   * of it is kept: the next round starts from the trainer's model as always.
   */
  train(start: Float32Array, options?: Partial<TrainOptions>): Promise<Float32Array>;
}



/** A registered learner algorithm: how configs name it, what it accepts, how to build one. */
export interface LearnerAlgorithmDefinition {
  /** The name configs use in `learner.type` (and, by convention, its aggregator's `type`). */
  type: string;
  /** JSON Schema subset for its `learner.args` (see @oiafed/aggregators JsonSchemaObject). */
  argsSchema?: JsonSchemaObject;
  /**
   * Instruction keys it owns, each with the schema its value must satisfy. A round whose plan
   * sets one switches the algorithm on for that round, whatever `learner.type` says, so an
   * aggregator alone can ask for its learner side. Learners announce these keys as capabilities.
   */
  instructions?: Record<string, JsonSchemaObject>;
  /** A fresh instance for one learner; `args` are validated and have defaults filled in. */
  create(args: Record<string, unknown>): LearnerAlgorithm;
}
