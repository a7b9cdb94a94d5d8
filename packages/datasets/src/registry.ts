/**
 * The dataset registry (keyed by the config's `type`) and the two entry points the trainer and
 * learners call: {@link loadDataset} and {@link loadPartition}.
 */
import { createRegistry, parseArgs, type ArgsSchema } from '@oiafed/component';
import { BUILTIN_DATASET_ARGS } from './args-schemas.js';
import { subset } from './array-dataset.js';
import { loadCifar10 } from './cifar10.js';
import { loadCifar100 } from './cifar100.js';
import { createIdxLoader, FASHION_MNIST_INFO, MNIST_INFO } from './idx.js';
import { localTestSeed, MAX_TEST_FRACTION, splitLocalTest } from './local-test-split.js';
import { partitionIndices } from './partition.js';
import { loadSvhn } from './svhn.js';
import { loadSynthetic, loadSyntheticPartition } from './synthetic.js';
import {
  silentLogger,
  type ArrayDataset,
  type DatasetLoader,
  type DatasetSpec,
  type LoadedSplits,
  type LoadOptions,
  type Logger,
  type PartitionStrategy,
} from './types.js';

/**
 * A loader for datasets that are born federated: returns partition `partitionId` directly, or
 * null to fall back to partitioning the whole train split.
 */
export type PartitionLoader = (
  spec: DatasetSpec,
  options: LoadOptions,
  partitionId: number,
  numPartitions: number,
) => Promise<LoadedSplits | null>;

interface Entry {
  loader: DatasetLoader;
  partition?: PartitionLoader;
  /** Schema of `args` (validate checks it); absent: any args. */
  argsSchema?: ArgsSchema;
}

/** Other spellings accepted for the built-in types. */
const ALIASES: Record<string, string> = {
  cifar_10: 'cifar10',
  cifar_100: 'cifar100',
  fmnist: 'fashion_mnist',
  fashionmnist: 'fashion_mnist',
};

function canonical(type: string): string {
  const t = type.trim().toLowerCase().replace(/-/g, '_');
  return ALIASES[t] ?? t;
}

/**
 * @oiafed/component's registry helper on one globalThis key, so two copies of this package share
 * one registry; names are stored canonical (lower case, `-` as `_`, aliases resolved).
 */
const datasets = createRegistry<Entry>({
  kind: 'dataset',
  globalKey: '@oiafed/datasets/registry',
  registerName: 'registerDataset',
  normalize: canonical,
  same: (a, b) => a.loader === b.loader && a.partition === b.partition,
});

/**
 * Registers the loader of a dataset type. `options.partition` lets a dataset that is born
 * federated hand out its own partitions; `options.argsSchema` (@oiafed/component's schema subset)
 * lets `oiafed validate` check `datasets[].args`. The same loader again is a no-op; another loader
 * under a taken type throws unless `options.replace` (the rule of every OiaFed registry).
 */
export function registerDataset(
  type: string,
  loader: DatasetLoader,
  options: { partition?: PartitionLoader; argsSchema?: ArgsSchema; replace?: boolean } = {},
): void {
  if (typeof loader !== 'function') throw new TypeError(`registerDataset(${type}): loader must be a function`);
  datasets.register(type, { loader, partition: options.partition, argsSchema: options.argsSchema }, { replace: options.replace });
  loadCache.clear();
}

/** Registers cifar10, cifar100, svhn, mnist, fashion_mnist and synthetic unless already registered. Safe to call twice. */
export function registerBuiltins(): void {
  if (datasets.flags.has('builtins')) return;
  datasets.flags.add('builtins');
  const add = (type: string, entry: Entry): void => {
    if (!datasets.has(type)) datasets.register(type, { ...entry, argsSchema: BUILTIN_DATASET_ARGS[type] });
  };
  add('cifar10', { loader: loadCifar10 });
  add('cifar100', { loader: loadCifar100 });
  add('svhn', { loader: loadSvhn });
  add('mnist', { loader: createIdxLoader(MNIST_INFO) });
  add('fashion_mnist', { loader: createIdxLoader(FASHION_MNIST_INFO) });
  add('synthetic', { loader: loadSynthetic, partition: loadSyntheticPartition });
}

/** Registered dataset types, sorted. */
export function listDatasets(): string[] {
  registerBuiltins();
  return datasets.list();
}

/**
 * What is wrong with one `datasets[]` entry of a config, as messages naming the key path under
 * `where` (e.g. `datasets.0.type: unknown dataset type "cifar1000"; ...; did you mean "cifar100"?`,
 * `dataset "cifar100": datasets.0.args.label_mode must be one of "fine", "coarse", ...`); empty
 * when the type is registered and its args pass the type's schema. Reads no data.
 */
