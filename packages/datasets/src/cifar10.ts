/**
 * CIFAR-10, binary version (Krizhevsky 2009): `data_batch_1..5.bin` and `test_batch.bin`, each
 * record 1 label byte + 3072 pixel bytes (1024 red, 1024 green, 1024 blue, rows top to bottom).
 * Features come out channels last, [32, 32, 3].
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ArgReader, defaultCacheDir } from './args.js';
import { createDataset } from './array-dataset.js';
import { extractByName, fetchVerified, pathExists } from './fetch-file.js';
import { silentLogger, type ArrayDataset, type DatasetLoader, type LoadedSplits, type Logger } from './types.js';

/** Per-channel mean of the CIFAR-10 training pixels in [0,1] (R, G, B). */
export const CIFAR10_MEAN = [0.4914, 0.4822, 0.4465] as const;
/** Per-channel standard deviation of the CIFAR-10 training pixels in [0,1] (R, G, B). */
export const CIFAR10_STD = [0.247, 0.2435, 0.2616] as const;

const SIDE = 32;
const PLANE = SIDE * SIDE;
const RECORD = 1 + 3 * PLANE;
const TRAIN_FILES = ['data_batch_1.bin', 'data_batch_2.bin', 'data_batch_3.bin', 'data_batch_4.bin', 'data_batch_5.bin'];
const TEST_FILES = ['test_batch.bin'];
const SUBDIR = 'cifar-10-batches-bin';
const ARCHIVE = 'cifar-10-binary.tar.gz';
const ARCHIVE_MD5 = 'c32a1d4ab5d03f1284b67883e8d87530';
const DEFAULT_BASE_URL = 'https://www.cs.toronto.edu/~kriz/';

/**
 * Decodes CIFAR-10 binary records, converting CHW to HWC and normalising per channel
 * (or only scaling to [0,1] when `normalize` is false).
 */
export function decodeCifarRecords(buffers: readonly Uint8Array[], name: string, normalize = true): ArrayDataset {
  let count = 0;
  for (const b of buffers) count += b.length / RECORD;
  const features = new Float32Array(count * 3 * PLANE);
  const labels = new Int32Array(count);
  const tables = [0, 1, 2].map((c) => {
    const t = new Float32Array(256);
    for (let v = 0; v < 256; v++) t[v] = normalize ? (v / 255 - CIFAR10_MEAN[c]) / CIFAR10_STD[c] : v / 255;
    return t;
  });
  let n = 0;
  for (const buf of buffers) {
    for (let off = 0; off < buf.length; off += RECORD, n++) {
      labels[n] = buf[off];
      const base = n * 3 * PLANE;
      for (let c = 0; c < 3; c++) {
        const t = tables[c];
        const src = off + 1 + c * PLANE;
        for (let p = 0; p < PLANE; p++) features[base + p * 3 + c] = t[buf[src + p]];
      }
    }
  }
  return createDataset({ name, features, labels, sampleShape: [SIDE, SIDE, 3], numClasses: 10 });
}

/** Encodes HWC bytes and labels as CIFAR-10 binary records (tests and fixtures). */
export function encodeCifarRecords(hwcPixels: Uint8Array, labels: ArrayLike<number>): Buffer {
  const out = Buffer.alloc(labels.length * RECORD);
  for (let n = 0; n < labels.length; n++) {
    out[n * RECORD] = labels[n];
    for (let p = 0; p < PLANE; p++) {
      for (let c = 0; c < 3; c++) out[n * RECORD + 1 + c * PLANE + p] = hwcPixels[(n * PLANE + p) * 3 + c];
    }
  }
  return out;
}

async function findBatchDir(roots: string[]): Promise<string | undefined> {
  for (const root of roots) {
    for (const dir of [root, join(root, SUBDIR)]) {
      if ((await Promise.all([...TRAIN_FILES, ...TEST_FILES].map((f) => pathExists(join(dir, f))))).every(Boolean)) return dir;
    }
  }
  return undefined;
}

async function downloadAndExtract(dir: string, args: ArgReader, logger: Logger, signal?: AbortSignal): Promise<void> {
  const archive = await fetchVerified(dir, ARCHIVE, args, { type: 'cifar10', defaultBaseUrl: DEFAULT_BASE_URL, md5: ARCHIVE_MD5, logger, signal });
  await extractByName(archive, dir, SUBDIR, new Set([...TRAIN_FILES, ...TEST_FILES, 'batches.meta.txt']), { logger, signal });
}

async function readBatches(dir: string, files: string[]): Promise<Buffer[]> {
  return Promise.all(
    files.map(async (f) => {
      const path = join(dir, f);
      const buf = await readFile(path);
      if (buf.length === 0 || buf.length % RECORD !== 0) {
        throw new Error(`${path}: size ${buf.length} is not a positive multiple of the CIFAR-10 record size ${RECORD} (1 label + 3072 pixels)`);
      }
      for (let off = 0; off < buf.length; off += RECORD) {
        if (buf[off] > 9) throw new Error(`${path}: label ${buf[off]} in record ${off / RECORD} is outside 0..9`);
      }
      return buf;
    }),
  );
}

/** Loader of the `cifar10` type. Args: data_dir, download, base_url, normalize, checksums, retries. */
export const loadCifar10: DatasetLoader = async (spec, options): Promise<LoadedSplits> => {
  const logger = options.logger ?? silentLogger;
  const args = new ArgReader('cifar10', spec.args ?? {});
  const given = args.string('data_dir');
  const root = given ?? defaultCacheDir('cifar10');
  let dir = await findBatchDir([root]);
  if (!dir && args.bool('download', false)) {
    await downloadAndExtract(root, args, logger, options.signal);
    dir = await findBatchDir([root]);
  }
  if (!dir) {
    throw new Error(
      `dataset cifar10: ${[...TRAIN_FILES, ...TEST_FILES].join(', ')} not found in ${root} or ${join(root, SUBDIR)}; ` +
        'set datasets[].args.data_dir to the folder of the binary version, or args.download: true',
    );
  }
  const normalize = args.bool('normalize', true);
  const split = spec.split ?? 'train';
  const out: LoadedSplits = {};
  if (split === 'train' || split === 'all') out.train = decodeCifarRecords(await readBatches(dir, TRAIN_FILES), 'cifar10/train', normalize);
  if (split === 'test' || split === 'all') out.test = decodeCifarRecords(await readBatches(dir, TEST_FILES), 'cifar10/test', normalize);
  logger.debug(`loaded cifar10 (${split}) from ${dir}`);
  return out;
};
