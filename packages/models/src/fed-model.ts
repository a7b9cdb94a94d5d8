import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { checkDataSource, correctCount, crossEntropy, disposeBatch, makeBatch, yieldToEventLoop } from './batching.js';
import { blasStatus, setBlasThreads } from './blas/openblas.js';
import { countMacsPerSample, planWith, type ComputePlan, type Parallelism } from './parallel/compute-plan.js';
import { sharedData, TrainWorkerPool } from './parallel/pool.js';
import { combineShards, shardBounds, shardGradients, weightRefs, type WeightRef } from './parallel/shard.js';
import { trainDpSgd } from './dp-sgd.js';
import { BodyHeadSplit, defaultHead, ReferenceBodies } from './model-split.js';
import { Rng } from './random.js';
import { stepHookFor, type StepContext, type StepHook } from './step-hooks.js';
import { skipInputGradient } from './wasm/index.js';
import type { DataSource, EvalResult, TensorSpec, TrainOptions, TrainResult } from './types.js';


/** Optimizer state and per-run constant tensors of one `train` call. */
interface StepExtras {
  weightDecay: number;
  proximalMu: number;
  centers: Map<string, tf.Tensor>;
  corrections: Map<string, tf.Tensor>;
  lr: number;
  /** Trainable tensors this run leaves unchanged. */
  frozen: Set<string>;
}

/**
 * A tfjs LayersModel seen the way federated learning sees it: one flat Float32Array of weights
 * in a fixed layout, plus a local training loop that knows FedProx, SCAFFOLD and weight decay.
 */
export class FedModel {
  /** The registry type this model was built from. */
  readonly type: string;
  /** Every weight tensor in flat-vector order: layers in order, each layer's weights in order. */
  readonly layout: readonly TensorSpec[];
  /** Total number of values in the flat vector (trainable and non-trainable). */
  readonly numParams: number;
  /** Shape of one input sample. */
  readonly inputShape: readonly number[];
  /** Number of model outputs (classes). */
  readonly numClasses: number;
  /** The underlying tfjs model, for callers that need more than this class offers. */
  readonly model: tfl.LayersModel;

  private readonly refs: WeightRef[];
  /** Body and head (see model-split.ts). */
  readonly split: BodyHeadSplit;
  private disposed = false;
  /** Workers of data-parallel training (threads - 1 of them), started on first use. */
  private pool?: Promise<TrainWorkerPool>;
  private parallelFailure?: string;
  /** Forward multiply-adds per sample, once counted. */
  private macs?: number;
  /** The body under other weights, for the step hooks of the current run that need it. */
  private reference?: ReferenceBodies;

  /**
   * Wraps a built tfjs model; the FedModel owns it from now on (see `dispose`). `options.head`
   * names the head layers (the model type's declaration; default: see model-split.ts defaultHead).
   */
  constructor(type: string, model: tfl.LayersModel, options: { head?: readonly string[] } = {}) {
    this.type = type;
    this.model = model;
    const inShape = model.inputs[0]?.shape;
    const outShape = model.outputs[0]?.shape;
    if (model.inputs.length !== 1 || model.outputs.length !== 1 || inShape === undefined || outShape === undefined) {
      throw new Error(`model '${type}': expected a model with one input and one output`);
    }
    if (outShape.length !== 2 || outShape[1] == null) {
      throw new Error(`model '${type}': expected output shape [batch, classes], got [${outShape.join(', ')}]`);
    }
    this.inputShape = inShape.slice(1) as number[];
    this.numClasses = outShape[1];

    const refs = weightRefs(model);
    this.refs = refs;
    this.split = new BodyHeadSplit(model, options.head, `model '${type}'`);
    const head = this.split.headWeights();
    for (const r of refs) if (head.has(r.variable)) r.spec.isHead = true;
    this.layout = Object.freeze(refs.map((r) => Object.freeze({ ...r.spec, shape: [...r.spec.shape] })));
    this.numParams = refs.reduce((n, r) => n + r.spec.size, 0);
  }

  /**
   * Why this model trains and evaluates on one thread whatever `threads` says (its worker threads
   * could not be started, e.g. a custom layer class registered only on this thread); undefined
   * while multi-threading works or has not been tried.
   */
  get parallelUnavailable(): string | undefined {
    return this.parallelFailure;
  }

  /** Whether the head is the one a model without a declaration gets (what a worker's replica assumes). */
  get hasDefaultHead(): boolean {
    const layers = this.model.layers.filter((layer) => layer.getClassName() !== 'InputLayer');
    return defaultHead(layers, this.type).join('/') === this.split.headLayers.join('/');
  }

