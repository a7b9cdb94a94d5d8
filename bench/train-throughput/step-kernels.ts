/**
 * Issue 13 §2: where a training step's time goes on the wasm backend, per kernel, in CPU time of
 * the process (mean over `steps` steps after 2 warm-up steps, batch 64, one OpenBLAS thread).
 * bench:train's `--profile` times a single step in wall time, which on a shared machine can
 * double a kernel; this wraps every registered wasm kernel and sums process.cpuUsage() around
 * it. Kernels that call other kernels (the patched ones do) count their callees twice: the
 * callees also appear on their own lines. The 1-minute load average is printed with the table.
 *
 *   npx tsx --conditions=@oiafed/source bench/train-throughput/step-kernels.ts [model] [steps]
 *   OIAFED_BLAS=off ...            the patched XNNPACK kernels instead of OpenBLAS
 *   SHAPES=Multiply,Sum ...        those kernels split by input dtype and shape
 *   FUSED_BN_GRAD=off ...          tfjs-core's FusedBatchNorm gradient (A/B of the fused one)
 */
import { loadavg } from 'node:os';
import * as tf from '@tensorflow/tfjs-core';
import { enableBlasKernels, setBlasThreads } from '../../packages/models/src/blas/openblas.js';
import { BATCH_NORM_GRAD_KERNEL } from '../../packages/models/src/wasm/batch-norm.js';
import { initWasmBackend, skipInputGradient } from '../../packages/models/src/wasm/index.js';
import { BENCH_MODELS, buildBenchModel, INPUT_SHAPE } from './models.js';
import type { BenchModelName } from './models.js';

const model = (process.argv[2] ?? 'fmnist_cnn') as BenchModelName;
const steps = Number(process.argv[3] ?? 8);
if (!BENCH_MODELS.includes(model) || !(steps >= 1)) {
  throw new Error(`usage: step-kernels.ts [${BENCH_MODELS.join('|')}] [steps >= 1], got '${process.argv.slice(2).join(' ')}'`);
}

await initWasmBackend();
const blas = process.env.OIAFED_BLAS !== 'off';
enableBlasKernels(blas ? 'on' : 'off');
if (blas) setBlasThreads(1);
if (process.env.FUSED_BN_GRAD === 'off') tf.unregisterKernel(BATCH_NORM_GRAD_KERNEL, 'wasm');

const split = new Set((process.env.SHAPES ?? '').split(',').filter((s) => s !== ''));
const totals = new Map<string, { ms: number; calls: number }>();
let timing = false;

type Args = { inputs: Record<string, tf.TensorInfo | undefined> };
function keyOf(name: string, args: Args): string {
  if (!split.has(name)) return name;
  const ins = Object.values(args.inputs).map((t) => (t == null ? '-' : `${t.dtype}[${t.shape.join('x')}]`));
  return `${name}(${ins.join(' ')})`;
}

/** Re-registers every wasm kernel wrapped in a CPU-time counter. */
function wrapKernels(): void {
  for (const cfg of tf.getKernelsForBackend('wasm')) {
    const f = cfg.kernelFunc as unknown as (a: Args) => unknown;
    tf.unregisterKernel(cfg.kernelName, 'wasm');
    const kernelFunc = (args: Args): unknown => {
      if (!timing) return f(args);
      const c0 = process.cpuUsage();
      const out = f(args);
      const d = process.cpuUsage(c0);
      const key = keyOf(cfg.kernelName, args);
      const e = totals.get(key) ?? { ms: 0, calls: 0 };
      e.ms += (d.user + d.system) / 1000;
      e.calls++;
      totals.set(key, e);
      return out;
    };
    tf.registerKernel({ ...cfg, kernelFunc: kernelFunc as unknown as tf.KernelFunc });
  }
}

wrapKernels();
const m = buildBenchModel(model);
m.compile({ optimizer: tf.train.sgd(0.01), loss: (a: unknown, b: unknown) => tf.losses.softmaxCrossEntropy(a as never, b as never) });
const x = tf.randomNormal([64, ...INPUT_SHAPE[model]], 0, 1, 'float32', 1);
// As FedModel.train does: the batch's gradient is never read.
skipInputGradient(x);
const y = tf.oneHot(tf.tensor1d(Array.from({ length: 64 }, (_, i) => i % 10), 'int32'), 10);
for (let i = 0; i < 2; i++) await m.trainOnBatch(x, y);
timing = true;
const c0 = process.cpuUsage();
for (let i = 0; i < steps; i++) await m.trainOnBatch(x, y);
const c = process.cpuUsage(c0);
const rows = [...totals].map(([kernel, v]) => ({ kernel, ms: v.ms / steps, calls: v.calls / steps })).sort((a, b) => b.ms - a.ms);
const load = loadavg()[0]!.toFixed(2);
process.stdout.write(`${model} (${blas ? 'OpenBLAS' : 'XNNPACK'}, load ${load}): step ${((c.user + c.system) / 1000 / steps).toFixed(1)} CPU-ms\n`);
for (const r of rows.slice(0, Number(process.env.TOP ?? 20))) process.stdout.write(`  ${r.kernel.padEnd(28)} ${r.ms.toFixed(2).padStart(8)} ms  x${r.calls}\n`);
