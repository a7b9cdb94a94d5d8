/**
 * The client side of a federation: trains the received global model on this node's private
 * partition and returns the update. What an algorithm changes on the learner (FedProx's proximal
 * term, SCAFFOLD's corrected gradient, FedBN's local normalisation) is a registered learner
 * algorithm (learner-algorithms/): the one `learner.type` names, plus those the trainer's
 * instructions switch on, so choosing an aggregator in the trainer's config is enough.
 */
import type { TensorSpec } from '@oiafed/aggregators';
import type { ArrayDataset } from '@oiafed/datasets';
import type { FedModel, TrainOptions, TrainResult } from '@oiafed/models';
import type { CallContext, Payload, Transport } from '@oiafed/transport';
import { errorMessage, silentLogger, type Logger } from './logger.js';
import { compressUpdate, type UpdateCompression } from './compression.js';
import { LearnerAlgorithms } from './learner-algorithms/learner-algorithms.js';
import { learnerCapabilities } from './learner-algorithms/registry.js';
import type { LocalRun, LocalRunRequest } from './learner-algorithms/types.js';
import type { LocalTrainingSettings } from './learner-algorithms/types.js';
import { Mutex } from './mutex.js';
import { SECURE_AGGREGATION_CAPABILITY } from './secure-aggregation.js';
import { serveSecureAggregation } from './secure-aggregation-learner.js';
import { evaluatePersonalizedModel } from './personalized-eval.js';
import {
  LearnerMethods,
  TrainerMethods,
  type EvaluateRequestBody,
  type EvaluateResponseBody,
  type InfoResponseBody,
  type LearnerStatusBody,
  type ModelSpecBody,
  type ShutdownBody,
  type TrainRequestBody,
  type TrainResponseBody,
} from './protocol.js';
import { PayloadMismatchError, extrasToTensors, tensorsToExtras, tensorsToWeights, weightsToTensors } from './serde.js';

export interface LearnerSettings {
  batchSize: number;
  lr: number;
  optimizer: 'sgd' | 'adam';
  momentum: number;
  weightDecay: number;
  /** Overrides the trainer's local_epochs when set. */
  localEpochs?: number;
  evalBatchSize?: number;
  /** Threads local training uses (data-parallel on the wasm backend); default 1. */
  threads?: number;
}

export interface LearnerOptions {
  nodeId: string;
  transport: Transport;
  /** The local model; when absent it is built from the trainer's model spec on the first request. */
  model?: FedModel;
  createModel?: (spec: ModelSpecBody) => FedModel;
  trainData: ArrayDataset;
  testData?: ArrayDataset;
  /**
   * This learner's own held-out split (`partition.test_fraction`): the trainer asks it to
   * evaluate its personalized model there at evaluation rounds (personalized-eval.ts).
   */
  localTestData?: ArrayDataset;
  settings: LearnerSettings;
  seed: number;
  /** `learner.type`: the registered learner algorithm this learner runs (default: `default`, plain SGD). */
  learnerType?: string;
  /** The algorithm's own `learner.args` (validated by its schema). */
  algorithmArgs?: Record<string, unknown>;
  backend?: string;
  logger?: Logger;
  /** Shared between virtual learners that share one model (serial mode). */
  modelLock?: Mutex;
  /**
   * Runs local training elsewhere (serial mode's learner pool: a worker thread with its own
   * backend), leaving the trained weights in the model; `model.train` here when absent.
   */
  trainPool?: { train(model: FedModel, data: ArrayDataset, options: TrainOptions): Promise<TrainResult> };
  onTrainEnd?: (info: { round: number; seconds: number; samplesPerSecond: number }) => void;
  onEpochEnd?: (info: { round: number; epoch: number; epochs: number; loss: number; accuracy: number }) => void;
  /**
   * How the update travels (`transport.update_compression`); default none. Anything else sends
   * the delta to the round's global model, encoded, with error feedback for int8 and top-k.
   */
  compression?: UpdateCompression;
}