  /** All weights (trainable and batch-norm statistics) as one flat vector in layout order. */
  getWeights(): Float32Array {
    this.checkAlive('getWeights');
    const flat = new Float32Array(this.numParams);
    for (const { spec, variable } of this.refs) {
      flat.set(variable.read().dataSync() as Float32Array, spec.offset);
    }
    return flat;
  }

  /** Replaces every weight from a flat vector in layout order (bit-exact). */
  setWeights(flat: Float32Array): void {
    this.checkAlive('setWeights');
    if (!(flat instanceof Float32Array)) {
      throw new Error(`setWeights(${this.type}): expected a Float32Array, got ${Object.prototype.toString.call(flat)}`);
    }
    if (flat.length !== this.numParams) {
      throw new Error(`setWeights(${this.type}): expected ${this.numParams} values (the model's layout), got ${flat.length}`);
    }
    for (const { spec, variable } of this.refs) {
      const t = tf.tensor(flat.slice(spec.offset, spec.offset + spec.size), spec.shape, 'float32');
      variable.write(t);
      t.dispose();
    }
  }

  /**
   * Trains locally with a custom loop (fresh optimizer per call, as federated rounds expect).
   * Yields to the event loop between batches; rejects with `signal.reason` when aborted.
   */
  async train(data: DataSource, options: TrainOptions): Promise<TrainResult> {
    this.checkAlive('train');
    const where = `train(${this.type})`;
    const opts = this.checkTrainOptions(options, where);
    checkDataSource(data, this.inputShape, this.numClasses, where);
    const started = performance.now();
    if (data.length === 0 || opts.epochs === 0) {
      return { loss: 0, accuracy: 0, numSamples: data.length, steps: 0, seconds: 0, samplesPerSecond: 0 };
    }
    options.signal?.throwIfAborted();
    const hooked = (options.stepTerms?.length ?? 0) + (options.stepHooks?.length ?? 0) + (options.frozen?.length ?? 0) > 0;
    // DP-SGD's per-example gradients are a loop of their own: silently dropping a method's terms would be wrong.
    if (options.dpSgd && hooked) throw new Error(`${where}: DP-SGD does not run step terms, step hooks or frozen tensors`);
    // Step hooks and frozen tensors run on this thread: the shard workers know neither (nor DP-SGD's per-example loop).
    const { plan, pool } = await this.startPlan(options.threads ?? 1, opts.batchSize, options.parallelism, !hooked && !options.dpSgd);
    if (options.dpSgd) return { ...(await trainDpSgd(this.model, this.layout, data, options, { make: makeOptimizer, dispose: disposeOptimizer })), plan };
    if (pool !== undefined) return { ...(await this.trainParallel(pool, data, options, opts, plan.dataParallel, started)), plan };

    const rng = new Rng(options.seed ?? Math.floor(Math.random() * 2 ** 31));
    const trainable = this.refs.filter((r) => r.spec.trainable);
    const varList = trainable.map((r) => r.variable.read() as tf.Variable);
    const dropouts = this.model.layers.filter((l) => l.getClassName() === 'Dropout') as unknown as Array<{ seed?: number }>;
    const extras = this.makeExtras(trainable, options, opts);
    const hooks = this.stepHooks(options, data.labels);
    const optimizer = makeOptimizer(opts);
    const indices = new Uint32Array(data.length);
    let steps = 0;
    let epochLoss = 0;
    let epochAccuracy = 0;
    let outputs: Record<string, Float32Array> | undefined;
    try {
      for (let epoch = 0; epoch < opts.epochs; epoch++) {
        for (let i = 0; i < indices.length; i++) indices[i] = i;
        rng.shuffle(indices);
        let lossSum = tf.scalar(0);
        let correctSum = tf.scalar(0, 'int32');
        try {
          for (let start = 0; start < data.length; start += opts.batchSize) {
            if (options.signal?.aborted) options.signal.throwIfAborted();
            // tfjs treats a seed of 0 as "unseeded", hence the `|| 1`.
            for (const d of dropouts) d.seed = rng.nextUint32() || 1;
            const batch = makeBatch(data, indices, start, Math.min(start + opts.batchSize, data.length), this.numClasses);
            try {
              const [l, c] = hooks.length > 0
                ? this.hookedStep(batch, { varList, trainable, extras, optimizer }, hooks, { epoch, epochs: opts.epochs })
                : this.step(batch.x, batch.yOneHot, batch.labels, varList, trainable, extras, optimizer);
              const [newLoss, newCorrect] = tf.tidy(() => [tf.add(lossSum, tf.mul(l, batch.size)), tf.add(correctSum, c)] as tf.Scalar[]);
              tf.dispose([l, c, lossSum, correctSum]);
              lossSum = newLoss;
              correctSum = newCorrect;
            } finally {
              disposeBatch(batch);
            }
            steps++;
            await yieldToEventLoop();
          }
          epochLoss = (await lossSum.data())[0] / data.length;
          epochAccuracy = (await correctSum.data())[0] / data.length;
        } finally {
          tf.dispose([lossSum, correctSum]);
        }
        options.onEpochEnd?.(epoch, { loss: epochLoss, accuracy: epochAccuracy });
      }
      outputs = collectOutputs(hooks);
    } finally {
      disposeOptimizer(optimizer);
      tf.dispose([...extras.centers.values(), ...extras.corrections.values()]);
      for (const hook of hooks) hook.dispose?.();
    }
    const seconds = (performance.now() - started) / 1000;
    return {
      ...(outputs ? { outputs } : {}),
      loss: epochLoss,
      accuracy: epochAccuracy,
      numSamples: data.length,
      steps,
      seconds,
      samplesPerSecond: seconds > 0 ? (data.length * opts.epochs) / seconds : 0,
      plan,
    };
  }

