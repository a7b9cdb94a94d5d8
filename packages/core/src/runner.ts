/**
 * Runs nodes from their configs: one trainer or learner per process (parallel and distributed
 * modes), or a whole federation in one process over the memory transport (serial mode).
 */
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import type { NodeConfig } from '@oiafed/config';
import { LearnerPool, type FedModel } from '@oiafed/models';
import {
  RunHistory,
  createNodeMetrics,
  startObservability,
  type Logger as TrackerLogger,
  type NodeMetrics,
  type ObservabilityServer,
} from '@oiafed/tracker';
import { MemoryHub, type Transport } from '@oiafed/transport';
import { createCallback } from './callbacks.js';
import { readLatestCheckpoint, writeCheckpoint } from './checkpoint.js';
import {
  buildAggregator,
  buildModel,
  buildTransport,
  createNodeLogger,
  loadNodeData,
  prepareNode,
  selectComputeBackend,
  type NodeData,
} from './build.js';
import { startDashboardFeed } from './dashboard-feed.js';
import { deriveLearnerConfig, withPartitionCount } from './derive.js';
import { Learner, type LearnerOptions } from './learner.js';
import { recordLocalTraining, trackTransportBytes } from './learner-metrics.js';
import { learnerEpochProgress, trainerProgress, watchRegistrations } from './progress.js';
import { errorMessage } from './logger.js';
import { Mutex } from './mutex.js';
import { learnerAlgorithmArgs, learnerCapabilities } from './learner-algorithms/registry.js';
import { RegistrationKeys } from './protocol.js';
import { SECURE_AGGREGATION_CAPABILITY, secureAggregationSettings } from './secure-aggregation.js';
import { Trainer, type TrainerOptions, type TrainingSummary } from './trainer.js';
import { attachWebLearners } from './web-learners.js';

export interface RunOptions {
  logger?: TrackerLogger;
  /** Round lines and the final summary; the apps print them on stdout. */
  report?: (line: string) => void;
  signal?: AbortSignal;
  /** Set in serial mode: all nodes share this in-process hub. */
  hub?: MemoryHub;
  /** Called once the node's transport is up (the trainer's port is known then). */
  onListening?: (info: { port?: number }) => void;
  /** Continue from the newest checkpoint in checkpoint.dir (same as `checkpoint.resume: true`). */
  resume?: boolean;
  /** The trainer folds updates in learner-id order (see TrainerOptions.foldInLearnerOrder). */
  foldInLearnerOrder?: boolean;
  /** Evaluates the trainer's global model (serial mode: the learner pool, whose workers are idle then). */
  evaluator?: TrainerOptions['evaluator'];
}

export interface LearnerRunResult {
  nodeId: string;
  rounds: number;
  reason: string;
}

export function defaultRunDir(config: NodeConfig): string {
  return config.tracker.run_dir ?? join('runs', config.exp_name);
}

async function startNodeObservability(
  config: NodeConfig,
  metrics: NodeMetrics,
  status: () => { live: boolean; ready: boolean; detail?: Record<string, unknown> },
  logger: TrackerLogger,
): Promise<ObservabilityServer | undefined> {
  if (!config.metrics.enabled && !config.health.enabled) return undefined;
  const server = await startObservability({ metrics: config.metrics, health: config.health, nodeMetrics: metrics, status, logger });
  if (server.metricsPort !== undefined) logger.info(`metrics on :${server.metricsPort}/metrics`);
  if (server.healthPort !== undefined) logger.info(`health on :${server.healthPort}/health and /ready`);
  return server;
}

function trackPeers(transport: Transport, metrics: NodeMetrics, logger: TrackerLogger): void {
  const update = () => {
    const learners = transport.peers().filter((p) => p.role === 'learner').length;
    metrics.learnersRegistered.set(learners);
    metrics.learnersAlive.set(learners);
  };
  transport.on('peer-joined', (peer) => {
    logger.info(`learner ${peer.nodeId} registered`, { peer: peer.nodeId, backend: peer.metadata[RegistrationKeys.backend] });
    update();
  });
  transport.on('peer-left', (peer) => {
    logger.warn(`learner ${peer.nodeId} left`, { peer: peer.nodeId });
    update();
  });
}

