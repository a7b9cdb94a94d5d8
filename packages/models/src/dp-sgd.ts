/**
 * DP-SGD (Abadi, Chu, Goodfellow, McMahan, Mironov, Talwar, Zhang, CCS 2016, Algorithm 1) for local
 * training: every example's gradient is computed on its own (microbatches of one, tf.variableGrads per
 * example), clipped to L2 norm C over all trainable tensors together, the clipped gradients of a lot
 * are summed, N(0, (sigma C)^2) is added to each coordinate, and the sum is divided by the lot size
 * before the optimizer step. B forward/backward passes per lot of B: slow, but exact for every layer
 * type, which vectorized tricks (per-layer outer products) are not.
 * Batch normalization mixes examples inside a lot, so a model with it is refused (as Opacus does).
 */
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { correctCount, crossEntropy, disposeBatch, makeBatch, yieldToEventLoop } from './batching.js';
import { Rng } from './random.js';
import type { DataSource, DpSgdOptions, TensorSpec, TrainOptions, TrainResult } from './types.js';

/** How a run builds and frees its optimizer (FedModel's own, so DP-SGD steps like plain training). */
export interface OptimizerFactory {
  make(o: { optimizer: 'sgd' | 'adam'; lr: number; momentum: number }): tf.Optimizer;
  dispose(optimizer: tf.Optimizer): void;
}

/** Standard normals: Box–Muller over Web Crypto (a CSPRNG in Node and browsers), or over a seeded PRNG for tests. */
export function dpNoiseSource(seed?: number): () => number {
  const uniform = seed === undefined ? cryptoUniform() : ((rng: Rng) => () => rng.next())(new Rng(seed));
  let spare: number | undefined;
  return () => {
    if (spare !== undefined) {
      const s = spare;
      spare = undefined;
      return s;
    }
    const r = Math.sqrt(-2 * Math.log(1 - uniform()));
    const theta = 2 * Math.PI * uniform();
    spare = r * Math.sin(theta);
    return r * Math.cos(theta);
  };
}

function cryptoUniform(): () => number {
  const words = new Uint32Array(1024);
  let at = words.length;
  return () => {
    if (at + 2 > words.length) {
      globalThis.crypto.getRandomValues(words);
      at = 0;
    }
    const hi = words[at++]! >>> 5;
    const lo = words[at++]! >>> 6;
    return (hi * 67108864 + lo) / 9007199254740992;
  };
}

/** Checks that DP-SGD can run on this model with these options. */
function checkDpSgd(layout: readonly TensorSpec[], options: TrainOptions, dp: DpSgdOptions): void {
  if (!(dp.clipNorm > 0)) throw new Error(`DP-SGD: clipNorm must be > 0, got ${dp.clipNorm}`);
  if (!(dp.noiseMultiplier >= 0)) throw new Error(`DP-SGD: noiseMultiplier must be >= 0, got ${dp.noiseMultiplier}`);
  if (layout.some((s) => s.isNormalization)) {
    throw new Error('DP-SGD: the model has batch normalization, which mixes the examples of a lot; per-example clipping needs a model without it');
  }
  if (options.gradientCorrection !== undefined) throw new Error('DP-SGD: SCAFFOLD gradient corrections are not supported with DP-SGD');
}

/** One example's gradient, scaled so that its global L2 norm is at most C, added into `sums` (which it replaces). */
function addClippedGradient(model: tfl.LayersModel, x: tf.Tensor, y: tf.Tensor, labels: tf.Tensor1D, varList: tf.Variable[], sums: tf.Tensor[], clipNorm: number): { loss: tf.Scalar; correct: tf.Scalar } {
  let correct: tf.Scalar | undefined;
  const { value, grads } = tf.variableGrads(() => {
    const logits = model.apply(x, { training: true }) as tf.Tensor;
    correct = tf.keep(correctCount(logits, labels));
    return crossEntropy(logits, y);
  }, varList);
  const next = tf.tidy(() => {
    const gs = varList.map((v) => grads[v.name] ?? tf.zerosLike(v));
    const norm = tf.sqrt(tf.addN(gs.map((g) => tf.sum(tf.square(g)))));
    const scale = tf.minimum(1, tf.div(clipNorm, tf.maximum(norm, 1e-12)));
    return gs.map((g, k) => tf.add(sums[k]!, tf.mul(g, scale)));
  });
  tf.dispose([...Object.values(grads), ...sums]);
  sums.splice(0, sums.length, ...next);
  return { loss: value, correct: correct as tf.Scalar };
}