  /** Forward multiply-adds per sample (countMacsPerSample), counted once. */
  get macsPerSample(): number {
    this.macs ??= countMacsPerSample(this.model);
    return this.macs;
  }

  /**
   * How a run with `threads` cores spends them (compute-plan.ts), with its worker pool started
   * when the plan is data-parallel and OpenBLAS's threads set. Data-parallel runs only on the
   * patched wasm backend (native TensorFlow threads by itself, and the pure-JS backend is too slow
   * for the split to matter); when the workers cannot start the plan is made again without them.
   */
  /**
   * How many contiguous ranges `evaluate(data, { batchSize, threads })` splits `length` samples
   * into (1: none), so that a caller evaluating elsewhere (serial mode's learner pool) can split
   * the same way and get the same sums.
   */
  evaluationRanges(length: number, threads: number, batchSize = 256): number {
    return this.planFor(threads, batchSize, undefined, length >= 2 * threads).dataParallel;
  }

  private planFor(threads: number, batchSize: number, parallelism: Parallelism | undefined, splittable: boolean): ComputePlan {
    const onWasm = tf.getBackend() === 'wasm';
    return planWith(parallelism ?? 'auto', {
      threads,
      blasActive: onWasm && blasStatus().active,
      macsPerSample: this.macsPerSample,
      batchSize,
      dataParallelPossible: splittable && onWasm && this.parallelFailure === undefined,
    });
  }

  private async startPlan(threads: number, batchSize: number, parallelism: Parallelism | undefined, splittable: boolean): Promise<{ plan: ComputePlan; pool?: TrainWorkerPool }> {
    const make = (): ComputePlan => this.planFor(threads, batchSize, parallelism, splittable);
    let plan = make();
    const pool = plan.dataParallel > 1 ? await this.workerPool(plan.dataParallel - 1) : undefined;
    if (plan.dataParallel > 1 && pool === undefined) plan = make();
    // OpenBLAS's thread count is process-wide (and a worker starting up sets it to 1): set it every run.
    if (blasStatus().active && blasStatus().threads !== plan.blasThreads) setBlasThreads(plan.blasThreads);
    return { plan, pool };
  }

  /**
   * Mean cross-entropy and accuracy in inference mode (batch norm uses its moving statistics).
   * With `threads` > 1 on the wasm backend the samples are split into `threads` contiguous ranges
   * evaluated at once (this thread and the training workers); the accuracy is the same, the loss
   * equal up to float summation order.
   */
  async evaluate(data: DataSource, options: { batchSize?: number; threads?: number; parallelism?: Parallelism; auxHead?: Float32Array } = {}): Promise<EvalResult> {
    this.checkAlive('evaluate');
    const where = `evaluate(${this.type})`;
    const batchSize = options.batchSize ?? 256;
    if (!Number.isInteger(batchSize) || batchSize < 1) throw new Error(`${where}: batchSize must be a positive integer, got ${batchSize}`);
    checkDataSource(data, this.inputShape, this.numClasses, where);
    if (data.length === 0) return { loss: 0, accuracy: 0, numSamples: 0 };
    const threads = options.threads ?? 1;
    if (!Number.isInteger(threads) || threads < 1) throw new Error(`${where}: threads must be an integer >= 1, got ${String(threads)}`);
    const aux = options.auxHead === undefined ? undefined : this.auxHeadTensors(options.auxHead, where);
    const { plan, pool } = await this.startPlan(threads, batchSize, options.parallelism, !aux && data.length >= 2 * threads);
    if (pool !== undefined) return this.evaluateParallel(pool, data, batchSize, plan.dataParallel);
    let lossSum = 0;
    let correct = 0;
    for (let start = 0; start < data.length; start += batchSize) {
      const batch = makeBatch(data, null, start, Math.min(start + batchSize, data.length), this.numClasses);
      try {
        const [l, c] = tf.tidy(() => {
          const logits = aux ? this.logitsWithAuxHead(batch.x, aux) : (this.model.apply(batch.x, { training: false }) as tf.Tensor);
          return [tf.mul(crossEntropy(logits, batch.yOneHot), batch.size), correctCount(logits, batch.labels)];
        });
        lossSum += (await l.data())[0];
        correct += (await c.data())[0];
        tf.dispose([l, c]);
      } finally {
        disposeBatch(batch);
      }
      await yieldToEventLoop();
    }
    if (aux) tf.dispose([aux.w, aux.b]);
    return { loss: lossSum / data.length, accuracy: correct / data.length, numSamples: data.length };
  }

