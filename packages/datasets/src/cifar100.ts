/**
 * CIFAR-100, binary version (Krizhevsky 2009): `cifar-100-binary/train.bin` (50,000 records) and
 * `test.bin` (10,000), each record 1 coarse label byte (20 superclasses), 1 fine label byte (100
 * classes) and 3072 pixel bytes (1024 red, 1024 green, 1024 blue, rows top to bottom). Features
 * come out channels last, [32, 32, 3]; `args.label_mode` picks the fine (default) or coarse labels.
 */
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { ArgReader, defaultCacheDir } from './args.js';
import { createDataset } from './array-dataset.js';
import { extractByName, fetchVerified, pathExists } from './fetch-file.js';
import { silentLogger, type ArrayDataset, type DatasetLoader, type LoadedSplits, type Logger } from './types.js';

/** Per-channel mean of the CIFAR-100 training pixels in [0,1] (R, G, B). */
export const CIFAR100_MEAN = [0.5071, 0.4865, 0.4409] as const;
/** Per-channel standard deviation of the CIFAR-100 training pixels in [0,1] (R, G, B). */
export const CIFAR100_STD = [0.2673, 0.2564, 0.2762] as const;

const PLANE = 32 * 32;
const RECORD = 2 + 3 * PLANE;
/** The largest split of the standard files; a larger file is not CIFAR-100 (and is not read). */
const MAX_RECORDS = 50_000;
const SPLIT_FILES = { train: 'train.bin', test: 'test.bin' } as const;
const SUBDIR = 'cifar-100-binary';
const ARCHIVE = 'cifar-100-binary.tar.gz';
const ARCHIVE_MD5 = '03b5dce01913d631647c71ecec9e9cb8';
const DEFAULT_BASE_URL = 'https://www.cs.toronto.edu/~kriz/';

/** Which of a record's two labels a data set carries. */
export type Cifar100LabelMode = 'fine' | 'coarse';

/**
 * Decodes CIFAR-100 binary records (CHW bytes to normalised HWC floats, or only scaled to [0,1]
 * when `normalize` is false). `source` names the data in errors.
 */
export function decodeCifar100Records(buf: Uint8Array, name: string, labelMode: Cifar100LabelMode, normalize = true, source = name): ArrayDataset {
  checkRecords(buf, source);
  const count = buf.length / RECORD;
  const features = new Float32Array(count * 3 * PLANE);
  const labels = new Int32Array(count);
  const tables = [0, 1, 2].map((c) => {
    const t = new Float32Array(256);
    for (let v = 0; v < 256; v++) t[v] = normalize ? (v / 255 - CIFAR100_MEAN[c]) / CIFAR100_STD[c] : v / 255;
    return t;
  });
  const labelByte = labelMode === 'coarse' ? 0 : 1;
  for (let n = 0, off = 0; n < count; n++, off += RECORD) {
    labels[n] = buf[off + labelByte];
    const base = n * 3 * PLANE;
    for (let c = 0; c < 3; c++) {
      const t = tables[c];
      const src = off + 2 + c * PLANE;
      for (let p = 0; p < PLANE; p++) features[base + p * 3 + c] = t[buf[src + p]];
    }
  }
  return createDataset({ name, features, labels, sampleShape: [32, 32, 3], numClasses: labelMode === 'coarse' ? 20 : 100 });
}

/** Record count, coarse labels < 20 and fine labels < 100, with the record at fault named. */
function checkRecords(buf: Uint8Array, source: string): void {
  if (buf.length === 0 || buf.length % RECORD !== 0) {
    throw new Error(`${source}: size ${buf.length} is not a positive multiple of the CIFAR-100 record size ${RECORD} (1 coarse + 1 fine label + 3072 pixels)`);
  }
  for (let off = 0; off < buf.length; off += RECORD) {
    if (buf[off] > 19) throw new Error(`${source}: coarse label ${buf[off]} in record ${off / RECORD} is outside 0..19`);
    if (buf[off + 1] > 99) throw new Error(`${source}: fine label ${buf[off + 1]} in record ${off / RECORD} is outside 0..99`);
  }
}

