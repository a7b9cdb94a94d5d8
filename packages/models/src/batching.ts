import * as tf from '@tensorflow/tfjs-core';
import type { DataSource } from './types.js';

/** Tensors of one mini-batch; the caller disposes them. */
export interface Batch {
  x: tf.Tensor;
  /** One-hot float32 labels `[b, numClasses]`. */
  yOneHot: tf.Tensor;
  /** Class indices, int32 `[b]`. */
  labels: tf.Tensor1D;
  size: number;
}

/**
 * Throws a clear error unless `data` is well-formed and fits a model with the given input shape
 * and number of outputs.
 */
export function checkDataSource(data: DataSource, inputShape: readonly number[], numOutputs: number, where: string): void {
  if (data === null || typeof data !== 'object') throw new Error(`${where}: data must be a DataSource object, got ${String(data)}`);
  if (!(data.features instanceof Float32Array)) throw new Error(`${where}: data.features must be a Float32Array`);
  if (!(data.labels instanceof Int32Array)) throw new Error(`${where}: data.labels must be an Int32Array`);
  if (!Number.isInteger(data.length) || data.length < 0) throw new Error(`${where}: data.length must be a non-negative integer, got ${data.length}`);
  const sampleShape = [...data.sampleShape];
  if (sampleShape.length !== inputShape.length || sampleShape.some((d, i) => d !== inputShape[i])) {
    throw new Error(
      `${where}: data sample shape [${sampleShape.join(', ')}] does not match the model input shape [${inputShape.join(', ')}] ` +
        `(set model.args.input_shape or use a matching dataset)`,
    );
  }
  const sampleSize = sampleShape.reduce((a, b) => a * b, 1);
  if (data.features.length !== data.length * sampleSize) {
    throw new Error(`${where}: data.features has ${data.features.length} values, expected length ${data.length} x ${sampleSize} = ${data.length * sampleSize}`);
  }
  if (data.labels.length !== data.length) {
    throw new Error(`${where}: data.labels has ${data.labels.length} entries, expected ${data.length}`);
  }
  if (data.numClasses > numOutputs) {
    throw new Error(`${where}: data has ${data.numClasses} classes but the model has ${numOutputs} outputs (set model.args.num_classes)`);
  }
  for (let i = 0; i < data.labels.length; i++) {
    const y = data.labels[i];
    if (y < 0 || y >= numOutputs) {
      throw new Error(`${where}: data.labels[${i}] = ${y} is outside [0, ${numOutputs}) for a model with ${numOutputs} outputs`);
    }
  }
}

/** Copies the samples `indices[start, end)` into fresh tensors. */
export function makeBatch(data: DataSource, indices: Uint32Array | null, start: number, end: number, numClasses: number): Batch {
  const sampleSize = data.sampleShape.reduce((a, b) => a * b, 1);
  const size = end - start;
  let xs: Float32Array;
  const ys = new Float32Array(size * numClasses);
  const labels = new Int32Array(size);
  if (indices === null) {
    // The backend may keep a reference to the array it is given, so always hand it a copy.
    xs = data.features.slice(start * sampleSize, end * sampleSize);
    for (let i = 0; i < size; i++) labels[i] = data.labels[start + i];
  } else {
    xs = new Float32Array(size * sampleSize);
    for (let i = 0; i < size; i++) {
      const src = indices[start + i];
      xs.set(data.features.subarray(src * sampleSize, (src + 1) * sampleSize), i * sampleSize);
      labels[i] = data.labels[src];
    }
  }
  for (let i = 0; i < size; i++) ys[i * numClasses + labels[i]] = 1;
  return {
    x: tf.tensor(xs, [size, ...data.sampleShape], 'float32'),
    yOneHot: tf.tensor2d(ys, [size, numClasses], 'float32'),
    labels: tf.tensor1d(labels, 'int32'),
    size,
  };
}

/** Disposes every tensor of a batch. */
export function disposeBatch(batch: Batch): void {
  batch.x.dispose();
  batch.yOneHot.dispose();
  batch.labels.dispose();
}

/** Mean softmax cross-entropy of logits against one-hot labels. */
export function crossEntropy(logits: tf.Tensor, yOneHot: tf.Tensor): tf.Scalar {
  return tf.tidy(() => tf.mean(tf.neg(tf.sum(tf.mul(yOneHot, tf.logSoftmax(logits)), -1))) as tf.Scalar);
}

/** Number of rows whose arg-max equals the label, as an int32 scalar. */
export function correctCount(logits: tf.Tensor, labels: tf.Tensor1D): tf.Scalar {
  return tf.tidy(() => tf.sum(tf.cast(tf.equal(tf.argMax(logits, -1), labels), 'int32')) as tf.Scalar);
}

/** Lets timers and sockets (gRPC heartbeats) run between batches. */
export function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