  /**
   * Inference-mode logits plus a linear head of its own over the features (FedRoD's personalized
   * head, `[dim * classes]` kernel then `[classes]` bias, as the `aux_head` step term returns it).
   */
  private logitsWithAuxHead(x: tf.Tensor, aux: { w: tf.Tensor2D; b: tf.Tensor1D }): tf.Tensor {
    const { features, logits } = this.split.forward(x, false);
    const flat = tf.reshape(features, [x.shape[0]!, -1]) as tf.Tensor2D;
    return tf.add(logits, tf.add(tf.matMul(flat, aux.w), aux.b));
  }

  private auxHeadTensors(weights: Float32Array, where: string): { w: tf.Tensor2D; b: tf.Tensor1D } {
    const k = this.numClasses;
    const dim = (weights.length - k) / k;
    if (!Number.isInteger(dim) || dim < 1) throw new Error(`${where}: auxHead must hold dim * ${k} + ${k} values, got ${weights.length}`);
    return { w: tf.tensor2d(weights.subarray(0, dim * k), [dim, k]), b: tf.tensor1d(weights.subarray(dim * k)) };
  }

  /**
   * Class probabilities for `count` samples (`features` holds `count * prod(inputShape)` values),
   * row after row, in inference mode.
   */
  async predict(features: Float32Array, count: number): Promise<Float32Array> {
    this.checkAlive('predict');
    const sampleSize = this.inputShape.reduce((a, b) => a * b, 1);
    if (!Number.isInteger(count) || count < 0 || features.length !== count * sampleSize) {
      throw new Error(`predict(${this.type}): expected ${count} x ${sampleSize} = ${count * sampleSize} values, got ${features.length}`);
    }
    const probs = tf.tidy(() => {
      const x = tf.tensor(features.slice(), [count, ...this.inputShape], 'float32');
      return tf.softmax(this.model.apply(x, { training: false }) as tf.Tensor);
    });
    const out = (await probs.data()) as Float32Array;
    probs.dispose();
    return out;
  }

  /** Frees the model's tensors. The instance is unusable afterwards. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    const pool = this.pool;
    this.pool = undefined;
    void pool?.then((p) => p.close()).catch(() => undefined);
    this.model.dispose();
  }

  /**
   * `train` across `threads` threads: every mini-batch is split into `threads` fixed, contiguous
   * shards; this thread computes shard 0, workers the others (see parallel/); the shard gradients
   * are summed in shard order, weighted by shard size, into the gradient of the batch's mean loss,
   * and one optimizer step runs here. Without batch norm this is the one-big-batch step up to
   * float summation order; batch norm normalizes each shard with its own statistics, and its
   * moving statistics become the sample-weighted mean of the shards' updates. Dropout masks come
   * from per-shard seeds. Deterministic for a given seed and thread count.
   */
  private async trainParallel(pool: TrainWorkerPool, data: DataSource, options: TrainOptions, opts: { epochs: number; batchSize: number; weightDecay: number; proximalMu: number; lr: number; optimizer: 'sgd' | 'adam'; momentum: number }, threads: number, started: number): Promise<TrainResult> {
    pool.setData(data);
    const rng = new Rng(options.seed ?? Math.floor(Math.random() * 2 ** 31));
    const trainable = this.refs.filter((r) => r.spec.trainable);
    const varList = trainable.map((r) => r.variable.read() as tf.Variable);
    const extras = this.makeExtras(trainable, options, opts);
    const optimizer = makeOptimizer(opts);
    const indices = new Uint32Array(data.length);
    const buffers = { own: new Float32Array(this.numParams), acc: new Float32Array(this.numParams) };
    let steps = 0;
    let last = { loss: 0, accuracy: 0 };
    pool.hold(true);
    try {
      for (let epoch = 0; epoch < opts.epochs; epoch++) {
        for (let i = 0; i < indices.length; i++) indices[i] = i;
        rng.shuffle(indices);
        let lossSum = 0;
        let correct = 0;
        for (let start = 0; start < data.length; start += opts.batchSize) {
          if (options.signal?.aborted) options.signal.throwIfAborted();
          const batch = indices.subarray(start, Math.min(start + opts.batchSize, data.length));
          const r = await this.parallelStep(pool, data, batch, rng, buffers, threads);
          this.applyUpdate(this.gradientTensors(buffers.acc, varList, trainable), varList, trainable, extras, optimizer);
          lossSum += r.loss * batch.length;
          correct += r.correct;
          steps++;
        }
        last = { loss: lossSum / data.length, accuracy: correct / data.length };
        options.onEpochEnd?.(epoch, last);
      }
    } finally {
      pool.hold(false);
      disposeOptimizer(optimizer);
      tf.dispose([...extras.centers.values(), ...extras.corrections.values()]);
    }
    const seconds = (performance.now() - started) / 1000;
    return { ...last, numSamples: data.length, steps, seconds, samplesPerSecond: seconds > 0 ? (data.length * opts.epochs) / seconds : 0 };
  }