/** Per-learner state that outlives a round (algorithms keep theirs in their own instances). */
interface LocalState {
  /** Error feedback: what update compression dropped so far (int8, top-k). */
  compressionResidual?: Float32Array;
}

export class Learner {
  private readonly logger: Logger;
  private readonly lock: Mutex;
  private readonly state: LocalState = {};
  private readonly finished: Promise<ShutdownBody>;
  private resolveFinished!: (body: ShutdownBody) => void;
  private roundsTrained = 0;
  private model: FedModel | undefined;
  /** The compute plan line last logged (logged once, again only when it changes). */
  private loggedPlan?: string;
  private readonly algorithms: LearnerAlgorithms;

  constructor(private readonly options: LearnerOptions) {
    this.logger = options.logger ?? silentLogger;
    this.algorithms = new LearnerAlgorithms({ type: options.learnerType ?? 'default', args: options.algorithmArgs });
    this.lock = options.modelLock ?? new Mutex();
    this.model = options.model;
    this.finished = new Promise((resolve) => (this.resolveFinished = resolve));
    const { transport } = options;
    transport.handle(LearnerMethods.train, (payload, ctx) => this.onTrain(payload, ctx));
    transport.handle(LearnerMethods.evaluate, (payload) => this.onEvaluate(payload));
    transport.handle(LearnerMethods.evaluatePersonalized, (payload, ctx) => this.onEvaluatePersonalized(payload, ctx));
    transport.handle(LearnerMethods.info, () => ({ body: this.info() }));
    // SecAgg+ stages (issue 16 §1): the masked-input stage runs this learner's ordinary training.
    const secureHost = { numSamples: options.trainData.length, train: (p: Payload, c: CallContext) => this.onTrain(p, c), modelLayout: () => this.model?.layout };
    serveSecureAggregation(options.nodeId, transport, secureHost, this.logger);
    transport.handle(LearnerMethods.shutdown, (payload) => {
      const body = (payload.body ?? { reason: 'trainer finished' }) as ShutdownBody;
      this.logger.info(`trainer asked this learner to stop: ${body.reason}`);
      this.resolveFinished(body);
      return {};
    });
  }

  get numSamples(): number {
    return this.options.trainData.length;
  }

  get rounds(): number {
    return this.roundsTrained;
  }

  info(): InfoResponseBody {
    return {
      node_id: this.options.nodeId,
      learner_type: this.options.learnerType ?? 'default',
      num_samples: this.numSamples,
      backend: this.options.backend ?? 'unknown',
      capabilities: [...learnerCapabilities(), SECURE_AGGREGATION_CAPABILITY],
    };
  }

  /** Resolves when the trainer says the federation is over (or `stop` is called). */
  whenFinished(): Promise<ShutdownBody> {
    return this.finished;
  }

  stop(reason: string): void {
    this.resolveFinished({ reason });
  }

  /** The model in use, if one was built yet. */
  currentModel(): FedModel | undefined {
    return this.model;
  }

  private ensureModel(spec: ModelSpecBody | undefined): FedModel {
    if (this.model) return this.model;
    if (!spec || typeof spec.type !== 'string') {
      throw new PayloadMismatchError('this learner has no model config and the request names no model');
    }
    if (!this.options.createModel) throw new PayloadMismatchError('this learner cannot build models');
    this.model = this.options.createModel(spec);
    this.logger.info(`built model ${spec.type} (${this.model.numParams} parameters) from the trainer's spec`);
    return this.model;
  }

