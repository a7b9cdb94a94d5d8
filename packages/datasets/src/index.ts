/**
 * @oiafed/datasets: dataset readers (CIFAR-10, CIFAR-100, SVHN, MNIST, Fashion-MNIST, synthetic), federated
 * partitioners and verified downloads. Datasets are plain typed arrays; no tfjs here.
 */
export type {
  ArrayDataset,
  DatasetLoader,
  DatasetSpec,
  LoadedSplits,
  LoadOptions,
  Logger,
  PartitionSpec,
  PartitionSpecConfig,
  PartitionStrategy,
} from './types.js';
export { concat, createDataset, sampleSize, subset } from './array-dataset.js';
export type { DatasetParts } from './array-dataset.js';
export { createRng, deriveSeed } from './rng.js';
export type { Rng } from './rng.js';
export { labelHistogram, partitionIndices } from './partition.js';
export { MAX_TEST_FRACTION, splitLocalTest } from './local-test-split.js';
export type { LocalTestSplit } from './local-test-split.js';
export type { PartitionOptions } from './partition.js';
export { renderPartitionStats } from './partition-stats.js';
export { ChecksumMismatchError, DownloadHttpError, FileChecksumError, downloadFile, verifyFileChecksum } from './download.js';
export type { DownloadOptions } from './download.js';
export { extractTarGz } from './tar.js';
export type { ExtractOptions } from './tar.js';
export { encodeIdxUint8, parseIdx, readIdxFile } from './idx.js';
export type { IdxArray } from './idx.js';
export { CIFAR10_MEAN, CIFAR10_STD, decodeCifarRecords, encodeCifarRecords } from './cifar10.js';
export { CIFAR100_MEAN, CIFAR100_STD, decodeCifar100Records, encodeCifar100Records } from './cifar100.js';
export type { Cifar100LabelMode } from './cifar100.js';
export { decodeSvhn, SVHN_MEAN, SVHN_STD } from './svhn.js';
export { readMat5 } from './mat5.js';
export type { MatArray, ReadMat5Options } from './mat5.js';
export { generateDevice, syntheticConfig } from './synthetic.js';
export type { SyntheticConfig } from './synthetic.js';
export { baseUrlEnvVar } from './args.js';
export { datasetSpecProblems, listDatasets, loadDataset, loadPartition, registerBuiltins, registerDataset } from './registry.js';
export { BUILTIN_DATASET_ARGS, COMMON_DATASET_ARGS } from './args-schemas.js';
export type { LoadedPartition, PartitionLoader } from './registry.js';
