/**
 * Construction and slicing of {@link ArrayDataset}s. Datasets are immutable by convention: every
 * function here returns new arrays, so a shard never aliases the whole dataset it came from.
 */
import type { ArrayDataset } from './types.js';

/**
 * Storage for `length` values of a data set: shared memory in Node, so the training workers of
 * @oiafed/models (data-parallel steps, serial mode's learner pool) read a data set in place
 * instead of keeping a shared copy of it beside this one (Fashion-MNIST: 219 MB less per
 * process). Browsers keep plain buffers (SharedArrayBuffer needs cross-origin isolation there,
 * and WebGL refuses shared views).
 */
function storage(length: number): ArrayBuffer | SharedArrayBuffer {
  const bytes = length * 4;
  const node = typeof process !== 'undefined' && process.versions?.node !== undefined;
  return node && typeof SharedArrayBuffer === 'function' ? new SharedArrayBuffer(bytes) : new ArrayBuffer(bytes);
}

/** A zeroed Float32Array of `length` values in data-set storage (see `storage`). */
export function datasetFloat32(length: number): Float32Array {
  return new Float32Array(storage(length));
}

/** A zeroed Int32Array of `length` values in data-set storage (see `storage`). */
export function datasetInt32(length: number): Int32Array {
  return new Int32Array(storage(length));
}

/** Number of values in one sample of the given shape. */
export function sampleSize(shape: readonly number[]): number {
  let size = 1;
  for (const d of shape) size *= d;
  return size;
}

/** Fields of a dataset before validation. */
export interface DatasetParts {
  name: string;
  features: Float32Array;
  labels: Int32Array;
  sampleShape: readonly number[];
  numClasses: number;
}

/**
 * Checks the parts agree (feature count, label range) and freezes the shape.
 * Throws an error naming the dataset and the mismatch.
 */
export function createDataset(parts: DatasetParts): ArrayDataset {
  const { name, features, labels, sampleShape, numClasses } = parts;
  if (!sampleShape.every((d) => Number.isInteger(d) && d > 0)) {
    throw new Error(`dataset ${name}: sampleShape must be positive integers, got [${sampleShape.join(',')}]`);
  }
  if (!Number.isInteger(numClasses) || numClasses < 1) {
    throw new Error(`dataset ${name}: numClasses must be a positive integer, got ${numClasses}`);
  }
  const per = sampleSize(sampleShape);
  if (features.length !== labels.length * per) {
    throw new Error(
      `dataset ${name}: ${features.length} feature values for ${labels.length} labels of shape [${sampleShape.join(',')}]; expected ${labels.length * per}`,
    );
  }
  for (let i = 0; i < labels.length; i++) {
    const y = labels[i];
    if (y < 0 || y >= numClasses) {
      throw new Error(`dataset ${name}: label ${y} at sample ${i} is outside 0..${numClasses - 1}`);
    }
  }
  return Object.freeze({
    name,
    features,
    labels,
    sampleShape: Object.freeze([...sampleShape]),
    numClasses,
    length: labels.length,
  });
}

/**
 * The samples at `indices`, in that order, copied into a new dataset.
 * Throws on an index outside `0..ds.length-1`.
 */
export function subset(ds: ArrayDataset, indices: ArrayLike<number>, name?: string): ArrayDataset {
  const per = sampleSize(ds.sampleShape);
  const n = indices.length;
  const features = datasetFloat32(n * per);
  const labels = datasetInt32(n);
  for (let i = 0; i < n; i++) {
    const src = indices[i];
    if (!Number.isInteger(src) || src < 0 || src >= ds.length) {
      throw new RangeError(`subset of ${ds.name}: index ${src} at position ${i} is outside 0..${ds.length - 1}`);
    }
    labels[i] = ds.labels[src];
    features.set(ds.features.subarray(src * per, (src + 1) * per), i * per);
  }
  return createDataset({
    name: name ?? `${ds.name}[subset ${n}]`,
    features,
    labels,
    sampleShape: ds.sampleShape,
    numClasses: ds.numClasses,
  });
}

/** `a` followed by `b`. Both must have the same sample shape and number of classes. */
export function concat(a: ArrayDataset, b: ArrayDataset, name?: string): ArrayDataset {
  if (a.sampleShape.length !== b.sampleShape.length || a.sampleShape.some((d, i) => d !== b.sampleShape[i])) {
    throw new Error(
      `concat: sample shapes differ: ${a.name} has [${a.sampleShape.join(',')}], ${b.name} has [${b.sampleShape.join(',')}]`,
    );
  }
  if (a.numClasses !== b.numClasses) {
    throw new Error(`concat: ${a.name} has ${a.numClasses} classes, ${b.name} has ${b.numClasses}`);
  }
  const features = datasetFloat32(a.features.length + b.features.length);
  features.set(a.features, 0);
  features.set(b.features, a.features.length);
  const labels = datasetInt32(a.length + b.length);
  labels.set(a.labels, 0);
  labels.set(b.labels, a.length);
  return createDataset({
    name: name ?? `${a.name}+${b.name}`,
    features,
    labels,
    sampleShape: a.sampleShape,
    numClasses: a.numClasses,
  });
}

/**
 * Bytes (0..255, channels last) to `((x / 255) - mean[c]) / std[c]`. With `normalize` false the
 * result is just `x / 255` in [0, 1].
 */
export function normalizePixels(
  pixels: Uint8Array,
  channels: number,
  mean: readonly number[],
  std: readonly number[],
  normalize: boolean,
): Float32Array {
  const out = datasetFloat32(pixels.length);
  if (!normalize) {
    for (let i = 0; i < pixels.length; i++) out[i] = pixels[i] / 255;
    return out;
  }
  // One lookup table per channel: 256 values instead of a division per pixel.
  const tables = Array.from({ length: channels }, (_, c) => {
    const t = new Float32Array(256);
    for (let v = 0; v < 256; v++) t[v] = (v / 255 - mean[c]) / std[c];
    return t;
  });
  if (channels === 1) {
    const t = tables[0];
    for (let i = 0; i < pixels.length; i++) out[i] = t[pixels[i]];
  } else {
    for (let i = 0; i < pixels.length; i++) out[i] = tables[i % channels][pixels[i]];
  }
  return out;
}
