/**
 * Builds the pieces of a node from its config: plugins, backend, data, model, aggregator,
 * transport, logger and observability. Kept apart from the round logic so users can assemble
 * the same pieces by hand in their own code.
 */
import { createAggregator, registerBuiltins as registerBuiltinAggregators } from '@oiafed/aggregators';
import type { Aggregator } from '@oiafed/aggregators';
import { parsePeerAddress, type NodeConfig } from '@oiafed/config';
import { loadDataset, loadPartition, registerBuiltins as registerBuiltinDatasets, type ArrayDataset } from '@oiafed/datasets';
import { createModel, registerBuiltinModels, selectBackend, type BackendInfo, type DeviceRequest, type FedModel } from '@oiafed/models';
import { createLogger, type Logger as TrackerLogger } from '@oiafed/tracker';
import { GrpcTransport, MemoryTransport, type MemoryHub, type Transport } from '@oiafed/transport';
import { registerBuiltinCallbacks } from './callbacks.js';
import { withDifferentialPrivacy } from './central-dp.js';
import { registerBuiltinLearnerAlgorithms } from './learner-algorithms/builtins.js';
import { DEFAULT_NUM_PARTITIONS } from './derive.js';
import { silentLogger, type Logger } from './logger.js';
import { importPlugin, isPluginLoaded, pluginSearchDirs, pluginSpecs, resolvePlugin } from './plugins.js';

export function registerAllBuiltins(): void {
  registerBuiltinAggregators();
  registerBuiltinModels();
  registerBuiltinCallbacks();
  registerBuiltinDatasets();
  registerBuiltinLearnerAlgorithms();
}

/**
 * The node's logger. OIAFED_LOG_FORMAT=text|json overrides the TTY guess, so `oiafed launch`
 * can ask its children for readable lines although their stderr is a pipe.
 */
export function createNodeLogger(config: NodeConfig, env: NodeJS.ProcessEnv = process.env): TrackerLogger {
  const format = env.OIAFED_LOG_FORMAT;
  const json = format === 'json' ? true : format === 'text' ? false : undefined;
  return createLogger({ nodeId: config.node_id, backends: config.tracker.backends, console: { json } });
}

/**
 * Imports `plugins` and `aggregator.package` so they can register components. Each is looked up
 * from `config_dir` (the config file's directory), then the working directory, then the CLI's own
 * location; each file is imported once per process. Prefer {@link prepareNode}.
 */
export async function loadPlugins(config: NodeConfig, logger: Logger = silentLogger): Promise<void> {
  const dirs = pluginSearchDirs(config);
  for (const { spec, key } of pluginSpecs(config)) await importPlugin(resolvePlugin(spec, key, dirs), logger);
}

/**
 * The first step of every node built from a config: registers the built-in components, then
 * imports the config's plugins, so plugin model, dataset and aggregator types exist before
 * anything is built. Safe to call again (builtins and plugins register once per process).
 */
export async function prepareNode(config: NodeConfig, logger: Logger = silentLogger): Promise<void> {
  registerAllBuiltins();
  await loadPlugins(config, logger);
}

/** Throws, saying what to call, when a config's plugins have not been imported yet (the sync builders cannot import). */
function requirePrepared(config: NodeConfig, what: string): void {
  registerAllBuiltins();
  const dirs = pluginSearchDirs(config);
  const missing = pluginSpecs(config).filter(({ spec, key }) => !isPluginLoaded(resolvePlugin(spec, key, dirs)));
  if (missing.length > 0) {
    throw new Error(
      `${what}: ${missing.map((m) => `${m.key} "${m.spec}"`).join(', ')} not imported yet; call \`await prepareNode(config)\` first`,
    );
  }
}

export async function selectComputeBackend(config: NodeConfig, logger: Logger): Promise<BackendInfo> {
  // The trainer only evaluates; it never needs a GPU, so it runs on the CPU path regardless.
  const device = (config.role === 'learner' ? config.learner.args.device : 'cpu') as DeviceRequest;
  // learner.args.blas: the wasm backend's OpenBLAS kernel path (the trainer's evaluation too).
  const blas = config.learner.args.blas;
  return selectBackend(device, { logger, ...(blas !== undefined ? { blas } : {}) });
}

export interface NodeData {
  train?: ArrayDataset;
  test?: ArrayDataset;
  /** A learner's own held-out split (`partition.test_fraction`), for personalized evaluation. */
  localTest?: ArrayDataset;
}

