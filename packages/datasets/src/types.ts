/**
 * Shared types of @oiafed/datasets. Datasets are plain typed arrays so that aggregators, the
 * trainer and tests can use them without tfjs; @oiafed/models turns them into tensors.
 */
import type { Logger } from '@oiafed/component';

/** The one Logger of every OiaFed package (@oiafed/component), accepted by every function that reports progress. Defaults to a no-op. */
export type { Logger };

/** A whole dataset (or one learner's shard) held in memory. */
export interface ArrayDataset {
  /** Human-readable name, e.g. `cifar10/train` or `cifar10/train[p2/8]`. */
  readonly name: string;
  /** Normalised features, sample after sample: `length * prod(sampleShape)` values. */
  readonly features: Float32Array;
  /** Class ids in `0..numClasses-1`, one per sample. */
  readonly labels: Int32Array;
  /** Shape of one sample, channels last for images: `[28,28,1]`, `[32,32,3]`, `[60]`. */
  readonly sampleShape: readonly number[];
  readonly numClasses: number;
  /** Number of samples. */
  readonly length: number;
}

/** Names of the partition strategies. */
export type PartitionStrategy = 'iid' | 'dirichlet' | 'label_skew' | 'quantity_skew';

/** `datasets[].partition.config` of the node YAML (snake_case as written there). */
export interface PartitionSpecConfig {
  alpha?: number;
  num_labels_per_client?: number;
  imbalance_ratio?: number;
  seed?: number;
  min_size?: number;
}

/** `datasets[].partition` of the node YAML. */
export interface PartitionSpec {
  strategy?: PartitionStrategy;
  num_partitions?: number;
  partition_id?: number;
  config?: PartitionSpecConfig;
  /**
   * Share (0..0.5) of this learner's partition held out as its own test split, stratified per
   * label (personalized evaluation). Default 0: the whole partition trains.
   */
  test_fraction?: number;
}

/** One entry of the node YAML's `datasets[]`. */
export interface DatasetSpec {
  /** Registry key: `cifar10`, `mnist`, `fashion_mnist`, `synthetic` or a registered one. */
  type: string;
  /** Which split(s) to load; `all` gives train and test. Default `train`. */
  split?: 'train' | 'test' | 'all';
  /** Loader arguments (`data_dir`, `download`, `base_url`, ...). */
  args?: Record<string, unknown>;
  partition?: PartitionSpec;
}

/** Options common to the loaders. */
export interface LoadOptions {
  /** Experiment seed (the YAML's top-level `seed`); used where the spec gives none. */
  seed?: number;
  logger?: Logger;
  signal?: AbortSignal;
}

/** The splits a loader returns. */
export interface LoadedSplits {
  train?: ArrayDataset;
  test?: ArrayDataset;
}

/** A dataset loader registered under a `type`. Receives `spec.split` already defaulted. */
export type DatasetLoader = (spec: DatasetSpec, options: LoadOptions) => Promise<LoadedSplits>;

/** Internal no-op logger: @oiafed/component's. */
export { silentLogger } from '@oiafed/component';
