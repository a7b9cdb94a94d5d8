/**
 * SVHN, cropped digits (Netzer et al. 2011, "Reading Digits in Natural Images with Unsupervised
 * Feature Learning"): `train_32x32.mat` (73,257 digits) and `test_32x32.mat` (26,032), MATLAB
 * level-5 files holding `X`, uint8 [32, 32, 3, N] (row, column, channel, sample), and `y`, double
 * [N, 1] with labels 1..10 where 10 is the digit 0. Features come out channels last, [32, 32, 3];
 * labels are the digits 0..9.
 */
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { ArgReader, defaultCacheDir } from './args.js';
import { createDataset } from './array-dataset.js';
import { fetchVerified, pathExists } from './fetch-file.js';
import { readMat5, type MatArray } from './mat5.js';
import { silentLogger, type ArrayDataset, type DatasetLoader, type LoadedSplits } from './types.js';

/** Per-channel mean of the SVHN training pixels in [0,1] (R, G, B). */
export const SVHN_MEAN = [0.4377, 0.4438, 0.4728] as const;
/** Per-channel standard deviation of the SVHN training pixels in [0,1] (R, G, B). */
export const SVHN_STD = [0.198, 0.201, 0.197] as const;

const SIDE = 32;
const PLANE = SIDE * SIDE;
/** More than either standard split (73,257 and 26,032); bounds what a file may make us allocate. */
const MAX_SAMPLES = 100_000;
/** The largest inflated array accepted: X of MAX_SAMPLES digits and its headers. */
const MAX_ARRAY_BYTES = MAX_SAMPLES * 3 * PLANE + 4096;
const SPLIT_FILES = {
  train: { file: 'train_32x32.mat', md5: 'e26dedcc434d2e4c54c9b2d4a06d8373' },
  test: { file: 'test_32x32.mat', md5: 'eb5a983be6a315427106f1b164d9cef3' },
} as const;
const DEFAULT_BASE_URL = 'http://ufldl.stanford.edu/housenumbers/';

/** Checks X and y of one file and returns the sample count. */
function checkArrays(x: MatArray | undefined, y: MatArray | undefined, source: string): number {
  if (!x || !y) throw new Error(`${source}: expected arrays X and y (SVHN cropped digits), found ${!x ? 'no X' : 'no y'}`);
  const [h, w, c, n = 1] = x.dims;
  if (x.dims.length > 4 || h !== SIDE || w !== SIDE || c !== 3) {
    throw new Error(`${source}: X has dimensions [${x.dims.join(', ')}], expected [32, 32, 3, N]`);
  }
  if (!(x.data instanceof Uint8Array)) throw new Error(`${source}: X is stored as ${x.className} values, expected uint8 pixels`);
  if (n > MAX_SAMPLES) throw new Error(`${source}: X holds ${n} samples, more than the ${MAX_SAMPLES} an SVHN split has`);
  if (y.data.length !== n || y.dims.filter((d) => d !== 1).length > 1) {
    throw new Error(`${source}: y has dimensions [${y.dims.join(', ')}], expected [${n}, 1] (one label per sample of X)`);
  }
  return n;
}

/** SVHN's labels 1..10 as digits (10 is the digit 0). */
function digitLabels(y: MatArray, source: string): Int32Array {
  const labels = new Int32Array(y.data.length);
  for (let i = 0; i < labels.length; i++) {
    const v = y.data[i];
    if (!Number.isInteger(v) || v < 1 || v > 10) throw new Error(`${source}: label ${v} of sample ${i} is outside 1..10 (10 is the digit 0)`);
    labels[i] = v === 10 ? 0 : v;
  }
  return labels;
}

/**
 * Decodes the arrays of one SVHN file: column-major [row, col, channel, sample] bytes to
 * normalised HWC floats (or only scaled to [0,1] when `normalize` is false).
 */
export function decodeSvhn(arrays: Map<string, MatArray>, name: string, normalize = true, source = name): ArrayDataset {
  const x = arrays.get('X');
  const y = arrays.get('y');
  const n = checkArrays(x, y, source);
  const labels = digitLabels(y!, source);
  const px = x!.data as Uint8Array;
  const tables = [0, 1, 2].map((c) => {
    const t = new Float32Array(256);
    for (let v = 0; v < 256; v++) t[v] = normalize ? (v / 255 - SVHN_MEAN[c]) / SVHN_STD[c] : v / 255;
    return t;
  });
  const features = new Float32Array(n * 3 * PLANE);
  for (let s = 0; s < n; s++) {
    for (let ch = 0; ch < 3; ch++) {
      const t = tables[ch];
      const src = (s * 3 + ch) * PLANE;
      for (let col = 0; col < SIDE; col++) {
        for (let row = 0; row < SIDE; row++) features[((s * SIDE + row) * SIDE + col) * 3 + ch] = t[px[src + col * SIDE + row]];
      }
    }
  }
  return createDataset({ name, features, labels, sampleShape: [SIDE, SIDE, 3], numClasses: 10 });
}

/** Reads one .mat file, refusing one larger than an SVHN split can be before reading it. */
async function readSplitFile(path: string): Promise<Map<string, MatArray>> {
  const file = await open(path, 'r');
  let buf: Buffer;
  try {
    const { size } = await file.stat();
    if (size > MAX_ARRAY_BYTES + 4096) {
      throw new Error(`${path}: ${size} bytes, more than an SVHN split of at most ${MAX_SAMPLES} digits can take (${MAX_ARRAY_BYTES + 4096})`);
    }
    buf = await file.readFile();
  } finally {
    await file.close();
  }
  return readMat5(buf, path, { names: ['X', 'y'], maxBytes: MAX_ARRAY_BYTES });
}

/** Loader of the `svhn` type (cropped digits). Args: data_dir, download, base_url, normalize, checksums, retries. */
export const loadSvhn: DatasetLoader = async (spec, options): Promise<LoadedSplits> => {
  const logger = options.logger ?? silentLogger;
  const args = new ArgReader('svhn', spec.args ?? {});
  const normalize = args.bool('normalize', true);
  const split = spec.split ?? 'train';
  const splits = split === 'all' ? (['train', 'test'] as const) : [split];
  const dir = args.string('data_dir') ?? defaultCacheDir('svhn');
  const download = args.bool('download', false);
  const out: LoadedSplits = {};
  for (const s of splits) {
    const { file, md5 } = SPLIT_FILES[s];
    let path = join(dir, file);
    // A file already there is used as it is (as CIFAR-10's extracted batches are); downloads are checked.
    if (!(await pathExists(path)) && download) {
      path = await fetchVerified(dir, file, args, { type: 'svhn', defaultBaseUrl: DEFAULT_BASE_URL, md5, logger, signal: options.signal });
    } else if (!(await pathExists(path))) {
      throw new Error(`dataset svhn: ${file} not found in ${dir}; set datasets[].args.data_dir to the folder of the cropped-digits .mat files, or args.download: true`);
    }
    out[s] = decodeSvhn(await readSplitFile(path), `svhn/${s}`, normalize, path);
  }
  logger.debug(`loaded svhn (${split}) from ${dir}`);
  return out;
};
