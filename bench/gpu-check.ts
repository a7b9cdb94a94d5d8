/**
 * Worker of bench/gpu-check.sh (run that, not this): trains cifar10_cnn on cuda:0 through
 * @tensorflow/tfjs-node-gpu and prints samples/s. Exit codes are documented in gpu-check.sh.
 */
import * as tf from '@tensorflow/tfjs-node-gpu';
import { buildBenchModel, INPUT_SHAPE } from './train-throughput/models.js';

const steps = Number(process.env.GPU_CHECK_STEPS ?? 20);
const batch = 64;
try {
  await tf.ready();
  const backend = tf.getBackend();
  if (backend !== 'tensorflow') throw Object.assign(new Error(`backend is '${backend}', expected 'tensorflow'`), { code: 5 });
  // tfjs-node-gpu silently falls back to the CPU build when CUDA fails to load; a GPU kernel
  // listing in the TF log is not reachable from JS, so check that TF sees a GPU device.
  const binding = (tf.backend() as unknown as { binding?: { isUsingGpuDevice?: () => boolean } }).binding;
  if (binding?.isUsingGpuDevice != null && !binding.isUsingGpuDevice()) {
    throw Object.assign(new Error('TensorFlow found no usable GPU (CUDA 11.2 / cuDNN 8.1 libraries missing?)'), { code: 5 });
  }
  const m = buildBenchModel('cifar10_cnn', tf as never);
  m.compile({ optimizer: tf.train.sgd(0.01), loss: (a: tf.Tensor, b: tf.Tensor) => tf.losses.softmaxCrossEntropy(a, b) });
  const x = tf.randomNormal([batch, ...INPUT_SHAPE.cifar10_cnn]);
  const y = tf.oneHot(tf.tensor1d(Array.from({ length: batch }, (_, i) => i % 10), 'int32'), 10);
  for (let i = 0; i < 3; i++) await m.trainOnBatch(x, y);
  const t0 = performance.now();
  let loss = 0;
  for (let i = 0; i < steps; i++) loss = (await m.trainOnBatch(x, y)) as number;
  const s = (performance.now() - t0) / 1000;
  if (!Number.isFinite(loss)) throw new Error(`loss is ${loss} after ${steps} steps`);
  console.log(`gpu-check: OK device="${process.env.GPU_NAME}" (cuda:0) model=cifar10_cnn batch=${batch} steps=${steps} samples_per_s=${((batch * steps) / s).toFixed(1)} loss=${loss.toFixed(4)}`);
} catch (e) {
  const code = (e as { code?: number }).code;
  console.error(`gpu-check: FAIL: ${(e as Error).message}`);
  process.exit(typeof code === 'number' ? code : 1);
}
