/**
 * Learner configs derived from a trainer config, for the modes that start a whole federation
 * from one file: serial (in one process) and launch (one process per node on this machine).
 */
import type { DatasetConfig, NodeConfig } from '@oiafed/config';

/** Partition count the guide's learner configs leave implicit (`partition: {partition_id: 0}`). */
export const DEFAULT_NUM_PARTITIONS = 10;

export function learnerId(index: number): string {
  return `learner_${index}`;
}

/**
 * A learner's config for partition `index` of `numClients`: the trainer's datasets (train split),
 * learner section, seed, retry and heartbeat, dialing the trainer at `trainerAddress`.
 */
export function deriveLearnerConfig(
  trainer: NodeConfig,
  index: number,
  numClients: number,
  trainerAddress: { host: string; port: number },
): NodeConfig {
  return {
    ...structuredClone(trainer),
    node_id: learnerId(index),
    role: 'learner',
    listen: { host: '127.0.0.1', port: 0 },
    connect_to: [`${trainer.node_id}@${trainerAddress.host}:${trainerAddress.port}`],
    datasets: trainer.datasets
      .filter((d) => d.split !== 'test')
      .map((d) => partitioned({ ...structuredClone(d), split: 'train' }, index, numClients)),
    metrics: { ...trainer.metrics, enabled: false },
    health: { ...trainer.health, enabled: false },
    callbacks: [],
    tracker: {
      ...structuredClone(trainer.tracker),
      run_dir: undefined,
    },
  };
}

/** The trainer's own datasets, told how many partitions exist (synthetic data needs it). */
export function withPartitionCount(trainer: NodeConfig, numClients: number): NodeConfig {
  return {
    ...trainer,
    datasets: trainer.datasets.map((d) => ({
      ...d,
      partition: { strategy: 'iid', ...d.partition, num_partitions: numClients, partition_id: d.partition?.partition_id ?? 0 },
    })),
  };
}

function partitioned(dataset: DatasetConfig, index: number, numClients: number): DatasetConfig {
  return {
    ...dataset,
    partition: {
      strategy: dataset.partition?.strategy ?? 'iid',
      ...(dataset.partition?.config ? { config: dataset.partition.config } : {}),
      ...(dataset.partition?.test_fraction ? { test_fraction: dataset.partition.test_fraction } : {}),
      num_partitions: numClients,
      partition_id: index,
    },
  };
}