export function datasetSpecProblems(spec: { type: string; args?: unknown }, where = 'datasets[]'): string[] {
  registerBuiltins();
  let entry: Entry;
  try {
    entry = datasets.require(spec.type, `${where}.type`);
  } catch (error) {
    return [(error as Error).message];
  }
  try {
    parseArgs(`dataset "${canonical(spec.type)}"`, entry.argsSchema, spec.args ?? {}, `${where}.args`);
    return [];
  } catch (error) {
    return [(error as Error).message];
  }
}

function entryFor(spec: DatasetSpec): Entry {
  if (!spec || typeof spec !== 'object' || typeof spec.type !== 'string' || spec.type.trim() === '') {
    throw new TypeError(`datasets[]: expected an object with a non-empty "type", got ${JSON.stringify(spec)}`);
  }
  registerBuiltins();
  return datasets.require(spec.type, 'datasets[].type');
}

function normalizeSpec(spec: DatasetSpec): DatasetSpec & { split: 'train' | 'test' | 'all' } {
  const split = spec.split ?? 'train';
  if (split !== 'train' && split !== 'test' && split !== 'all') {
    throw new TypeError(`datasets[type=${spec.type}].split: expected train, test or all, got ${JSON.stringify(spec.split)}`);
  }
  if (spec.args !== undefined && (spec.args === null || typeof spec.args !== 'object' || Array.isArray(spec.args))) {
    throw new TypeError(`datasets[type=${spec.type}].args: expected a map, got ${JSON.stringify(spec.args)}`);
  }
  return { ...spec, type: canonical(spec.type), split };
}

function pick(splits: LoadedSplits, split: 'train' | 'test' | 'all', type: string): LoadedSplits {
  const out: LoadedSplits = {};
  if (split !== 'test') {
    if (!splits.train) throw new Error(`dataset ${type}: loader returned no train split`);
    out.train = splits.train;
  }
  if (split !== 'train') {
    if (!splits.test) throw new Error(`dataset ${type}: loader returned no test split`);
    out.test = splits.test;
  }
  return out;
}

interface CacheEntry {
  pending?: Promise<LoadedSplits>;
  train?: WeakRef<ArrayDataset>;
  test?: WeakRef<ArrayDataset>;
}

/**
 * Loads in flight and loaded datasets still referenced somewhere, so a trainer and several
 * in-process learners read and decode a dataset once. Weak references: memory is freed as soon
 * as no node holds the data.
 */
const loadCache = new Map<string, CacheEntry>();

function cacheKey(s: DatasetSpec, options: LoadOptions): string | undefined {
  try {
    return JSON.stringify([s.type, s.split, s.args ?? {}, s.partition?.num_partitions ?? null, options.seed ?? null]);
  } catch {
    return undefined;
  }
}

async function cachedLoad(entry: Entry, s: DatasetSpec & { split: 'train' | 'test' | 'all' }, options: LoadOptions): Promise<LoadedSplits> {
  const key = s.args?.cache === false ? undefined : cacheKey(s, options);
  if (key === undefined) return entry.loader(s, options);
  const hit = loadCache.get(key);
  if (hit?.pending) {
    try {
      return await hit.pending;
    } catch (err) {
      // Another caller's load failed (maybe its own abort): try ours unless we were aborted too.
      if (options.signal?.aborted) throw err;
    }
  } else if (hit) {
    const train = hit.train?.deref();
    const test = hit.test?.deref();
    if ((s.split === 'test' || train) && (s.split === 'train' || test)) return { ...(train ? { train } : {}), ...(test ? { test } : {}) };
  }
  const pending = entry.loader(s, options);
  loadCache.set(key, { pending });
  try {
    const result = await pending;
    loadCache.set(key, {
      ...(result.train ? { train: new WeakRef(result.train) } : {}),
      ...(result.test ? { test: new WeakRef(result.test) } : {}),
    });
    return result;
  } catch (err) {
    if (loadCache.get(key)?.pending === pending) loadCache.delete(key);
    throw err;
  }
}

/**
 * Loads the whole split(s) named by `spec.split` (default `train`; `all` gives both). Results
 * are shared while referenced (set `args.cache: false` to always reload): treat the arrays as
 * read-only.
 */
export async function loadDataset(spec: DatasetSpec, options: LoadOptions = {}): Promise<LoadedSplits> {
  const entry = entryFor(spec);
  const s = normalizeSpec(spec);
  options.signal?.throwIfAborted();
  return pick(await cachedLoad(entry, s, options), s.split, s.type);
}

function intField(value: unknown, where: string, min: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min) {
    throw new TypeError(`${where}: expected an integer >= ${min}, got ${JSON.stringify(value)}`);
  }
  return value;
}