function resumePoint(
  config: NodeConfig,
  options: RunOptions,
  model: FedModel,
  aggregator: ReturnType<typeof buildAggregator>,
  logger: TrackerLogger,
) {
  if (!options.resume && !config.checkpoint.resume) return undefined;
  const checkpoint = readLatestCheckpoint(config.checkpoint.dir);
  if (!checkpoint) {
    logger.warn(`resume requested but ${config.checkpoint.dir} holds no checkpoint; starting from round 1`);
    return undefined;
  }
  const layoutMatches =
    checkpoint.layout.length === model.layout.length &&
    checkpoint.layout.every((spec, i) => spec.name === model.layout[i]!.name && spec.size === model.layout[i]!.size);
  if (!layoutMatches) {
    throw new Error(`${config.checkpoint.dir}: checkpoint of round ${checkpoint.round} was written for another model than ${config.model?.type}`);
  }
  if (checkpoint.aggregatorType !== aggregator.type) {
    throw new Error(
      `${config.checkpoint.dir}: checkpoint was written by aggregator "${checkpoint.aggregatorType}", this run uses "${aggregator.type}"`,
    );
  }
  aggregator.setState(checkpoint.aggregatorState);
  logger.info(`resuming from the checkpoint of round ${checkpoint.round} in ${config.checkpoint.dir}`);
  return checkpoint;
}

/** Runs a trainer until max_rounds, an early stop or the signal; returns the training summary. */
export async function runTrainerNode(config: NodeConfig, options: RunOptions = {}): Promise<TrainingSummary> {
  const logger = options.logger ?? createNodeLogger(config);
  await prepareNode(config, logger);
  const backend = await selectComputeBackend(config, logger);
  const data = await loadNodeData(config, logger);
  const model = buildModel(config, data);
  const aggregator = buildAggregator(config);
  const metrics = createNodeMetrics({ nodeId: config.node_id, role: config.role, collectProcessMetrics: !options.hub });
  metrics.setComputeBackend(backend.backend, backend.device);
  const transport = buildTransport(config, { hub: options.hub, logger });
  const runDir = defaultRunDir(config);
  const history = new RunHistory(runDir);
  const callbacks = [...config.callbacks.map((c) => createCallback(c, { runDir })), trainerProgress()];
  const resumeFrom = resumePoint(config, options, model, aggregator, logger);
  let lastRound = resumeFrom?.round ?? 0;
  const saveCheckpoint = () => {
    if (lastRound === 0 || !trainer) return;
    const file = writeCheckpoint(
      config.checkpoint.dir,
      {
        round: lastRound,
        weights: trainer.globalWeights(),
        layout: model.layout,
        aggregatorType: aggregator.type,
        aggregatorState: aggregator.getState(),
        seed: config.seed,
        expName: config.exp_name,
      },
      config.checkpoint.keep,
    );
    logger.info(`checkpoint of round ${lastRound} written to ${file}`);
  };
  let listening = false;
  let trainer: Trainer | undefined;
  const observability = await startNodeObservability(
    config,
    metrics,
    () => ({ live: true, ready: listening, detail: { role: 'trainer', learners: trainer?.learners().length ?? 0 } }),
    logger,
  );
  trackPeers(transport, metrics, logger);
  const dashboard = await startDashboardFeed(config, { runDir, aggregator: aggregator.type, metricsPort: observability?.metricsPort }, logger);
  // Before the dashboard's wrapper: browser learners attach to the GrpcTransport itself (closed by transport.stop()).
  attachWebLearners(config, dashboard?.server, transport, logger);
  logger.info(
    `trainer ${config.node_id}: model ${config.model?.type} (${model.numParams} parameters), aggregator ${aggregator.type}, ` +
      `backend ${backend.backend} on ${backend.device}, ${data.test ? `${data.test.length} test samples` : 'evaluation by learners'}`,
  );
  let stopWaiting = () => {};
  try {
    await transport.start();
    listening = true;
    stopWaiting = watchRegistrations(transport, config.trainer.args.min_available_clients ?? config.trainer.args.min_clients);
    options.onListening?.({ port: transport.boundPort });
    trainer = new Trainer({
      nodeId: config.node_id,
      transport: dashboard ? dashboard.observe(transport) : transport,
      model,
      modelSpec: { type: config.model!.type, args: { seed: config.seed, ...config.model!.args } },
      aggregator,
      settings: {
        maxRounds: config.trainer.args.max_rounds,
        localEpochs: config.trainer.args.local_epochs,
        clientFraction: config.trainer.args.client_fraction,
        minClients: config.trainer.args.min_clients,
        minAvailableClients: config.trainer.args.min_available_clients,
        evalEvery: config.trainer.args.eval_every,
        roundTimeoutS: config.trainer.args.round_timeout,
        registrationTimeoutS: config.trainer.args.registration_timeout,
        updateCompression: config.transport.update_compression,
        updateNormClip: config.trainer.args.update_norm_clip,
        secureAggregation: secureAggregationSettings(config),
      },
      seed: config.seed,
      testData: data.test,
      // Evaluation of the global model uses every core too (learner.args.threads of this config).
      evalThreads: config.learner.args.threads ?? availableParallelism(),
      evaluator: options.evaluator,
      logger,
      metrics,
      history,
      callbacks: dashboard ? [...callbacks, dashboard.callback] : callbacks,
      report: options.report,
      signal: options.signal,
      foldInLearnerOrder: options.foldInLearnerOrder,
      initialWeights: resumeFrom?.weights,
      startRound: lastRound + 1,
      onRoundComplete: ({ round }) => {
        lastRound = round;
        const every = config.trainer.args.checkpoint_every;
        if (every > 0 && round % every === 0) saveCheckpoint();
      },
    });
    const summary = await trainer.run().catch((error: unknown) => {
      dashboard?.finish(error);
      throw error;
    });
    dashboard?.finish(undefined, summary.stoppedBy === 'max_rounds' ? undefined : (summary.stopReason ?? summary.stoppedBy));
    // SIGTERM (Kubernetes) or Ctrl-C: keep what was learned so `--resume` continues from here.
    if (summary.stoppedBy === 'aborted') saveCheckpoint();
    history.writeSummary({
      exp_name: config.exp_name,
      node_id: config.node_id,
      rounds: summary.rounds.length,
      final_accuracy: summary.finalAccuracy,
      final_loss: summary.finalLoss,
      ...(summary.finalPersonalizedAccuracy === undefined ? {} : { final_personalized_accuracy: summary.finalPersonalizedAccuracy }),
      stopped_by: summary.stoppedBy,
      stop_reason: summary.stopReason,
      seconds: summary.seconds,
      backend: backend.backend,
    });
    return summary;
  } finally {
    stopWaiting();
    await trainer?.shutdownLearners('training finished').catch(() => undefined);
    await transport.stop().catch((error) => logger.warn(`transport stop: ${errorMessage(error)}`));
    await observability?.close();
    await dashboard?.close();
    model.dispose();
    await logger.flush();
  }
}