  /**
   * Forward and backward of one mini-batch over the shards; leaves the combined gradient (and
   * combined normalization statistics, already written to the model) in `buffers.acc`. Returns
   * the batch's mean loss and correct count.
   */
  private async parallelStep(pool: TrainWorkerPool, data: DataSource, batch: Uint32Array, rng: Rng, buffers: { own: Float32Array; acc: Float32Array }, threads: number): Promise<{ loss: number; correct: number }> {
    const bounds = shardBounds(batch.length, threads);
    const shards = bounds.length - 1;
    const dropouts = this.model.layers.filter((l) => l.getClassName() === 'Dropout') as unknown as Array<{ seed?: number }>;
    // tfjs treats a seed of 0 as "unseeded", hence the `|| 1`.
    const seeds = Array.from({ length: shards }, () => dropouts.map(() => rng.nextUint32() || 1));
    pool.weights.set(this.getWeights());
    const remote = pool.run(seeds.slice(1).map((s, k) => ({ type: 'step', indices: batch.slice(bounds[k + 1], bounds[k + 2]), seeds: s })));
    dropouts.forEach((d, i) => (d.seed = seeds[0][i]));
    const mine = makeBatch(data, batch, bounds[0], bounds[1], this.numClasses);
    let own;
    try {
      own = shardGradients(this.model, this.refs, mine, buffers.own);
    } finally {
      disposeBatch(mine);
    }
    const outcomes = [own, ...(await remote)];
    const weights = outcomes.map((_, k) => (bounds[k + 1] - bounds[k]) / batch.length);
    combineShards([buffers.own, ...pool.outs.slice(0, shards - 1)], weights, buffers.acc);
    for (const { spec, variable } of this.refs) {
      if (spec.trainable) continue;
      const t = tf.tensor(buffers.acc.slice(spec.offset, spec.offset + spec.size), spec.shape, 'float32');
      variable.write(t);
      t.dispose();
    }
    return {
      loss: outcomes.reduce((sum, o, k) => sum + o.loss * weights[k], 0),
      correct: outcomes.reduce((sum, o) => sum + o.correct, 0),
    };
  }

  /** `evaluate` over `threads` contiguous ranges: range 0 here, the others on the workers; sums in range order. */
  private async evaluateParallel(pool: TrainWorkerPool, data: DataSource, batchSize: number, threads: number): Promise<EvalResult> {
    const shared = sharedData(data);
    const bounds = shardBounds(data.length, threads);
    const size = data.sampleShape.reduce((a, b) => a * b, 1);
    pool.weights.set(this.getWeights());
    pool.hold(true);
    try {
      const ranges = bounds.slice(1, -1).map((start, k) => ({ type: 'eval' as const, data: shared, start, end: bounds[k + 2], batchSize }));
      const remote = pool.evaluate(ranges);
      const head: DataSource = {
        features: data.features.subarray(0, bounds[1] * size),
        labels: data.labels.subarray(0, bounds[1]),
        sampleShape: data.sampleShape,
        numClasses: data.numClasses,
        length: bounds[1],
      };
      const mine = await this.evaluate(head, { batchSize });
      const parts = [{ lossSum: mine.loss * mine.numSamples, correct: Math.round(mine.accuracy * mine.numSamples) }, ...(await remote)];
      const lossSum = parts.reduce((sum, p) => sum + p.lossSum, 0);
      const correct = parts.reduce((sum, p) => sum + p.correct, 0);
      return { loss: lossSum / data.length, accuracy: correct / data.length, numSamples: data.length };
    } finally {
      pool.hold(false);
    }
  }