/** What {@link loadPartition} returns: the splits, which partition, and the learner-local test split. */
export type LoadedPartition = LoadedSplits & {
  partitionId: number;
  numPartitions: number;
  /** Held out of this partition's train shard by `partition.test_fraction` (absent when 0). */
  localTest?: ArrayDataset;
};

/**
 * Loads this learner's shard of the train split (`partition.partition_id` of
 * `partition.num_partitions`); the test split, when asked for, stays whole. Without
 * `spec.partition` the whole data is partition 0 of 1. The partition seed is
 * `partition.config.seed`, else `options.seed`, else 0: every learner must use the same one.
 * With `partition.test_fraction`, that share of the shard becomes `localTest` (see splitLocalTest).
 */
export async function loadPartition(spec: DatasetSpec, options: LoadOptions = {}): Promise<LoadedPartition> {
  const entry = entryFor(spec);
  const s = normalizeSpec(spec);
  const p = s.partition;
  if (p === undefined || p === null) return { ...(await loadDataset(s, options)), partitionId: 0, numPartitions: 1 };
  const where = `datasets[type=${s.type}].partition`;
  if (p.num_partitions === undefined) {
    throw new TypeError(`${where}.num_partitions is required when partition is given (an integer >= 1, the number of learners)`);
  }
  if (p.partition_id === undefined) {
    throw new TypeError(`${where}.partition_id is required when partition is given (an integer in 0..num_partitions-1)`);
  }
  const numPartitions = intField(p.num_partitions, `${where}.num_partitions`, 1);
  const partitionId = intField(p.partition_id, `${where}.partition_id`, 0);
  if (partitionId >= numPartitions) {
    throw new RangeError(`${where}.partition_id: ${partitionId} is out of range; expected 0..${numPartitions - 1} (num_partitions=${numPartitions})`);
  }
  const strategy: PartitionStrategy = p.strategy ?? 'iid';
  const cfg = p.config ?? {};
  const logger = options.logger ?? silentLogger;
  const seed = cfg.seed ?? options.seed ?? 0;
  const holdOut = (loaded: LoadedSplits & { partitionId: number; numPartitions: number }): LoadedPartition =>
    withLocalTest(loaded, p.test_fraction, localTestSeed(seed, partitionId), `${where}.test_fraction`, logger);

  if (entry.partition) {
    const native = await entry.partition(s, options, partitionId, numPartitions);
    if (native) {
      logger.info(`dataset ${s.type}: partition ${partitionId}/${numPartitions} is the dataset's own device ${partitionId}`, {
        train: native.train?.length,
      });
      return holdOut({ ...pick(native, s.split, s.type), partitionId, numPartitions });
    }
  }

  const whole = await loadDataset(s, options);
  // Only train is sharded: a test-only load is the whole test split on every learner.
  if (s.split === 'test') return { ...whole, partitionId, numPartitions };
  const train = whole.train as ArrayDataset;
  const parts = partitionIndices(train.labels, train.numClasses, {
    strategy,
    numPartitions,
    seed,
    alpha: cfg.alpha,
    numLabelsPerClient: cfg.num_labels_per_client,
    imbalanceRatio: cfg.imbalance_ratio,
    minSize: cfg.min_size,
  });
  const shard = subset(train, parts[partitionId], `${train.name}[${strategy} p${partitionId}/${numPartitions}]`);
  logger.info(`dataset ${s.type}: partition ${partitionId}/${numPartitions} (${strategy}) has ${shard.length} of ${train.length} train samples`);
  return holdOut({ train: shard, ...(whole.test ? { test: whole.test } : {}), partitionId, numPartitions });
}

/** Moves `fraction` of the train shard, stratified per label, into `localTest` (nothing when 0 or absent). */
function withLocalTest(
  loaded: LoadedSplits & { partitionId: number; numPartitions: number },
  fraction: number | undefined,
  seed: number,
  where: string,
  logger: Logger,
): LoadedPartition {
  if (fraction === undefined || fraction === 0 || !loaded.train) return loaded;
  if (typeof fraction !== 'number' || !(fraction > 0 && fraction <= MAX_TEST_FRACTION)) {
    throw new RangeError(`${where}: expected a number in 0..${MAX_TEST_FRACTION}, got ${JSON.stringify(fraction)}`);
  }
  const shard = loaded.train;
  const all = Int32Array.from({ length: shard.length }, (_, i) => i);
  const { train, test } = splitLocalTest(shard.labels, all, shard.numClasses, fraction, seed);
  logger.info(`dataset ${shard.name}: ${test.length} of ${shard.length} samples held out as this learner's test split (test_fraction ${fraction})`);
  return { ...loaded, train: subset(shard, train, shard.name), localTest: subset(shard, test, `${shard.name}/local-test`) };
}