/** Encodes HWC bytes and labels as CIFAR-100 binary records (tests and fixtures). */
export function encodeCifar100Records(hwcPixels: Uint8Array, coarse: ArrayLike<number>, fine: ArrayLike<number>): Buffer {
  if (coarse.length !== fine.length || hwcPixels.length !== fine.length * 3 * PLANE) {
    throw new Error(`encodeCifar100Records: ${fine.length} fine labels, ${coarse.length} coarse labels and ${hwcPixels.length} pixel bytes do not describe the same images`);
  }
  const out = Buffer.alloc(fine.length * RECORD);
  for (let n = 0; n < fine.length; n++) {
    out[n * RECORD] = coarse[n];
    out[n * RECORD + 1] = fine[n];
    for (let p = 0; p < PLANE; p++) {
      for (let c = 0; c < 3; c++) out[n * RECORD + 2 + c * PLANE + p] = hwcPixels[(n * PLANE + p) * 3 + c];
    }
  }
  return out;
}

/** Reads one split file, refusing a size that cannot be CIFAR-100 before reading it. */
async function readSplitFile(path: string): Promise<Buffer> {
  const file = await open(path, 'r');
  try {
    const { size } = await file.stat();
    if (size === 0 || size % RECORD !== 0 || size > MAX_RECORDS * RECORD) {
      throw new Error(
        `${path}: size ${size} is not CIFAR-100: expected a positive multiple of the record size ${RECORD} ` +
          `(1 coarse + 1 fine label + 3072 pixels), at most ${MAX_RECORDS} records`,
      );
    }
    return await file.readFile();
  } finally {
    await file.close();
  }
}

async function findSplitDir(root: string, files: string[]): Promise<string | undefined> {
  for (const dir of [root, join(root, SUBDIR)]) {
    if ((await Promise.all(files.map((f) => pathExists(join(dir, f))))).every(Boolean)) return dir;
  }
  return undefined;
}

async function downloadAndExtract(dir: string, args: ArgReader, logger: Logger, signal?: AbortSignal): Promise<void> {
  const archive = await fetchVerified(dir, ARCHIVE, args, { type: 'cifar100', defaultBaseUrl: DEFAULT_BASE_URL, md5: ARCHIVE_MD5, logger, signal });
  const wanted = new Set([...Object.values(SPLIT_FILES), 'coarse_label_names.txt', 'fine_label_names.txt']);
  await extractByName(archive, dir, SUBDIR, wanted, { logger, signal });
}

function labelModeOf(args: ArgReader): Cifar100LabelMode {
  const mode = args.string('label_mode') ?? 'fine';
  if (mode !== 'fine' && mode !== 'coarse') throw args.error('label_mode', 'fine or coarse');
  return mode;
}

/** Loader of the `cifar100` type. Args: data_dir, download, base_url, label_mode, normalize, checksums, retries. */
export const loadCifar100: DatasetLoader = async (spec, options): Promise<LoadedSplits> => {
  const logger = options.logger ?? silentLogger;
  const args = new ArgReader('cifar100', spec.args ?? {});
  const labelMode = labelModeOf(args);
  const normalize = args.bool('normalize', true);
  const split = spec.split ?? 'train';
  const splits = split === 'all' ? (['train', 'test'] as const) : [split];
  const files = splits.map((s) => SPLIT_FILES[s]);
  const root = args.string('data_dir') ?? defaultCacheDir('cifar100');
  let dir = await findSplitDir(root, files);
  if (!dir && args.bool('download', false)) {
    await downloadAndExtract(root, args, logger, options.signal);
    dir = await findSplitDir(root, files);
  }
  if (!dir) {
    throw new Error(
      `dataset cifar100: ${files.join(', ')} not found in ${root} or ${join(root, SUBDIR)}; ` +
        'set datasets[].args.data_dir to the folder of the binary version (cifar-100-binary.tar.gz), or args.download: true',
    );
  }
  const out: LoadedSplits = {};
  for (const s of splits) {
    const path = join(dir, SPLIT_FILES[s]);
    out[s] = decodeCifar100Records(await readSplitFile(path), `cifar100/${s}`, labelMode, normalize, path);
  }
  logger.debug(`loaded cifar100 (${split}, ${labelMode} labels) from ${dir}`);
  return out;
};
