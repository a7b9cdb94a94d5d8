/**
 * Concurrent learners in one process (serial mode): a pool of worker threads, each with its own
 * wasm backend and a replica of the model, that runs whole local training runs. A learner hands
 * its model's weights, its data and its options to an idle worker, which runs `FedModel.train`
 * on one thread there (the same code and kernels as on the main thread, so the weights that come
 * back are bit-identical to training here) and sends the weights back into the learner's model.
 */
import type { FedModel } from '../fed-model.js';
import type { DataSource, EvalResult, TrainOptions, TrainResult } from '../types.js';
import { sharedData, TrainWorkerPool } from './pool.js';
import { shardBounds } from './shard.js';

export class LearnerPool {
  private readonly pool: TrainWorkerPool;
  private readonly idle: number[];
  private readonly waiting: Array<(worker: number) => void> = [];

  private constructor(pool: TrainWorkerPool) {
    this.pool = pool;
    this.idle = Array.from({ length: pool.size }, (_, i) => i);
  }

  /** Starts `size` workers with replicas of `model`'s architecture (every learner's model must share it). */
  static async start(model: FedModel, size: number): Promise<LearnerPool> {
    if (!Number.isInteger(size) || size < 1) throw new Error(`LearnerPool: size must be an integer >= 1, got ${size}`);
    const pool = await TrainWorkerPool.start(model.model.toJSON(null, true) as string, model.numParams, size);
    pool.hold(false);
    return new LearnerPool(pool);
  }

  get size(): number {
    return this.pool.size;
  }

  /**
   * `model.train(data, options)` on the next idle worker (one thread), leaving the trained weights
   * in `model`. `options.signal` is checked before the run starts; `onEpochEnd` is called once,
   * for the last epoch, when the run is back.
   */
  async train(model: FedModel, data: DataSource, options: TrainOptions): Promise<TrainResult> {
    // Step hooks are code (they cannot cross threads); a declared head other than the default
    // would split the worker's replica differently for the step terms: both train here.
    if ((options.stepHooks?.length ?? 0) > 0 || ((options.stepTerms?.length ?? 0) > 0 && !model.hasDefaultHead)) return model.train(data, options);
    const { signal, onEpochEnd, threads: _threads, ...rest } = options;
    const worker = await this.acquire();
    try {
      signal?.throwIfAborted();
      this.pool.hold(true);
      const reply = await this.pool.train(worker, { type: 'train', weights: model.getWeights(), data: sharedData(data), options: rest });
      model.setWeights(reply.weights);
      if (reply.result.steps > 0) onEpochEnd?.(options.epochs - 1, { loss: reply.result.loss, accuracy: reply.result.accuracy });
      return reply.result;
    } finally {
      this.release(worker);
    }
  }

  /**
   * `model.evaluate(data)` over the pool's workers once all are idle: `ranges` contiguous ranges
   * (default and at most the pool's size), range i on worker i, loss sums and correct counts added
   * in range order. Pass `model.evaluationRanges(...)` to split as `model.evaluate` would, so that
   * the sums are the same. Serial mode's trainer evaluates the global model here, so it starts no
   * workers of its own beside the pool's (one wasm heap each).
   */
  async evaluate(model: FedModel, data: DataSource, options: { batchSize?: number; ranges?: number } = {}): Promise<EvalResult> {
    const workers = await Promise.all(Array.from({ length: this.pool.size }, () => this.acquire()));
    try {
      this.pool.hold(true);
      this.pool.weights.set(model.getWeights());
      const shared = sharedData(data);
      const bounds = shardBounds(data.length, Math.min(options.ranges ?? this.pool.size, this.pool.size));
      const batchSize = options.batchSize ?? 256;
      const ranges = bounds.slice(0, -1).map((start, k) => ({ type: 'eval' as const, data: shared, start, end: bounds[k + 1], batchSize }));
      const parts = await this.pool.evaluate(ranges);
      const lossSum = parts.reduce((sum, p) => sum + p.lossSum, 0);
      const correct = parts.reduce((sum, p) => sum + p.correct, 0);
      return { loss: lossSum / data.length, accuracy: correct / data.length, numSamples: data.length };
    } finally {
      for (const w of workers) this.release(w);
    }
  }

  async close(): Promise<void> {
    await this.pool.close();
  }

  private acquire(): Promise<number> {
    const free = this.idle.shift();
    if (free !== undefined) return Promise.resolve(free);
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  private release(worker: number): void {
    const next = this.waiting.shift();
    if (next) {
      next(worker);
      return;
    }
    this.idle.push(worker);
    if (this.idle.length === this.pool.size) this.pool.hold(false);
  }
}
