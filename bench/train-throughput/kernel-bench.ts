/**
 * Micro-benchmark of the patched wasm kernels on cifar10_cnn's four layer shapes (batch 64):
 * forward conv, filter gradient in both formulations (GEMM at each im2col block size listed in
 * GEMM_BLOCKS, and the convolution), input gradient, bias/batch-norm Sum. CPU milliseconds per
 * call (the machine is shared, wall time is not comparable across runs); `diff` is the largest
 * difference between the two filter-gradient formulations.
 *
 *   GEMM_BLOCKS=65536,131072 npx tsx --conditions=@oiafed/source bench/train-throughput/kernel-bench.ts
 */
import * as tf from '@tensorflow/tfjs-core';
import { initWasmBackend } from '../../packages/models/src/wasm/index.js';
import { filterGradMode, gemmBlockFloats } from '../../packages/models/src/wasm/conv-grad-kernels.js';

await initWasmBackend();
const layers = [
  { name: 'c1', x: [64, 32, 32, 3], co: 64 },
  { name: 'c2', x: [64, 16, 16, 64], co: 128 },
  { name: 'c3', x: [64, 8, 8, 128], co: 256 },
  { name: 'c4', x: [64, 4, 4, 256], co: 512 },
];
function time(f: () => tf.Tensor, reps = 3): number {
  f().dispose();
  // CPU time, not wall time: the machine is shared and heavily loaded.
  const t0 = process.cpuUsage();
  for (let i = 0; i < reps; i++) f().dispose();
  const d = process.cpuUsage(t0);
  return (d.user + d.system) / 1000 / reps;
}
for (const l of layers) {
  const x = tf.randomNormal(l.x as [number, number, number, number]) as tf.Tensor4D;
  const w = tf.randomNormal([3, 3, l.x[3]!, l.co]) as tf.Tensor4D;
  const dy = tf.randomNormal([l.x[0]!, l.x[1]!, l.x[2]!, l.co]) as tf.Tensor4D;
  const fwd = time(() => tf.conv2d(x, w, 1, 'same'));
  filterGradMode.value = 'conv';
  const dfc = time(() => tf.engine().runKernel('Conv2DBackpropFilter', { x, dy }, { strides: 1, pad: 'same', dataFormat: 'NHWC', filterShape: [3, 3, l.x[3]!, l.co] } as never) as tf.Tensor);
  const ref = tf.engine().runKernel('Conv2DBackpropFilter', { x, dy }, { strides: 1, pad: 'same', dataFormat: 'NHWC', filterShape: [3, 3, l.x[3]!, l.co] } as never) as tf.Tensor;
  filterGradMode.value = 'gemm';
  const got = tf.engine().runKernel('Conv2DBackpropFilter', { x, dy }, { strides: 1, pad: 'same', dataFormat: 'NHWC', filterShape: [3, 3, l.x[3]!, l.co] } as never) as tf.Tensor;
  const diff = tf.max(tf.abs(tf.sub(ref, got))).dataSync()[0]!;
  const dfs: string[] = [];
  for (const floats of (process.env.GEMM_BLOCKS ?? '131072').split(',').map(Number)) {
    gemmBlockFloats.value = floats;
    dfs.push(`${floats}:${time(() => tf.engine().runKernel('Conv2DBackpropFilter', { x, dy }, { strides: 1, pad: 'same', dataFormat: 'NHWC', filterShape: [3, 3, l.x[3]!, l.co] } as never) as tf.Tensor).toFixed(1)}`);
  }
  const df = dfs.join(' ');
  const di = time(() => tf.engine().runKernel('Conv2DBackpropInput', { dy, filter: w }, { strides: 1, pad: 'same', dataFormat: 'NHWC', inputShape: x.shape } as never) as tf.Tensor);
  const sum = time(() => tf.sum(dy, [0, 1, 2]));
  process.stdout.write(`${l.name} fwd ${fwd.toFixed(1)} dW(gemm) ${df} dW(conv) ${dfc.toFixed(1)} diff ${diff.toExponential(1)} dX ${di.toFixed(1)} sum ${sum.toFixed(1)} ms\n`);
  tf.dispose([x, w, dy]);
}