  private async onTrain(payload: Payload, ctx: CallContext): Promise<Payload> {
    const request = payload.body as TrainRequestBody;
    if (!request || typeof request.round !== 'number') {
      throw new PayloadMismatchError('train request has no round');
    }
    const { settings, trainData } = this.options;
    const model = this.ensureModel(request.model);
    const global = tensorsToWeights(payload.tensors, model.layout);
    const extras = tensorsToExtras(payload.tensors, global.length);
    const active = this.algorithms.forRound(request.instructions ?? {});
    return this.lock.runExclusive(async () => {
      const start = this.algorithms.startWeights(global, model.layout, active);
      const trainOptions = this.trainOptions(request, ctx);
      const { epochs, batchSize, lr, optimizer } = trainOptions;
      const localSettings = { epochs, batchSize, lr, optimizer, momentum: settings.momentum, weightDecay: settings.weightDecay };
      const round = { round: request.round, global, layout: model.layout, tensors: extras, settings: localSettings, numSamples: trainData.length };
      Object.assign(trainOptions, this.algorithms.beforeTraining(active, round));

      const { weights: local, result } = await this.algorithms.localTraining(active, { ...round, start }, (run) =>
        this.runLocal(model, trainOptions, run),
      );
      const added = this.algorithms.afterTraining(active, { ...round, local, result });
      const sent = this.algorithms.updateToSend(active, { ...round, local, result });
      this.roundsTrained += 1;
      this.options.onTrainEnd?.({ round: request.round, seconds: result.seconds, samplesPerSecond: result.samplesPerSecond });
      this.logger.info(
        `round ${request.round}: trained ${result.numSamples} samples x ${trainOptions.epochs} epochs in ${result.seconds.toFixed(2)}s ` +
          `(${result.samplesPerSecond.toFixed(0)} samples/s), loss ${result.loss.toFixed(4)}, accuracy ${(result.accuracy * 100).toFixed(1)}%`,
      );
      const body: TrainResponseBody = {
        round: request.round,
        num_samples: trainData.length,
        local_steps: result.steps,
        metrics: {
          loss: result.loss,
          accuracy: result.accuracy,
          seconds: result.seconds,
          samples_per_second: result.samplesPerSecond,
        },
        meta: { momentum: settings.optimizer === 'sgd' ? settings.momentum : 0, lr: settings.lr, ...added.meta },
      };
      const compression = effectiveCompression(this.options.compression, request.config?.update_compression);
      if (request.config?.report_status) await this.reportUploading(ctx.source, request.round);
      return {
        body,
        tensors: [...this.encodeWeights(sent, global, model.layout, compression), ...extrasToTensors(added.extras)],
      };
    });
  }

  /** One local training run on this learner's data: from `run.start`, the round's options overridden by the run's. */
  private async runLocal(model: FedModel, base: TrainOptions, run: LocalRunRequest): Promise<LocalRun> {
    const { start, epochs, ...adjustments } = run;
    model.setWeights(start);
    const options: TrainOptions = { ...base, ...adjustments, epochs: epochs ?? base.epochs };
    const pool = this.options.trainPool;
    const result = pool ? await pool.train(model, this.options.trainData, options) : await model.train(this.options.trainData, options);
    this.logComputePlan(result.plan);
    return { weights: model.getWeights(), result };
  }

  /** Logs how training spends its threads (FedModel's compute plan) the first time, and whenever it changes. */
  private logComputePlan(plan: TrainResult['plan']): void {
    if (plan === undefined) return;
    const line = `compute plan: ${plan.dataParallel} data-parallel thread(s) x ${plan.blasThreads} OpenBLAS thread(s) (${plan.reason})`;
    if (line === this.loggedPlan) return;
    this.loggedPlan = line;
    this.logger.info(line);
  }

  /**
   * Tells the trainer (dashboard) that training is done and the update is on its way. Awaited, so
   * the notice (its own RPC) reaches the trainer before the update; best effort and capped at 2 s.
   */
  private async reportUploading(trainer: string, round: number): Promise<void> {
    const body: LearnerStatusBody = { round, state: 'uploading' };
    let timer: NodeJS.Timeout | undefined;
    const sent = this.options.transport
      .notify(trainer, TrainerMethods.learnerStatus, { body })
      .catch((error) => this.logger.debug(`status notice to ${trainer} failed: ${errorMessage(error)}`));
    await Promise.race([sent, new Promise<void>((resolve) => (timer = setTimeout(resolve, 2000)))]);
    clearTimeout(timer);
  }