/** The trainer keeps only test splits (for evaluation); a learner loads its partition. */
export async function loadNodeData(config: NodeConfig, logger: Logger): Promise<NodeData> {
  await prepareNode(config, logger);
  const data: NodeData = {};
  for (const spec of config.datasets) {
    const options = { seed: config.seed, logger };
    if (config.role === 'trainer') {
      const { test } = await loadDataset({ ...spec, split: 'test' }, options);
      if (test) data.test = test;
      continue;
    }
    const wantsPartition = spec.partition !== undefined;
    if (wantsPartition && spec.partition!.num_partitions === undefined) {
      logger.warn(
        `datasets[${config.datasets.indexOf(spec)}].partition.num_partitions is not set; assuming ${DEFAULT_NUM_PARTITIONS}`,
      );
    }
    const partitionSpec = wantsPartition
      ? { ...spec, partition: { ...spec.partition!, num_partitions: spec.partition!.num_partitions ?? DEFAULT_NUM_PARTITIONS } }
      : spec;
    const loaded = wantsPartition ? await loadPartition(partitionSpec, options) : await loadDataset(spec, options);
    if (loaded.train) data.train = loaded.train;
    if (loaded.test) data.test = loaded.test;
    const { localTest } = loaded as { localTest?: ArrayDataset };
    if (localTest) data.localTest = localTest;
  }
  return data;
}

export function buildModel(config: NodeConfig, data: NodeData): FedModel {
  if (!config.model) {
    throw new Error(`${config.node_id}: no "model" section; a node needs model.type (e.g. mlp, lenet, cifar10_cnn)`);
  }
  requirePrepared(config, `model ${config.model.type}`);
  const sample = data.train ?? data.test;
  return createModel(
    { type: config.model.type, args: { seed: config.seed, ...config.model.args } },
    sample ? { inputShape: [...sample.sampleShape], numClasses: sample.numClasses } : {},
  );
}

export function buildAggregator(config: NodeConfig): Aggregator {
  requirePrepared(config, `aggregator ${config.aggregator.type}`);
  const rule = createAggregator({ type: config.aggregator.type, args: config.aggregator.args });
  return config.differential_privacy ? withDifferentialPrivacy(rule, config.differential_privacy, config.trainer.args, config) : rule;
}

export interface TransportBuildOptions {
  hub?: MemoryHub;
  metadata?: Record<string, string>;
  logger?: Logger;
}

export function buildTransport(config: NodeConfig, options: TransportBuildOptions = {}): Transport {
  const { mode } = config.transport;
  const peers = config.connect_to.map((entry) => parsePeerAddress(entry));
  if (mode === 'memory' || (mode === 'auto' && options.hub)) {
    if (!options.hub) {
      throw new Error(
        'transport.mode "memory" needs every node in one process: run the trainer config with `oiafed run --mode serial`',
      );
    }
    return new MemoryTransport({
      hub: options.hub,
      nodeId: config.node_id,
      role: config.role,
      connectTo: peers.map((p) => p.nodeId),
      metadata: options.metadata,
      logger: options.logger,
    });
  }
  const grpc = config.transport.grpc;
  const secondsToMs = (s: number) => Math.round(s * 1000);
  return new GrpcTransport({
    nodeId: config.node_id,
    role: config.role,
    listen: config.role === 'trainer' || peers.length === 0 ? config.listen : undefined,
    connectTo: peers,
    metadata: options.metadata,
    timeoutMs: secondsToMs(grpc.timeout),
    keepaliveTimeMs: secondsToMs(grpc.keepalive.time),
    keepaliveTimeoutMs: secondsToMs(grpc.keepalive.timeout),
    maxMessageBytes: Math.round(grpc.max_message_mb * 1024 * 1024),
    chunkBytes: Math.round(grpc.chunk_mb * 1024 * 1024),
    maxJsonBodyBytes: Math.round(grpc.max_json_body_kb * 1024),
    compression: grpc.compression,
    heartbeat: config.heartbeat.enabled
      ? { intervalMs: secondsToMs(config.heartbeat.interval), timeoutMs: secondsToMs(config.heartbeat.timeout) }
      : undefined,
    retry: {
      maxAttempts: config.retry.max_attempts,
      strategy: config.retry.backoff_strategy,
      initialDelayMs: secondsToMs(config.retry.initial_delay),
      maxDelayMs: secondsToMs(config.retry.max_delay),
      multiplier: config.retry.multiplier,
    },
    authToken: grpc.auth_token,
    authTokens: grpc.auth_tokens,
    tls: grpc.tls
      ? { ca: grpc.tls.ca, cert: grpc.tls.cert, key: grpc.tls.key, requireClientCert: grpc.tls.require_client_cert, bindNodeId: grpc.tls.bind_node_id }
      : undefined,
    logger: options.logger,
  });
}