  /** Gradient tensors keyed by variable name, read from a flat vector in the layout. */
  private gradientTensors(flat: Float32Array, varList: tf.Variable[], trainable: WeightRef[]): tf.NamedTensorMap {
    const grads: tf.NamedTensorMap = {};
    trainable.forEach(({ spec }, i) => {
      grads[varList[i].name] = tf.tensor(flat.slice(spec.offset, spec.offset + spec.size), spec.shape, 'float32');
    });
    return grads;
  }

  /**
   * The pool of `workers` training workers (restarted when a different size is asked for), or
   * undefined when workers cannot hold this model (e.g. a custom layer class registered only on
   * this thread): training then runs on this thread alone, and no start is tried again.
   */
  private async workerPool(workers: number): Promise<TrainWorkerPool | undefined> {
    if (this.parallelFailure !== undefined) return undefined;
    const current = this.pool ? await this.pool.catch(() => undefined) : undefined;
    if (current !== undefined && current.size === workers) return current;
    await current?.close();
    this.pool = TrainWorkerPool.start(this.model.toJSON(null, true) as string, this.numParams, workers);
    try {
      return await this.pool;
    } catch (err) {
      this.pool = undefined;
      this.parallelFailure = err instanceof Error ? err.message : String(err);
      return undefined;
    }
  }

  /** One optimizer step; returns the batch's mean loss and its correct count (caller disposes). */
  private step(
    x: tf.Tensor,
    yOneHot: tf.Tensor,
    labels: tf.Tensor1D,
    varList: tf.Variable[],
    trainable: WeightRef[],
    extras: StepExtras,
    optimizer: tf.Optimizer,
  ): [tf.Scalar, tf.Scalar] {
    let correct: tf.Scalar | undefined;
    // Only variables are differentiated: the batch's own gradient is never read, so the patched
    // wasm backend may skip the first convolution's input gradient.
    const release = skipInputGradient(x);
    let value: tf.Scalar;
    let grads: tf.NamedTensorMap;
    try {
      ({ value, grads } = tf.variableGrads(() => {
        const logits = this.model.apply(x, { training: true }) as tf.Tensor;
        correct = tf.keep(correctCount(logits, labels));
        return crossEntropy(logits, yOneHot);
      }, varList));
    } finally {
      release();
    }
    this.applyUpdate(grads, varList, trainable, extras, optimizer);
    return [value, correct as tf.Scalar];
  }

  /** The run's hooks: its declared terms built for this model, then its own hooks. */
  private stepHooks(options: TrainOptions, labels: Int32Array): StepHook[] {
    this.reference = undefined;
    const hooks = (options.stepTerms ?? []).map((term) => stepHookFor(term, this.numClasses, labels));
    hooks.push(...(options.stepHooks ?? []));
    if (hooks.length === 0 && (options.frozen?.length ?? 0) > 0) hooks.push({});
    if (hooks.some((hook) => hook.prepare)) {
      const reference = new ReferenceBodies(this.split, this.refs);
      const bodies: StepHook = { prepare: () => undefined, dispose: () => reference.dispose() };
      this.reference = reference;
      hooks.push(bodies);
    }
    return hooks;
  }

