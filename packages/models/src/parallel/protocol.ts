/** Messages between the data-parallel trainer and its workers. */

/** `workerData` of a training worker. */
export interface WorkerInit {
  /** The model's topology (`LayersModel.toJSON`), rebuilt in the worker. */
  modelJson: string;
  /** Shared flat weights the main thread writes before every step. */
  weights: SharedArrayBuffer;
  /** This worker's shared output: shard gradient (trainable) and statistics (non-trainable). */
  out: SharedArrayBuffer;
}

/** One shard of one step. */
export interface StepMessage {
  type: 'step';
  /** Sample indices of the shard, in batch order. */
  indices: Uint32Array;
  /** One seed per Dropout layer, in layer order. */
  seeds: number[];
}

/** What a worker says. */
export type WorkerMessage =
  | { type: 'ready' }
  | { type: 'done'; loss: number; correct: number }
  | { type: 'error'; message: string };