/** sum / L + data-independent terms (weight decay, proximal pull), with N(0, (sigma C)^2) on the sum. */
function noisedMeanGradients(varList: tf.Variable[], sums: tf.Tensor[], lot: number, dp: DpSgdOptions, normal: () => number, options: TrainOptions, centers: tf.Tensor[] | undefined): tf.NamedTensorMap {
  const std = dp.noiseMultiplier * dp.clipNorm;
  return tf.tidy(() => {
    const out: tf.NamedTensorMap = {};
    varList.forEach((v, k) => {
      const noise = new Float32Array(v.size);
      if (std > 0) for (let i = 0; i < noise.length; i++) noise[i] = std * normal();
      let g = tf.div(tf.add(sums[k]!, tf.tensor(noise, v.shape, 'float32')), lot);
      if ((options.weightDecay ?? 0) > 0) g = tf.add(g, tf.mul(v, options.weightDecay!));
      if (centers) g = tf.add(g, tf.mul(tf.sub(v, centers[k]!), options.proximalMu!));
      out[v.name] = g;
    });
    return out;
  });
}

/** The trainable variables of the model with their place in the flat layout (for the proximal centre). */
function trainableVariables(model: tfl.LayersModel): tf.Variable[] {
  return model.trainableWeights.map((w) => w.read() as tf.Variable);
}

/**
 * Local training with DP-SGD. Lots are the shuffled batches of `batchSize` (the usual stand-in for
 * Poisson sampling that the accountant assumes); the noised sum is divided by `batchSize`, the
 * expected lot size, also for a short last lot. Loss and accuracy are those of the last epoch
 * (per-example forward passes, before clipping).
 */
export async function trainDpSgd(model: tfl.LayersModel, layout: readonly TensorSpec[], data: DataSource, options: TrainOptions, optimizers: OptimizerFactory): Promise<TrainResult> {
  const dp = options.dpSgd!;
  checkDpSgd(layout, options, dp);
  const started = performance.now();
  const rng = new Rng(options.seed ?? Math.floor(Math.random() * 2 ** 31));
  const normal = dpNoiseSource(dp.noiseSeed);
  const varList = trainableVariables(model);
  const centers = proximalCenters(model, layout, options);
  const optimizer = optimizers.make({ optimizer: options.optimizer, lr: options.lr, momentum: options.momentum ?? 0 });
  const numClasses = (model.outputs[0]!.shape[1] as number) ?? 1;
  const indices = new Uint32Array(data.length);
  let steps = 0;
  let epochLoss = 0;
  let epochAccuracy = 0;
  try {
    for (let epoch = 0; epoch < options.epochs; epoch++) {
      for (let i = 0; i < indices.length; i++) indices[i] = i;
      rng.shuffle(indices);
      let lossSum = 0;
      let correctSum = 0;
      for (let start = 0; start < data.length; start += options.batchSize) {
        options.signal?.throwIfAborted();
        const end = Math.min(start + options.batchSize, data.length);
        const sums = varList.map((v) => tf.zerosLike(v) as tf.Tensor);
        const stats: tf.Scalar[] = [];
        for (let j = start; j < end; j++) {
          const batch = makeBatch(data, indices, j, j + 1, numClasses);
          try {
            const { loss, correct } = addClippedGradient(model, batch.x, batch.yOneHot, batch.labels, varList, sums, dp.clipNorm);
            stats.push(loss, correct);
          } finally {
            disposeBatch(batch);
          }
        }
        // One read per lot, not two per example: each read waits for the backend.
        const values = await Promise.all(stats.map((t) => t.data()));
        values.forEach((v, k) => (k % 2 === 0 ? (lossSum += v[0]!) : (correctSum += v[0]!)));
        tf.dispose(stats);
        const grads = noisedMeanGradients(varList, sums, options.batchSize, dp, normal, options, centers);
        optimizer.applyGradients(grads);
        tf.dispose([...sums, ...Object.values(grads)]);
        steps++;
        await yieldToEventLoop();
      }
      epochLoss = lossSum / data.length;
      epochAccuracy = correctSum / data.length;
      options.onEpochEnd?.(epoch, { loss: epochLoss, accuracy: epochAccuracy });
    }
  } finally {
    optimizers.dispose(optimizer);
    if (centers) tf.dispose(centers);
  }
  const seconds = (performance.now() - started) / 1000;
  return { loss: epochLoss, accuracy: epochAccuracy, numSamples: data.length, steps, seconds, samplesPerSecond: seconds > 0 ? (data.length * options.epochs) / seconds : 0 };
}

/** FedProx's centre per trainable variable, cut from the flat layout by the variables' order among trainable specs. */
function proximalCenters(model: tfl.LayersModel, layout: readonly TensorSpec[], options: TrainOptions): tf.Tensor[] | undefined {
  if (!((options.proximalMu ?? 0) > 0) || options.proximalCenter === undefined) return undefined;
  const specs = layout.filter((s) => s.trainable);
  if (specs.length !== model.trainableWeights.length) throw new Error('DP-SGD: the layout does not match the model\'s trainable weights');
  return specs.map((s) => tf.tensor(options.proximalCenter!.slice(s.offset, s.offset + s.size), s.shape, 'float32'));
}