  /**
   * One optimizer step with hooks: the forward pass goes through body and head so hooks see the
   * features; their loss terms join the cross-entropy inside the tape. Returns the batch's mean
   * cross-entropy (of the logits the loss sees) and its correct count (caller disposes).
   */
  private hookedStep(
    batch: { x: tf.Tensor; yOneHot: tf.Tensor; labels: tf.Tensor1D; size: number },
    run: { varList: tf.Variable[]; trainable: WeightRef[]; extras: StepExtras; optimizer: tf.Optimizer },
    hooks: readonly StepHook[],
    position: { epoch: number; epochs: number },
  ): [tf.Scalar, tf.Scalar] {
    const reference = this.reference;
    for (const hook of hooks) if (reference) hook.prepare?.(batch.x, reference);
    const variables = new Map(run.trainable.map((r, i) => [r.spec.name, run.varList[i]!] as const));
    let ctx: StepContext | undefined;
    let ce: tf.Scalar | undefined;
    let correct: tf.Scalar | undefined;
    const release = skipInputGradient(batch.x);
    let value: tf.Scalar;
    let grads: tf.NamedTensorMap;
    try {
      ({ value, grads } = tf.variableGrads(() => {
        const out = this.split.forward(batch.x, true);
        const features = tf.keep(tf.reshape(out.features, [batch.size, -1]) as tf.Tensor2D);
        ctx = { x: batch.x, labels: batch.labels, yOneHot: batch.yOneHot, features, logits: tf.keep(out.logits as tf.Tensor2D), ...position, variables };
        correct = tf.keep(correctCount(ctx.logits, batch.labels));
        let lossLogits = ctx.logits;
        for (const hook of hooks) if (hook.lossLogits) lossLogits = hook.lossLogits(lossLogits, ctx);
        ce = tf.keep(crossEntropy(lossLogits, batch.yOneHot));
        let loss: tf.Scalar = ce;
        for (const hook of hooks) {
          const term = hook.loss?.(ctx);
          if (term) loss = tf.add(loss, term);
        }
        return loss;
      }, run.varList));
    } finally {
      release();
    }
    if (value !== ce) value.dispose();
    this.applyUpdate(transformGradients(grads, run, hooks), run.varList, run.trainable, run.extras, run.optimizer);
    for (const hook of hooks) hook.afterStep?.(ctx!);
    tf.dispose([ctx!.features, ctx!.logits]);
    return [ce!, correct!];
  }

  /** Weight decay and the proximal term on top of `grads`, the optimizer step, SCAFFOLD's correction; disposes `grads`. */
  private applyUpdate(grads: tf.NamedTensorMap, varList: tf.Variable[], trainable: WeightRef[], extras: StepExtras, optimizer: tf.Optimizer): void {
    const adjusted = tf.tidy(() => {
      const out: tf.NamedTensorMap = {};
      varList.forEach((v, i) => {
        const key = v.name;
        let g = grads[key];
        const name = trainable[i].spec.name;
        if (g === undefined || extras.frozen.has(name)) return;
        if (extras.weightDecay > 0) g = tf.add(g, tf.mul(v, extras.weightDecay));
        const center = extras.centers.get(name);
        if (center !== undefined) g = tf.add(g, tf.mul(tf.sub(v, center), extras.proximalMu));
        out[key] = g;
      });
      return out;
    });
    optimizer.applyGradients(adjusted);
    const all = new Set([...Object.values(grads), ...Object.values(adjusted)]);
    tf.dispose([...all]);
    // SCAFFOLD's correction moves the weights directly, outside the optimizer (as NIID-Bench's
    // reference does): fed through momentum it would be amplified by 1/(1 - momentum) on top of
    // control variates that are already estimated from momentum-amplified steps, and diverge.
    // With plain SGD this equals adding the correction to the gradient (the paper's update).
    if (extras.corrections.size > 0) {
      tf.tidy(() => {
        varList.forEach((v, i) => {
          const correction = extras.corrections.get(trainable[i].spec.name);
          if (correction !== undefined && !extras.frozen.has(trainable[i].spec.name)) v.assign(tf.sub(v, tf.mul(correction, extras.lr)));
        });
      });
    }
  }

  private makeExtras(trainable: WeightRef[], options: TrainOptions, opts: { weightDecay: number; proximalMu: number; lr: number }): StepExtras {
    const centers = new Map<string, tf.Tensor>();
    const corrections = new Map<string, tf.Tensor>();
    for (const { spec } of trainable) {
      if (opts.proximalMu > 0 && options.proximalCenter !== undefined) {
        centers.set(spec.name, tf.tensor(options.proximalCenter.slice(spec.offset, spec.offset + spec.size), spec.shape, 'float32'));
      }
      if (options.gradientCorrection !== undefined) {
        corrections.set(spec.name, tf.tensor(options.gradientCorrection.slice(spec.offset, spec.offset + spec.size), spec.shape, 'float32'));
      }
    }
    return { weightDecay: opts.weightDecay, proximalMu: opts.proximalMu, lr: opts.lr, centers, corrections, frozen: new Set(options.frozen ?? []) };
  }

