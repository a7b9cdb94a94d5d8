/**
 * IDX files (MNIST, Fashion-MNIST), raw or gzipped, and the loaders built on them.
 */
import { access, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { gunzip as gunzipCb } from 'node:zlib';
import { ArgReader, checksumFor, defaultCacheDir, resolveBaseUrl } from './args.js';
import { createDataset, datasetInt32, normalizePixels } from './array-dataset.js';
import { downloadFile } from './download.js';
import { silentLogger, type ArrayDataset, type DatasetLoader, type LoadedSplits } from './types.js';

const gunzip = promisify(gunzipCb);

/** A parsed IDX array: big-endian dims, values of the declared type. */
export interface IdxArray {
  dims: number[];
  data: Uint8Array | Int8Array | Int16Array | Int32Array | Float32Array | Float64Array;
}

const IDX_TYPES: Record<number, { size: number; name: string }> = {
  0x08: { size: 1, name: 'ubyte' },
  0x09: { size: 1, name: 'byte' },
  0x0b: { size: 2, name: 'short' },
  0x0c: { size: 4, name: 'int' },
  0x0d: { size: 4, name: 'float' },
  0x0e: { size: 8, name: 'double' },
};

/** Parses an IDX buffer (already gunzipped). `source` names the file in errors. */
export function parseIdx(buf: Uint8Array, source = 'IDX data'): IdxArray {
  if (buf.length < 4 || buf[0] !== 0 || buf[1] !== 0) {
    throw new Error(`${source}: not an IDX file (magic must start with two zero bytes)`);
  }
  const type = IDX_TYPES[buf[2]];
  if (!type) throw new Error(`${source}: unknown IDX element type 0x${buf[2].toString(16)}`);
  const ndim = buf[3];
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  if (buf.length < 4 + 4 * ndim) throw new Error(`${source}: truncated IDX header`);
  const dims: number[] = [];
  let count = 1;
  for (let i = 0; i < ndim; i++) {
    dims.push(view.getUint32(4 + 4 * i, false));
    count *= dims[i];
  }
  const offset = 4 + 4 * ndim;
  const expected = offset + count * type.size;
  if (buf.length !== expected) {
    throw new Error(`${source}: IDX dims [${dims.join(',')}] need ${expected} bytes, file has ${buf.length}`);
  }
  switch (buf[2]) {
    case 0x08:
      return { dims, data: buf.slice(offset, expected) };
    case 0x09:
      return { dims, data: new Int8Array(buf.slice(offset, expected).buffer) };
    default: {
      const make = {
        0x0b: () => new Int16Array(count),
        0x0c: () => new Int32Array(count),
        0x0d: () => new Float32Array(count),
        0x0e: () => new Float64Array(count),
      }[buf[2] as 0x0b | 0x0c | 0x0d | 0x0e];
      const out = make();
      for (let i = 0; i < count; i++) {
        const at = offset + i * type.size;
        out[i] =
          buf[2] === 0x0b ? view.getInt16(at) : buf[2] === 0x0c ? view.getInt32(at) : buf[2] === 0x0d ? view.getFloat32(at) : view.getFloat64(at);
      }
      return { dims, data: out };
    }
  }
}

/** Reads an IDX file, gunzipping when it starts with the gzip magic (whatever its name). */
export async function readIdxFile(path: string): Promise<IdxArray> {
  let buf: Buffer = await readFile(path);
  if (buf[0] === 0x1f && buf[1] === 0x8b) {
    try {
      buf = await gunzip(buf);
    } catch (err) {
      throw new Error(`${path}: corrupt gzip data (${(err as Error).message})`);
    }
  }
  return parseIdx(buf, path);
}

/** Writes IDX bytes for unsigned-byte data (tests and fixtures). */
export function encodeIdxUint8(dims: readonly number[], data: Uint8Array): Buffer {
  const header = Buffer.alloc(4 + 4 * dims.length);
  header[2] = 0x08;
  header[3] = dims.length;
  dims.forEach((d, i) => header.writeUInt32BE(d, 4 + 4 * i));
  return Buffer.concat([header, data]);
}

/** Static description of an MNIST-like dataset. */
export interface IdxDatasetInfo {
  type: string;
  numClasses: number;
  /** Per-channel mean and std of the training images scaled to [0,1]. */
  mean: number;
  std: number;
  /** Directories searched (in order) when `args.data_dir` is not given, before the cache dir. */
  systemDirs: string[];
  /** Subfolders also searched inside a data dir (torchvision's layout). */
  subdirs: string[];
  defaultBaseUrl: string;
  /** Standard .gz file name -> md5 of the upstream file. */
  md5: Record<string, string>;
}

const FILES = {
  trainImages: 'train-images-idx3-ubyte',
  trainLabels: 'train-labels-idx1-ubyte',
  testImages: 't10k-images-idx3-ubyte',
  testLabels: 't10k-labels-idx1-ubyte',
} as const;

/** The accepted spellings of one IDX file: `.gz` or raw, and the `train-images.idx3-ubyte` variant. */
function variants(name: string): string[] {
  const dotted = name.replace(/-(idx\d-ubyte)$/, '.$1');
  return [`${name}.gz`, name, `${dotted}.gz`, dotted];
}

async function exists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  );
}

async function findFile(dirs: string[], name: string): Promise<string | undefined> {
  for (const dir of dirs) {
    for (const v of variants(name)) {
      const p = join(dir, v);
      if (await exists(p)) return p;
    }
  }
  return undefined;
}