interface LearnerBuild {
  learner: Learner;
  transport: Transport;
  /** Undefined until built: a learner without a model section builds it from the trainer's spec. */
  model: () => FedModel | undefined;
  ownsModel: boolean;
}

async function buildLearner(
  config: NodeConfig,
  logger: TrackerLogger,
  backendName: string,
  options: {
    hub?: MemoryHub;
    sharedModel?: FedModel;
    modelLock?: Mutex;
    trainPool?: LearnerOptions['trainPool'];
    data?: NodeData;
    onTrainEnd?: LearnerOptions['onTrainEnd'];
    onEpochEnd?: LearnerOptions['onEpochEnd'];
  },
): Promise<LearnerBuild> {
  const data = options.data ?? (await loadNodeData(config, logger));
  if (!data.train || data.train.length === 0) {
    throw new Error(`${config.node_id}: no training data (datasets[] needs a train split for a learner)`);
  }
  const model = options.sharedModel ?? (config.model ? buildModel(config, data) : undefined);
  const createModelFromSpec = (spec: { type: string; args: Record<string, unknown> }) =>
    buildModel({ ...config, model: { type: spec.type, args: spec.args } }, data);
  const transport = buildTransport(config, {
    hub: options.hub,
    logger,
    metadata: {
      [RegistrationKeys.learnerType]: config.learner.type,
      // Every learner algorithm registered here (built-ins and plugins) announces the instructions it owns.
      [RegistrationKeys.capabilities]: [...learnerCapabilities(), SECURE_AGGREGATION_CAPABILITY].join(','),
      [RegistrationKeys.numSamples]: String(data.train.length),
      [RegistrationKeys.backend]: backendName,
      // The trainer asks only learners holding a split of their own for personalized evaluation.
      ...(data.localTest?.length ? { [RegistrationKeys.localTestSamples]: String(data.localTest.length) } : {}),
    },
  });
  const args = config.learner.args;
  const learner = new Learner({
    nodeId: config.node_id,
    transport,
    model,
    createModel: createModelFromSpec,
    trainData: data.train,
    testData: data.test,
    localTestData: data.localTest,
    settings: {
      batchSize: args.batch_size,
      lr: args.lr,
      optimizer: args.optimizer,
      momentum: args.momentum,
      weightDecay: args.weight_decay,
      localEpochs: args.local_epochs,
      // All cores unless the config says otherwise (serial mode's learners share one model and take turns).
      threads: args.threads ?? availableParallelism(),
    },
    seed: config.seed,
    learnerType: config.learner.type,
    algorithmArgs: learnerAlgorithmArgs(args, config.learner.type),
    backend: backendName,
    logger,
    modelLock: options.modelLock,
    trainPool: options.trainPool,
    compression: config.transport.update_compression,
    onTrainEnd: options.onTrainEnd,
    onEpochEnd: options.onEpochEnd,
  });
  return { learner, transport, model: () => learner.currentModel(), ownsModel: !options.sharedModel };
}

