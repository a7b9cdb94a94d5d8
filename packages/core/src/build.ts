/**
 * Builds the pieces of a node from its config: plugins, backend, data, model, aggregator,
 * transport, logger and observability. Kept apart from the round logic so users can assemble
 * the same pieces by hand in their own code.
 */
import { isAbsolute, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { createAggregator, registerBuiltins as registerBuiltinAggregators } from '@oiafed/aggregators';
import type { Aggregator } from '@oiafed/aggregators';
import { parsePeerAddress, type NodeConfig } from '@oiafed/config';
import { loadDataset, loadPartition, type ArrayDataset } from '@oiafed/datasets';
import { createModel, registerBuiltinModels, selectBackend, type BackendInfo, type DeviceRequest, type FedModel } from '@oiafed/models';
import { createLogger, type Logger as TrackerLogger } from '@oiafed/tracker';
import { GrpcTransport, MemoryTransport, type MemoryHub, type Transport } from '@oiafed/transport';
import { registerBuiltinCallbacks } from './callbacks.js';
import { DEFAULT_NUM_PARTITIONS } from './derive.js';
import type { Logger } from './logger.js';

export function registerAllBuiltins(): void {
  registerBuiltinAggregators();
  registerBuiltinModels();
  registerBuiltinCallbacks();
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
 * Imports `plugins` and `aggregator.package` so they can register components. A relative path
 * is resolved against the working directory; a bare name through normal package resolution.
 */
export async function loadPlugins(config: NodeConfig, logger: Logger): Promise<void> {
  const entries: Array<{ spec: string; key: string }> = config.plugins.map((spec, i) => ({ spec, key: `plugins[${i}]` }));
  if (config.aggregator.package) entries.push({ spec: config.aggregator.package, key: 'aggregator.package' });
  for (const { spec, key } of entries) {
    const target = spec.startsWith('.') || isAbsolute(spec) ? pathToFileURL(resolve(spec)).href : spec;
    try {
      const module = (await import(target)) as { register?: () => void };
      module.register?.();
      logger.info(`loaded plugin ${spec}`);
    } catch (error) {
      throw new Error(
        `${key}: cannot import "${spec}": ${(error as Error).message}. Install it where oiafed runs (npm install ${spec}).`,
      );
    }
  }
}

export async function selectComputeBackend(config: NodeConfig, logger: Logger): Promise<BackendInfo> {
  // The trainer only evaluates; it never needs a GPU, so it runs on the CPU path regardless.
  const device = (config.role === 'learner' ? config.learner.args.device : 'cpu') as DeviceRequest;
  return selectBackend(device, { logger });
}

export interface NodeData {
  train?: ArrayDataset;
  test?: ArrayDataset;
}

/** The trainer keeps only test splits (for evaluation); a learner loads its partition. */
export async function loadNodeData(config: NodeConfig, logger: Logger): Promise<NodeData> {
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
  }
  return data;
}

export function buildModel(config: NodeConfig, data: NodeData): FedModel {
  if (!config.model) {
    throw new Error(`${config.node_id}: no "model" section; a node needs model.type (e.g. mlp, lenet, cifar10_cnn)`);
  }
  const sample = data.train ?? data.test;
  return createModel(
    { type: config.model.type, args: { seed: config.seed, ...config.model.args } },
    sample ? { inputShape: [...sample.sampleShape], numClasses: sample.numClasses } : {},
  );
}

export function buildAggregator(config: NodeConfig): Aggregator {
  return createAggregator({ type: config.aggregator.type, args: config.aggregator.args });
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