/** A loader for an MNIST-like dataset described by `info`. */
export function createIdxLoader(info: IdxDatasetInfo): DatasetLoader {
  return async (spec, options): Promise<LoadedSplits> => {
    const logger = options.logger ?? silentLogger;
    const args = new ArgReader(info.type, spec.args ?? {});
    const given = args.string('data_dir');
    const roots = given ? [given] : [...info.systemDirs, defaultCacheDir(info.type)];
    const dirs = roots.flatMap((r) => [r, ...info.subdirs.map((s) => join(r, s))]);
    const download = args.bool('download', false);
    const normalize = args.bool('normalize', true);
    const split = spec.split ?? 'train';
    const wanted: Array<'train' | 'test'> = split === 'all' ? ['train', 'test'] : [split];
    const out: LoadedSplits = {};
    for (const which of wanted) {
      const imagesName = which === 'train' ? FILES.trainImages : FILES.testImages;
      const labelsName = which === 'train' ? FILES.trainLabels : FILES.testLabels;
      const paths: string[] = [];
      for (const name of [imagesName, labelsName]) {
        let path = await findFile(dirs, name);
        if (!path && download) {
          const dir = given ?? defaultCacheDir(info.type);
          path = join(dir, `${name}.gz`);
          const url = resolveBaseUrl(info.type, args, info.defaultBaseUrl) + `${name}.gz`;
          const sums = checksumFor(args, `${name}.gz`, info.md5[`${name}.gz`]);
          await downloadFile(url, path, { ...sums, logger, signal: options.signal, retries: args.int('retries', 2) });
        }
        if (!path) {
          throw new Error(
            `dataset ${info.type}: ${name}[.gz] not found in ${roots.join(', ')}` +
              ` (also looked in ${info.subdirs.join(', ')} below them); set datasets[].args.data_dir, or args.download: true` +
              (info.type === 'fashion_mnist' ? ', or install the Debian package dataset-fashion-mnist' : ''),
          );
        }
        paths.push(path);
      }
      options.signal?.throwIfAborted();
      out[which] = await readIdxPair(info, which, paths[0], paths[1], normalize);
      logger.debug(`loaded ${info.type}/${which}: ${out[which]!.length} samples from ${paths[0]}`);
    }
    return out;
  };
}

async function readIdxPair(info: IdxDatasetInfo, split: string, imagesPath: string, labelsPath: string, normalize: boolean): Promise<ArrayDataset> {
  const [images, labels] = await Promise.all([readIdxFile(imagesPath), readIdxFile(labelsPath)]);
  if (images.dims.length !== 3 || !(images.data instanceof Uint8Array)) {
    throw new Error(`${imagesPath}: expected unsigned-byte images of 3 dims [n,rows,cols], got dims [${images.dims.join(',')}]`);
  }
  if (labels.dims.length !== 1 || !(labels.data instanceof Uint8Array)) {
    throw new Error(`${labelsPath}: expected unsigned-byte labels of 1 dim [n], got dims [${labels.dims.join(',')}]`);
  }
  if (images.dims[0] !== labels.dims[0]) {
    throw new Error(`${info.type}/${split}: ${images.dims[0]} images in ${imagesPath} but ${labels.dims[0]} labels in ${labelsPath}`);
  }
  return createDataset({
    name: `${info.type}/${split}`,
    features: normalizePixels(images.data, 1, [info.mean], [info.std], normalize),
    labels: widenLabels(labels.data),
    sampleShape: [images.dims[1], images.dims[2], 1],
    numClasses: info.numClasses,
  });
}

/** Byte labels as Int32 in data-set storage (shared with training workers in Node). */
function widenLabels(bytes: Uint8Array): Int32Array {
  const out = datasetInt32(bytes.length);
  out.set(bytes);
  return out;
}

/** MNIST (LeCun et al.): mean 0.1307, std 0.3081 of the training pixels in [0,1]. */
export const MNIST_INFO: IdxDatasetInfo = {
  type: 'mnist',
  numClasses: 10,
  mean: 0.1307,
  std: 0.3081,
  systemDirs: [],
  subdirs: ['raw', join('MNIST', 'raw')],
  defaultBaseUrl: 'https://ossci-datasets.s3.amazonaws.com/mnist/',
  md5: {
    'train-images-idx3-ubyte.gz': 'f68b3c2dcbeaaa9fbdd348bbdeb94873',
    'train-labels-idx1-ubyte.gz': 'd53e105ee54ea40749a09fcbcd1e9432',
    't10k-images-idx3-ubyte.gz': '9fb629c4189551a2d022fa330f9573f3',
    't10k-labels-idx1-ubyte.gz': 'ec29112dd5afa0611ce80d1b7f02629c',
  },
};

/** Fashion-MNIST (Xiao et al. 2017): mean 0.2860, std 0.3530 of the training pixels in [0,1]. */
export const FASHION_MNIST_INFO: IdxDatasetInfo = {
  type: 'fashion_mnist',
  numClasses: 10,
  mean: 0.286,
  std: 0.353,
  systemDirs: ['/usr/share/datasets/fashion-mnist'],
  subdirs: ['raw', join('FashionMNIST', 'raw')],
  defaultBaseUrl: 'http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/',
  md5: {
    'train-images-idx3-ubyte.gz': '8d4fb7e6c68d591d4c3dfef9ec88bf0d',
    'train-labels-idx1-ubyte.gz': '25c81989df183df01b3e8a0aad5dffbe',
    't10k-images-idx3-ubyte.gz': 'bef4ecab320f06d8554ea6380940ec79',
    't10k-labels-idx1-ubyte.gz': 'bb300cfdad3c16e7a12a480ee83cd310',
  },
};