/**
 * Starts a transport whose first dial may retry for minutes (retry.max_attempts); a stop request
 * meanwhile ends the dialing at once. False when the signal stopped it.
 */
async function startUnlessStopped(transport: Transport, signal: AbortSignal | undefined): Promise<boolean> {
  if (signal?.aborted) return false;
  const stop = () => void transport.stop().catch(() => undefined);
  signal?.addEventListener('abort', stop, { once: true });
  try {
    await transport.start();
    return !signal?.aborted;
  } catch (error) {
    if (signal?.aborted) return false;
    throw error;
  } finally {
    signal?.removeEventListener('abort', stop);
  }
}

/** Runs a learner until the trainer ends the federation, the trainer is lost for good, or the signal. */
export async function runLearnerNode(config: NodeConfig, options: RunOptions = {}): Promise<LearnerRunResult> {
  const logger = options.logger ?? createNodeLogger(config);
  await prepareNode(config, logger);
  const backend = await selectComputeBackend(config, logger);
  const metrics = createNodeMetrics({ nodeId: config.node_id, role: config.role, collectProcessMetrics: !options.hub });
  metrics.setComputeBackend(backend.backend, backend.device);
  const built = await buildLearner(config, logger, backend.backend, {
    hub: options.hub,
    onTrainEnd: recordLocalTraining(metrics, config.node_id),
    onEpochEnd: learnerEpochProgress(),
  });
  trackTransportBytes(metrics, built.transport);
  let registered = false;
  const observability = await startNodeObservability(
    config,
    metrics,
    () => ({ live: true, ready: registered, detail: { role: 'learner', backend: backend.backend, rounds: built.learner.rounds } }),
    logger,
  );
  const { learner, transport } = built;
  // The transport redials a lost trainer by itself; the learner gives up only when the trainer
  // stays away longer than the retry policy could ever wait (max_attempts x max_delay).
  const giveUpMs = (config.retry.max_attempts * config.retry.max_delay + config.heartbeat.timeout) * 1000;
  let giveUpTimer: NodeJS.Timeout | undefined;
  const lost = new Promise<string>((resolve) => {
    transport.on('disconnected', () => {
      registered = false;
      logger.warn(`lost the trainer; reconnecting (giving up after ${Math.round(giveUpMs / 1000)}s)`);
      clearTimeout(giveUpTimer);
      giveUpTimer = setTimeout(
        () => resolve(`lost the trainer: not back within ${Math.round(giveUpMs / 1000)}s (retry.max_attempts x retry.max_delay)`),
        giveUpMs,
      );
    });
  });
  transport.on('reconnected', () => {
    registered = true;
    clearTimeout(giveUpTimer);
    logger.info('re-registered with the trainer');
  });
  const aborted = new Promise<string>((resolve) => {
    if (options.signal?.aborted) resolve('stopped by signal');
    options.signal?.addEventListener('abort', () => resolve('stopped by signal'), { once: true });
  });
  logger.info(
    `learner ${config.node_id}: ${built.learner.numSamples} training samples, model ${config.model?.type} ` +
      `(${built.model()?.numParams ?? 'built on first round'} parameters), backend ${backend.backend} on ${backend.device}`,
  );
  try {
    if (!(await startUnlessStopped(transport, options.signal))) {
      logger.info(`learner ${config.node_id} stopped by signal before it registered`);
      return { nodeId: config.node_id, rounds: 0, reason: 'stopped by signal' };
    }
    registered = true;
    options.onListening?.({ port: transport.boundPort });
    const reason = await Promise.race([learner.whenFinished().then((b) => b.reason), lost, aborted]);
    logger.info(`learner ${config.node_id} finished after ${learner.rounds} rounds: ${reason}`);
    return { nodeId: config.node_id, rounds: learner.rounds, reason };
  } finally {
    clearTimeout(giveUpTimer);
    await transport.stop().catch((error) => logger.warn(`transport stop: ${errorMessage(error)}`));
    await observability?.close();
    if (built.ownsModel) built.model()?.dispose();
    await logger.flush();
  }
}

