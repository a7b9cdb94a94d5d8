/**
 * The part of a data-parallel training step that every thread runs the same way: forward and
 * backward over one shard of a mini-batch, written into a flat vector in the model's weight
 * layout. The main thread and every worker call this one function, so a shard's numbers do not
 * depend on which thread computed them.
 */
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { correctCount, crossEntropy } from '../batching.js';
import { skipInputGradient } from '../wasm/index.js';
import type { TensorSpec } from '../types.js';

type LayerVariable = tfl.LayersModel['weights'][number];

/** One weight tensor of a model with its place in the flat vector. */
export interface WeightRef {
  spec: TensorSpec;
  variable: LayerVariable;
}

const NORMALIZATION_LAYERS = new Set(['BatchNormalization', 'LayerNormalization']);

/** Every weight of `model` in flat-vector order: layers in order, each layer's weights in order. */
export function weightRefs(model: tfl.LayersModel): WeightRef[] {
  const refs: WeightRef[] = [];
  const seen = new Set<string>();
  let offset = 0;
  for (const layer of model.layers) {
    const isNormalization = NORMALIZATION_LAYERS.has(layer.getClassName());
    for (const variable of layer.weights) {
      const shape = [...variable.shape] as number[];
      const size = shape.reduce((a, b) => a * b, 1);
      let name = variable.originalName;
      if (seen.has(name)) name = `${name}_${refs.length}`;
      seen.add(name);
      refs.push({ spec: { name, shape, offset, size, trainable: variable.trainable, isNormalization }, variable });
      offset += size;
    }
  }
  return refs;
}

/** What one shard contributes besides its gradient. */
export interface ShardOutcome {
  /** Mean cross-entropy over the shard's samples. */
  loss: number;
  /** Samples of the shard whose arg-max equals the label. */
  correct: number;
}

/**
 * Forward and backward over one shard (training mode). Writes into `out`, in the flat layout:
 * at trainable tensors the gradient of the shard's MEAN loss, at non-trainable tensors their
 * values after the forward pass (batch norm's moving statistics, updated from this shard alone).
 */
export function shardGradients(
  model: tfl.LayersModel,
  refs: readonly WeightRef[],
  batch: { x: tf.Tensor; yOneHot: tf.Tensor; labels: tf.Tensor1D },
  out: Float32Array,
): ShardOutcome {
  const trainable = refs.filter((r) => r.spec.trainable);
  const varList = trainable.map((r) => r.variable.read() as tf.Variable);
  let correct: tf.Scalar | undefined;
  const release = skipInputGradient(batch.x);
  let value: tf.Scalar;
  let grads: tf.NamedTensorMap;
  try {
    ({ value, grads } = tf.variableGrads(() => {
      const logits = model.apply(batch.x, { training: true }) as tf.Tensor;
      correct = tf.keep(correctCount(logits, batch.labels));
      return crossEntropy(logits, batch.yOneHot);
    }, varList));
  } finally {
    release();
  }
  try {
    trainable.forEach((r, i) => {
      const g = grads[varList[i].name];
      if (g === undefined) out.fill(0, r.spec.offset, r.spec.offset + r.spec.size);
      else out.set(g.dataSync() as Float32Array, r.spec.offset);
    });
    for (const r of refs) {
      if (!r.spec.trainable) out.set(r.variable.read().dataSync() as Float32Array, r.spec.offset);
    }
    return { loss: value.dataSync()[0], correct: (correct as tf.Scalar).dataSync()[0] };
  } finally {
    tf.dispose([value, correct as tf.Scalar, ...Object.values(grads)]);
  }
}

/** Contiguous, fixed shard boundaries: shard k of a batch of `size` is [bounds[k], bounds[k+1]). */
export function shardBounds(size: number, shards: number): number[] {
  const n = Math.max(1, Math.min(shards, size));
  return Array.from({ length: n + 1 }, (_, k) => Math.floor((k * size) / n));
}

/**
 * `acc = sum_k weights[k] * parts[k]` element by element, k in order (so the float32 rounding is
 * the same in every run): at trainable tensors the batch gradient of the mean loss, at
 * non-trainable tensors the sample-weighted mean of the shards' statistics.
 */
export function combineShards(parts: readonly Float32Array[], weights: readonly number[], acc: Float32Array): void {
  acc.fill(0);
  parts.forEach((part, k) => {
    const w = weights[k];
    for (let i = 0; i < acc.length; i++) acc[i] += w * part[i];
  });
}