  private checkTrainOptions(o: TrainOptions, where: string): Required<Pick<TrainOptions, 'epochs' | 'batchSize' | 'lr' | 'optimizer' | 'momentum' | 'weightDecay' | 'proximalMu'>> {
    if (o === null || typeof o !== 'object') throw new Error(`${where}: options must be an object`);
    const nonNeg = (v: unknown, key: string, fallback: number): number => {
      if (v === undefined) return fallback;
      if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw new Error(`${where}: options.${key} must be a finite number >= 0, got ${String(v)}`);
      return v;
    };
    if (!Number.isInteger(o.epochs) || o.epochs < 0) throw new Error(`${where}: options.epochs must be an integer >= 0, got ${String(o.epochs)}`);
    if (!Number.isInteger(o.batchSize) || o.batchSize < 1) throw new Error(`${where}: options.batchSize must be an integer >= 1, got ${String(o.batchSize)}`);
    if (typeof o.lr !== 'number' || !Number.isFinite(o.lr) || o.lr <= 0) throw new Error(`${where}: options.lr must be a number > 0, got ${String(o.lr)}`);
    if (o.optimizer !== 'sgd' && o.optimizer !== 'adam') throw new Error(`${where}: options.optimizer must be 'sgd' or 'adam', got ${JSON.stringify(o.optimizer)}`);
    const momentum = nonNeg(o.momentum, 'momentum', 0);
    if (momentum >= 1) throw new Error(`${where}: options.momentum must be < 1, got ${momentum}`);
    const proximalMu = nonNeg(o.proximalMu, 'proximalMu', 0);
    if (proximalMu > 0 && o.proximalCenter === undefined) throw new Error(`${where}: options.proximalMu > 0 needs options.proximalCenter (the global weights)`);
    for (const key of ['proximalCenter', 'gradientCorrection'] as const) {
      const v = o[key];
      if (v === undefined) continue;
      if (!(v instanceof Float32Array) || v.length !== this.numParams) {
        throw new Error(`${where}: options.${key} must be a Float32Array of ${this.numParams} values (the full layout), got ${v instanceof Float32Array ? v.length + ' values' : typeof v}`);
      }
    }
    if (o.threads !== undefined && (!Number.isInteger(o.threads) || o.threads < 1)) throw new Error(`${where}: options.threads must be an integer >= 1, got ${String(o.threads)}`);
    if (o.parallelism !== undefined && !['auto', 'data', 'blas', 'none'].includes(o.parallelism)) {
      throw new Error(`${where}: options.parallelism must be 'auto', 'data', 'blas' or 'none', got ${JSON.stringify(o.parallelism)}`);
    }
    if (o.seed !== undefined && !Number.isFinite(o.seed)) throw new Error(`${where}: options.seed must be a finite number, got ${String(o.seed)}`);
    return { epochs: o.epochs, batchSize: o.batchSize, lr: o.lr, optimizer: o.optimizer, momentum, weightDecay: nonNeg(o.weightDecay, 'weightDecay', 0), proximalMu };
  }

  private checkAlive(what: string): void {
    if (this.disposed) throw new Error(`${what}(${this.type}): the model has been disposed`);
  }
}

function makeOptimizer(o: { optimizer: 'sgd' | 'adam'; lr: number; momentum: number }): tf.Optimizer {
  if (o.optimizer === 'adam') return tf.train.adam(o.lr, 0.9, 0.999, 1e-8);
  return o.momentum > 0 ? tf.train.momentum(o.lr, o.momentum) : tf.train.sgd(o.lr);
}

/**
 * tfjs 4.22's MomentumOptimizer.dispose forgets the learning-rate scalar its SGD base keeps,
 * leaking one tensor per optimizer; free it here.
 */
function disposeOptimizer(optimizer: tf.Optimizer): void {
  const c = (optimizer as unknown as { c?: tf.Tensor }).c;
  optimizer.dispose();
  if (c !== undefined && !c.isDisposed) c.dispose();
}

/** `grads` after each hook's `transformGradient`, keyed as before; disposes what it replaces. */
function transformGradients(grads: tf.NamedTensorMap, run: { varList: tf.Variable[]; trainable: WeightRef[] }, hooks: readonly StepHook[]): tf.NamedTensorMap {
  const transforms = hooks.filter((hook) => hook.transformGradient);
  if (transforms.length === 0) return grads;
  const out = tf.tidy(() => {
    const next: tf.NamedTensorMap = {};
    run.varList.forEach((v, i) => {
      let g = grads[v.name];
      if (g === undefined) return;
      for (const hook of transforms) g = hook.transformGradient!(run.trainable[i]!.spec.name, g, v);
      next[v.name] = g;
    });
    return next;
  });
  const kept = new Set(Object.values(out));
  tf.dispose(Object.values(grads).filter((g) => !kept.has(g)));
  return out;
}

/** The run's outputs from its hooks, or undefined when none has any. */
function collectOutputs(hooks: readonly StepHook[]): Record<string, Float32Array> | undefined {
  let outputs: Record<string, Float32Array> | undefined;
  for (const hook of hooks) {
    const produced = hook.outputs?.();
    if (produced) outputs = { ...outputs, ...produced };
  }
  return outputs;
}