/** Runs the node its config's role names. */
export async function runNode(
  config: NodeConfig,
  options: RunOptions = {},
): Promise<{ role: 'trainer'; summary: TrainingSummary } | { role: 'learner'; result: LearnerRunResult }> {
  if (config.role === 'trainer') return { role: 'trainer', summary: await runTrainerNode(config, options) };
  return { role: 'learner', result: await runLearnerNode(config, options) };
}

export interface SerialOptions extends RunOptions {
  numClients: number;
  /**
   * Train this many learners at a time, each on a worker thread of its own (one thread each),
   * instead of one after another on a shared model (each then using learner.args.threads). Every
   * learner gets its own model; the aggregate is bit-identical to the sequential run (the trainer
   * folds updates in learner-id order). 0 or absent: sequential.
   */
  learnerPool?: number;
}

/**
 * A whole federation in one process: the trainer and `numClients` virtual learners over the
 * memory transport. Learners share one model instance and one tfjs backend (a lock keeps their
 * training from interleaving), so memory grows with data, not with the number of learners.
 */
export async function runSerial(trainerConfig: NodeConfig, options: SerialOptions): Promise<TrainingSummary> {
  if (trainerConfig.role !== 'trainer') {
    throw new Error(`serial mode starts from a trainer config; ${trainerConfig.node_id} has role "${trainerConfig.role}"`);
  }
  if (!Number.isInteger(options.numClients) || options.numClients < 1) {
    throw new Error(`--num-clients must be an integer >= 1, got ${options.numClients}`);
  }
  const hub = options.hub ?? new MemoryHub();
  const memory = { ...trainerConfig.transport, mode: 'memory' as const };
  const trainer = { ...withPartitionCount(trainerConfig, options.numClients), transport: memory };
  const logger = options.logger ?? createNodeLogger(trainer);
  // Plugins first: the learners below load data and build models of types a plugin may register.
  await prepareNode(trainer, logger);
  const backend = await selectComputeBackend({ ...trainer, role: 'learner' }, logger);
  const learnerConfigs = Array.from({ length: options.numClients }, (_, i) => ({
    ...deriveLearnerConfig(trainer, i, options.numClients, { host: 'memory', port: 0 }),
    transport: memory,
  }));
  const { builds, sharedModel, modelLock, pool, pooled } = await buildSerialLearners(learnerConfigs, logger, backend.backend, hub, options.learnerPool ?? 0);
  const started = runTrainerNode(trainer, {
    ...options,
    hub,
    logger,
    foldInLearnerOrder: pooled,
    // The global model's evaluation runs on the learners' workers (the pool's, or the shared
    // model's data-parallel ones), not on a second set started by the trainer's model.
    ...globalModelEvaluator(pool, sharedModel, modelLock, trainer.learner.args.threads ?? availableParallelism()),
    onListening: (info) => {
      options.onListening?.(info);
      for (const build of builds) {
        build.transport.start().catch((error) => logger.error(`learner start failed: ${errorMessage(error)}`));
      }
    },
  });
  try {
    return await started;
  } finally {
    await Promise.all(builds.map((b) => b.transport.stop().catch(() => undefined)));
    sharedModel?.dispose();
    for (const b of builds) if (b.ownsModel) b.model()?.dispose();
    await pool?.close();
  }
}

