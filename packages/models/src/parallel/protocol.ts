import type { DataSource, TrainOptions, TrainResult } from '../types.js';

/** Messages between the data-parallel trainer and its workers. */

/** `workerData` of a training worker. */
export interface WorkerInit {
  /** The model's topology (`LayersModel.toJSON`), rebuilt in the worker. */
  modelJson: string;
  /** Shared flat weights the main thread writes before every step. */
  weights: SharedArrayBuffer;
  /** This worker's shared output: shard gradient (trainable) and statistics (non-trainable). */
  out: SharedArrayBuffer;
  /** Whether the main thread runs the OpenBLAS kernels: every worker runs the same kernel path. */
  blas: boolean;
}

/** One shard of one step. */
export interface StepMessage {
  type: 'step';
  /** Sample indices of the shard, in batch order. */
  indices: Uint32Array;
  /** One seed per Dropout layer, in layer order. */
  seeds: number[];
}

/** A whole local training run (learner pool): weights in, `FedModel.train` on one thread, weights out. */
export interface TrainMessage {
  type: 'train';
  weights: Float32Array;
  data: DataSource;
  /** TrainOptions without `signal`, `onEpochEnd` and `threads` (they do not cross threads). */
  options: Omit<TrainOptions, 'signal' | 'onEpochEnd' | 'threads'>;
}

/** Evaluation of the samples [start, end) of `data` with the shared weights (inference mode). */
export interface EvalMessage {
  type: 'eval';
  data: DataSource;
  start: number;
  end: number;
  batchSize: number;
}

/** What a worker says. */
export type WorkerMessage =
  | { type: 'ready' }
  | { type: 'done'; loss: number; correct: number }
  | { type: 'trained'; weights: Float32Array; result: TrainResult }
  | { type: 'evaluated'; lossSum: number; correct: number }
  | { type: 'error'; message: string };
