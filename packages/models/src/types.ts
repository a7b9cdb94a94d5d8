/**
 * Shared domain types of @oiafed/models. They are structural on purpose: `TensorSpec` has the
 * same shape as @oiafed/aggregators' and `DataSource` is satisfied by @oiafed/datasets'
 * ArrayDataset, so no package imports another for these.
 */
import type { ComputePlan, Parallelism } from './parallel/compute-plan.js';
import type { StepHook, StepTerm } from './step-hooks.js';

/** One tensor of a model's flat weight vector. */
export interface TensorSpec {
  /** Stable weight name, e.g. `conv1/kernel` or `bn1/moving_mean`. */
  name: string;
  shape: number[];
  /** Index of the tensor's first element in the flat vector. */
  offset: number;
  /** Number of elements (product of `shape`). */
  size: number;
  /** False for batch-norm moving statistics and frozen layers. */
  trainable: boolean;
  /** True for every weight of a normalization layer (FedBN keeps these local). */
  isNormalization: boolean;
  /** True for a weight of the model's head (the classifier its type declares; see BodyHeadSplit). */
  isHead?: boolean;
}

/** A labelled, in-memory data set in channels-last layout. */
export interface DataSource {
  /** `length * prod(sampleShape)` values, sample after sample. */
  readonly features: Float32Array;
  /** One class index per sample, in `[0, numClasses)`. */
  readonly labels: Int32Array;
  /** Shape of one sample, e.g. `[32, 32, 3]`. */
  readonly sampleShape: readonly number[];
  readonly numClasses: number;
  /** Number of samples. */
  readonly length: number;
}

/** The `model` section of a node config. */
export interface ModelSpec {
  type: string;
  args?: Record<string, unknown>;
}

/** What a model factory needs besides its args; resolved by `createModel`. */
export interface ModelContext {
  /** Shape of one input sample (no batch dimension). */
  inputShape: number[];
  numClasses: number;
  /**
   * Seed for weight initialisation. Factories derive per-layer initializer seeds from it so two
   * nodes with the same seed start from bit-identical weights. Optional for callers of
   * `createModel`; always set when a factory is called.
   */
  seed?: number;
}

/** The one Logger of every OiaFed package (@oiafed/component); @oiafed/tracker's logger implements it. */
export type { Logger } from '@oiafed/component';

/** Logger that drops everything; the default (@oiafed/component's silentLogger). */
export { silentLogger as noopLogger } from '@oiafed/component';

/** Options of one local training run (`FedModel.train`). */
export interface TrainOptions {
  epochs: number;
  batchSize: number;
  lr: number;
  optimizer: 'sgd' | 'adam';
  /** SGD momentum (PyTorch semantics); ignored by adam. */
  momentum?: number;
  /** PyTorch-style L2: `grad += weightDecay * w` on trainable tensors. */
  weightDecay?: number;
  /** Seeds the shuffle order and dropout masks; random when absent. */
  seed?: number;
  /**
   * Threads to train with (default 1). Above 1, on the wasm backend, each mini-batch is split
   * across `threads - 1` worker threads and this one, and the shard gradients are summed in a
   * fixed order (see FedModel.train); results are deterministic for a given seed and thread count,
   * but differ from one thread's by float summation order (and batch norm's per-shard statistics).
   */
  threads?: number;
  /**
   * How `threads` cores are spent (see parallel/compute-plan.ts): 'auto' (default) picks from the
   * model's multiply-adds per step; 'data' forces data-parallel workers, 'blas' OpenBLAS threads
   * in one worker, 'none' one thread.
   */
  parallelism?: Parallelism;
  /** FedProx: adds `mu/2 * ||w - proximalCenter||^2` over trainable tensors to the loss. */
  proximalMu?: number;
  /** Flat weights (full layout) the proximal term pulls towards, usually the global model. */
  proximalCenter?: Float32Array;
  /**
   * SCAFFOLD: added to each trainable tensor's gradient every step. Flat over the FULL layout;
   * entries of non-trainable tensors are ignored.
   */
  gradientCorrection?: Float32Array;
  /** Layout names of trainable tensors this run leaves unchanged (FedRep's phases, FedBABU's head). */
  frozen?: readonly string[];
  /** Per-step terms declared as data (MOON, FedProto, FedRoD); they travel to worker threads. */
  stepTerms?: readonly StepTerm[];
  /** Per-step hooks as code; a run with any trains on the calling thread. */
  stepHooks?: readonly StepHook[];
  /** DP-SGD: per-example clipping and Gaussian noise in every step (see dp-sgd.ts); plain training when absent. */
  dpSgd?: DpSgdOptions;
  onEpochEnd?: (epoch: number, logs: { loss: number; accuracy: number }) => void;
  /** Checked between batches; an aborted signal makes `train` reject with its reason. */
  signal?: AbortSignal;
}

/** DP-SGD settings of one local training run (Abadi et al. 2016). */
export interface DpSgdOptions {
  /** C: each example's gradient is clipped to this L2 norm over all trainable tensors. */
  clipNorm: number;
  /** sigma: the noise on a lot's gradient sum has std sigma * C. */
  noiseMultiplier: number;
  /** Seeds the noise for tests only (noise from a known seed protects nothing); Web Crypto otherwise. */
  noiseSeed?: number;
}

/** Outcome of `FedModel.train`. Loss and accuracy are those of the last epoch. */
export interface TrainResult {
  /** Mean cross-entropy of the last epoch (without proximal or decay terms). */
  loss: number;
  /** Training accuracy of the last epoch (forward pass in training mode). */
  accuracy: number;
  /** Size of the local data set (the weight FedAvg uses). */
  numSamples: number;
  /** Optimizer steps taken. */
  steps: number;
  seconds: number;
  /** Samples processed per second over all epochs. */
  samplesPerSecond: number;
  /** What the run's step terms and hooks return (e.g. `class_feature_sums`, `aux_head`). */
  outputs?: Record<string, Float32Array>;
  /** How the run spent its threads (data-parallel workers, OpenBLAS threads) and why. */
  plan?: ComputePlan;
}

/** Outcome of `FedModel.evaluate`. */
export interface EvalResult {
  loss: number;
  accuracy: number;
  numSamples: number;
}