  /** The round's local training settings: the learner's own, epochs from the trainer unless set here. */
  private trainOptions(request: TrainRequestBody, ctx: CallContext): TrainOptions {
    const { settings } = this.options;
    const trainOptions: TrainOptions = {
      epochs: settings.localEpochs ?? request.config?.local_epochs ?? 1,
      batchSize: settings.batchSize,
      lr: settings.lr,
      optimizer: settings.optimizer,
      momentum: settings.momentum,
      weightDecay: settings.weightDecay,
      seed: this.options.seed * 7919 + request.round,
      threads: settings.threads,
      signal: ctx.signal,
    };
    trainOptions.onEpochEnd = (epoch, logs) =>
      this.options.onEpochEnd?.({ round: request.round, epoch: epoch + 1, epochs: trainOptions.epochs, ...logs });
    return trainOptions;
  }

  private encodeWeights(
    local: Float32Array,
    global: Float32Array,
    layout: readonly TensorSpec[],
    compression: UpdateCompression | undefined,
  ) {
    if (!compression || compression.type === 'none') return weightsToTensors(local, layout);
    let residual: Float32Array | undefined;
    if (compression.type === 'int8' || compression.type === 'topk') {
      residual = this.state.compressionResidual;
      if (!residual || residual.length !== local.length) residual = this.state.compressionResidual = new Float32Array(local.length);
    }
    return compressUpdate(local, global, layout, compression, residual);
  }

  /** The personalized model (global + what stays local, or the algorithm's own) on this learner's own split. */
  private async onEvaluatePersonalized(payload: Payload, ctx: CallContext): Promise<Payload> {
    const request = payload.body as EvaluateRequestBody;
    const testData = this.options.localTestData;
    if (!testData || testData.length === 0) throw new PayloadMismatchError('this learner holds no test split of its own (partition.test_fraction)');
    if (!request || typeof request.round !== 'number') throw new PayloadMismatchError('personalized evaluation request has no round');
    const model = this.ensureModel(request.model);
    const global = tensorsToWeights(payload.tensors, model.layout);
    const { settings } = this.options;
    const trainOptions = this.trainOptions({ round: request.round, model: request.model, config: { local_epochs: settings.localEpochs ?? 1 }, instructions: {} }, ctx);
    const pool = this.options.trainPool;
    return this.lock.runExclusive(async () => {
      const body = await evaluatePersonalizedModel({
        round: request.round,
        global,
        model,
        algorithms: this.algorithms,
        trainData: this.options.trainData,
        testData,
        settings: fineTuneSettings(trainOptions),
        trainOptions,
        train: (m, data, options) => (pool ? pool.train(m, data, options) : m.train(data, options)),
        evalBatchSize: settings.evalBatchSize ?? 256,
        threads: settings.threads,
      });
      return { body };
    });
  }

  private async onEvaluate(payload: Payload): Promise<Payload> {
    const request = payload.body as EvaluateRequestBody;
    const { testData, trainData } = this.options;
    const model = this.ensureModel(request?.model);
    const data = testData && testData.length > 0 ? testData : trainData;
    const global = tensorsToWeights(payload.tensors, model.layout);
    return this.lock.runExclusive(async () => {
      model.setWeights(this.algorithms.evaluationWeights(global, model.layout));
      try {
        const result = await model.evaluate(data, { batchSize: this.options.settings.evalBatchSize ?? 256, threads: this.options.settings.threads });
        const body: EvaluateResponseBody = {
          round: request?.round ?? 0,
          num_samples: result.numSamples,
          loss: result.loss,
          accuracy: result.accuracy,
        };
        return { body };
      } catch (error) {
        this.logger.error(`evaluation failed: ${errorMessage(error)}`);
        throw error;
      }
    });
  }
}

/** The settings a personalization hook's fine-tuning starts from. */
function fineTuneSettings(options: TrainOptions): LocalTrainingSettings {
  const { epochs, batchSize, lr, optimizer } = options;
  return { epochs, batchSize, lr, optimizer, momentum: options.momentum ?? 0, weightDecay: options.weightDecay ?? 0 };
}

function effectiveCompression(
  own: UpdateCompression | undefined,
  requested: UpdateCompression | undefined,
): UpdateCompression | undefined {
  if (own && own.type !== 'none') return own;
  return requested;
}