/**
 * Serial mode's learners: one after another on one shared model (a lock keeps their training
 * apart), or, with `poolSize` > 0, a model section and the wasm backend, each with its own model,
 * training on a pool of `poolSize` worker threads.
 */
async function buildSerialLearners(
  configs: NodeConfig[],
  logger: TrackerLogger,
  backendName: string,
  hub: MemoryHub,
  poolSize: number,
): Promise<{ builds: LearnerBuild[]; sharedModel?: FedModel; modelLock: Mutex; pool?: LearnerPool; pooled: boolean }> {
  const modelLock = new Mutex();
  const builds: LearnerBuild[] = [];
  let sharedModel: FedModel | undefined;
  let pool: LearnerPool | undefined;
  // The workers run the patched wasm backend: on any other backend their bits would differ from the sequential run's.
  const pooled = poolSize > 0 && configs[0]?.model !== undefined && backendName === 'wasm';
  for (const config of configs) {
    const learnerLogger = logger.child({ node: config.node_id });
    const data = await loadNodeData(config, learnerLogger);
    // Pooled learners train one thread each on the pool; their own evaluation stays on one thread too.
    const own = pooled ? { ...config, learner: { ...config.learner, args: { ...config.learner.args, threads: 1 } } } : config;
    const build = await buildLearner(
      own,
      learnerLogger,
      backendName,
      pooled ? { hub, data, trainPool: { train: (model, d, o) => (pool ? pool.train(model, d, o) : model.train(d, o)) } } : { hub, sharedModel, modelLock, data },
    );
    if (pooled && builds.length === 0) pool = await startLearnerPool(build.model()!, Math.min(poolSize, configs.length), logger);
    if (!pooled) sharedModel ??= build.model();
    builds.push(build);
  }
  return { builds, sharedModel, modelLock, pool, pooled };
}

/** Where serial mode evaluates the global model: on the learner pool, else on the learners' shared model. */
function globalModelEvaluator(pool: LearnerPool | undefined, shared: FedModel | undefined, lock: Mutex, threads: number): Pick<TrainerOptions, 'evaluator'> {
  if (pool) {
    // Split as the trainer's own evaluate at `threads` would, so pooled and sequential runs report the same loss.
    return { evaluator: { evaluate: (model, data, { batchSize }) => pool.evaluate(model, data, { batchSize, ranges: model.evaluationRanges(data.length, threads, batchSize) }) } };
  }
  return shared ? { evaluator: sharedModelEvaluator(shared, lock, threads) } : {};
}

/**
 * Evaluates the trainer's global model on the learners' shared model (same architecture, same
 * kernels and threads, so the same numbers) between learners' turns: its workers serve both, and
 * the trainer's model starts none (one wasm heap and isolate less). Another layout evaluates as before.
 */
function sharedModelEvaluator(shared: FedModel, lock: Mutex, threads: number): NonNullable<TrainerOptions['evaluator']> {
  return {
    evaluate: (model, data, { batchSize }) => {
      if (model.numParams !== shared.numParams || model.type !== shared.type) return model.evaluate(data, { batchSize, threads });
      return lock.runExclusive(async () => {
        shared.setWeights(model.getWeights());
        return shared.evaluate(data, { batchSize, threads });
      });
    },
  };
}

/** The learner pool, or undefined (learners then train on this thread, interleaved) when its workers cannot start. */
async function startLearnerPool(model: FedModel, size: number, logger: TrackerLogger): Promise<LearnerPool | undefined> {
  try {
    return await LearnerPool.start(model, size);
  } catch (error) {
    logger.warn(`learner pool unavailable, learners train on the main thread: ${errorMessage(error)}`);
    return undefined;
  }
}
