/**
 * Issue 13 §2: per-kernel time and GFLOP/s of the conv layers of lenet, simple_cnn, fmnist_cnn and
 * cifar10_cnn (batch 64): forward (Conv2D), filter gradient (Conv2DBackpropFilter) and input
 * gradient (Conv2DBackpropInput), on the patched XNNPACK kernels and on the OpenBLAS ones (1
 * thread, and every core), and the two input-gradient formulations of the OpenBLAS path at stride
 * 1 ('conv': dy convolved with the flipped filter; 'col2im': dy @ W^T then a scatter-add); every
 * layer runs on OpenBLAS here, also those the default tuning (blasConvTuning) leaves to XNNPACK.
 * Single-thread paths are timed in CPU time of the process (median of `--reps` calls, default 5):
 * on a shared machine that is what the kernel costs; the N-thread path in wall time. The
 * 1-minute load average is printed with the table.
 * Whole-step samples/s per model, XNNPACK vs OpenBLAS: `npm run bench:train` (engines
 * wasm-patched and wasm-blas).
 *
 *   npx tsx --conditions=@oiafed/source bench/train-throughput/blas-kernels.ts [--reps N] [--json] [model ...]
 */
import { availableParallelism, loadavg } from 'node:os';
import * as tf from '@tensorflow/tfjs-core';
import { blasConvTuning, inputGradMode } from '../../packages/models/src/blas/conv-kernels.js';
import { loadBlas } from '../../packages/models/src/blas/library.js';
import { blasStatus, enableBlasKernels, setBlasThreads } from '../../packages/models/src/blas/openblas.js';
import { initWasmBackend } from '../../packages/models/src/wasm/index.js';

interface Layer {
  model: string;
  name: string;
  /** Input [B, H, W, Ci]. */
  x: [number, number, number, number];
  k: number;
  co: number;
  pad: 'same' | 'valid';
}

const B = 64;
const LAYERS: Layer[] = [
  { model: 'lenet', name: 'conv1 1->6 5x5', x: [B, 28, 28, 1], k: 5, co: 6, pad: 'valid' },
  { model: 'lenet', name: 'conv2 6->16 5x5', x: [B, 12, 12, 6], k: 5, co: 16, pad: 'valid' },
  { model: 'simple_cnn', name: 'conv1 1->32 3x3', x: [B, 28, 28, 1], k: 3, co: 32, pad: 'valid' },
  { model: 'simple_cnn', name: 'conv2 32->64 3x3', x: [B, 13, 13, 32], k: 3, co: 64, pad: 'valid' },
  { model: 'simple_cnn', name: 'conv3 64->64 3x3', x: [B, 5, 5, 64], k: 3, co: 64, pad: 'valid' },
  { model: 'fmnist_cnn', name: 'conv1 1->32 3x3', x: [B, 28, 28, 1], k: 3, co: 32, pad: 'same' },
  { model: 'fmnist_cnn', name: 'conv2 32->64 3x3', x: [B, 14, 14, 32], k: 3, co: 64, pad: 'same' },
  { model: 'cifar10_cnn', name: 'conv1 3->64 3x3', x: [B, 32, 32, 3], k: 3, co: 64, pad: 'same' },
  { model: 'cifar10_cnn', name: 'conv2 64->128 3x3', x: [B, 16, 16, 64], k: 3, co: 128, pad: 'same' },
  { model: 'cifar10_cnn', name: 'conv3 128->256 3x3', x: [B, 8, 8, 128], k: 3, co: 256, pad: 'same' },
  { model: 'cifar10_cnn', name: 'conv4 256->512 3x3', x: [B, 4, 4, 256], k: 3, co: 512, pad: 'same' },
];

type Op = 'fwd' | 'dW' | 'dX';
const OPS: Op[] = ['fwd', 'dW', 'dX'];

interface Path {
  name: string;
  blas: boolean;
  threads: number;
  /** The OpenBLAS input-gradient formulation. */
  dx?: 'conv' | 'col2im';
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

function outSize(n: number, k: number, pad: 'same' | 'valid'): number {
  return pad === 'same' ? n : n - k + 1;
}

/** Runs one kernel of `layer` `reps` times (after one warm-up); median milliseconds, CPU time when `cpu`. */
function timeOp(layer: Layer, op: Op, reps: number, cpu: boolean): number {
  const [b, h, w, ci] = layer.x;
  const ho = outSize(h, layer.k, layer.pad);
  const wo = outSize(w, layer.k, layer.pad);
  const fshape = [layer.k, layer.k, ci, layer.co];
  const x = tf.randomNormal(layer.x);
  const f = tf.randomNormal(fshape);
  const dy = tf.randomNormal([b, ho, wo, layer.co]);
  const attrs = { strides: 1, pad: layer.pad, dataFormat: 'NHWC', dilations: 1 };
  const call = (): tf.Tensor => {
    if (op === 'fwd') return tf.engine().runKernel('Conv2D', { x, filter: f }, attrs as never) as tf.Tensor;
    if (op === 'dW') return tf.engine().runKernel('Conv2DBackpropFilter', { x, dy }, { ...attrs, filterShape: fshape } as never) as tf.Tensor;
    return tf.engine().runKernel('Conv2DBackpropInput', { dy, filter: f }, { ...attrs, inputShape: layer.x } as never) as tf.Tensor;
  };
  call().dispose();
  const times: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    const c0 = process.cpuUsage();
    // wasm kernels run synchronously: no read-back, which would add a copy of the output.
    const out = call();
    const c = process.cpuUsage(c0);
    times.push(cpu ? (c.user + c.system) / 1000 : performance.now() - t0);
    out.dispose();
  }
  tf.dispose([x, f, dy]);
  return median(times);
}

/** Multiply-adds x 2 of one kernel call (all three ops do the same work). */
function flops(layer: Layer): number {
  const [b, h, w, ci] = layer.x;
  return 2 * b * outSize(h, layer.k, layer.pad) * outSize(w, layer.k, layer.pad) * layer.k * layer.k * ci * layer.co;
}

/**
 * The forward pass as the implicit "shifted GEMM" (stride 1): x zero-padded once into
 * [B, Hp, Wp, Ci] (plus a zero tail), then one GEMM per filter offset (a, b) over every padded
 * pixel, A = x_pad shifted by a*Wp + b, K = Ci, accumulated with beta = 1, and the valid
 * Ho x Wo window cropped out. Timed here against the im2col kernel to choose the formulation.
 */
function shiftedForwardMs(layer: Layer, reps: number): number {
  const lib = loadBlas();
  if (!lib.ok) return NaN;
  const [b, h, w, ci] = layer.x;
  const { k, co } = layer;
  const p = layer.pad === 'same' ? (k - 1) >> 1 : 0;
  const hp = h + (layer.pad === 'same' ? k - 1 : 0);
  const wp = w + (layer.pad === 'same' ? k - 1 : 0);
  const ho = outSize(h, k, layer.pad);
  const wo = outSize(w, k, layer.pad);
  const rows = b * hp * wp;
  const tail = (k - 1) * wp + k;
  const x = Float32Array.from({ length: b * h * w * ci }, () => Math.random() - 0.5);
  const f = Float32Array.from({ length: k * k * ci * co }, () => Math.random() - 0.5);
  const xpad = new Float32Array((rows + tail) * ci);
  const grid = new Float32Array(rows * co);
  const out = new Float32Array(b * ho * wo * co);
  const once = (): void => {
    for (let n = 0; n < b; n++) for (let i = 0; i < h; i++) xpad.set(x.subarray(((n * h + i) * w) * ci, ((n * h + i) * w + w) * ci), ((n * hp + i + p) * wp + p) * ci);
    for (let a = 0; a < k; a++) {
      for (let c = 0; c < k; c++) {
        const off = (a * wp + c) * ci;
        lib.lib.sgemm(false, false, rows, co, ci, 1, xpad.subarray(off), ci, f.subarray((a * k + c) * ci * co), co, a + c === 0 ? 0 : 1, grid, co);
      }
    }
    for (let n = 0; n < b; n++) for (let i = 0; i < ho; i++) out.set(grid.subarray(((n * hp + i) * wp) * co, ((n * hp + i) * wp + wo) * co), ((n * ho + i) * wo) * co);
  };
  once();
  const times: number[] = [];
  for (let r = 0; r < reps; r++) {
    const c0 = process.cpuUsage();
    once();
    const c = process.cpuUsage(c0);
    times.push((c.user + c.system) / 1000);
  }
  return median(times);
}

function usePath(p: Path): void {
  enableBlasKernels(p.blas ? 'on' : 'off');
  if (p.blas) setBlasThreads(p.threads);
  inputGradMode.value = p.dx ?? 'conv';
  // Every layer on OpenBLAS (the default tuning sends narrow ones to XNNPACK).
  blasConvTuning.minOutChannels = 1;
}

/** im2col (the kernel) vs shifted GEMM, forward, OpenBLAS 1 thread, CPU time: the formulation choice. */
function formulationTable(layers: Layer[], reps: number): Array<{ model: string; layer: string; im2col_ms: number; shifted_ms: number }> {
  usePath({ name: 'openblas-1', blas: true, threads: 1 });
  const out = layers.filter((l) => l.x[3] >= 16).map((l) => ({ model: l.model, layer: l.name, im2col_ms: timeOp(l, 'fwd', reps, true), shifted_ms: shiftedForwardMs(l, reps) }));
  process.stdout.write(`\nforward formulation, OpenBLAS 1 thread, CPU ms (load average ${loadavg()[0]!.toFixed(2)})\n`);
  for (const r of out) {
    process.stdout.write(`${r.model.padEnd(12)}${r.layer.padEnd(20)} im2col ${r.im2col_ms.toFixed(2).padStart(7)}  shifted ${r.shifted_ms.toFixed(2).padStart(7)}\n`);
  }
  return out;
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const ri = argv.indexOf('--reps');
  const reps = ri >= 0 ? Number(argv[ri + 1]) : 5;
  const json = argv.includes('--json');
  const only = argv.filter((a) => LAYERS.some((l) => l.model === a));
  const layers = LAYERS.filter((l) => only.length === 0 || only.includes(l.model));
  await initWasmBackend();
  const cores = availableParallelism();
  const paths: Path[] = [
    { name: 'xnnpack', blas: false, threads: 1 },
    { name: 'openblas-1', blas: true, threads: 1, dx: 'conv' },
    { name: 'openblas-1 col2im', blas: true, threads: 1, dx: 'col2im' },
    ...(cores > 1 ? [{ name: `openblas-${cores} (wall)`, blas: true, threads: cores }] : []),
  ];
  const rows: Array<{ model: string; layer: string; op: Op; path: string; ms: number; gflops: number }> = [];
  const load0 = loadavg()[0]!;
  for (const layer of layers) {
    for (const op of OPS) {
      for (const p of paths) {
        usePath(p);
        if (p.dx === 'col2im' && op !== 'dX') {
          rows.push({ model: layer.model, layer: layer.name, op, path: p.name, ms: NaN, gflops: NaN });
          continue;
        }
        const ms = timeOp(layer, op, reps, p.threads === 1);
        rows.push({ model: layer.model, layer: layer.name, op, path: p.name, ms, gflops: flops(layer) / ms / 1e6 });
      }
    }
  }
  setBlasThreads(1);
  const load1 = loadavg()[0]!;
  const st = blasStatus();
  const head = `batch ${B}, median of ${reps}; OpenBLAS core ${st.coreType ?? '?'}; load average (1 min) ${load0.toFixed(2)} before, ${load1.toFixed(2)} after, ${cores} cores`;
  process.stdout.write(`${head}\nms and GFLOP/s per kernel call (${paths.map((p) => p.name).join(' | ')}; 1-thread paths in CPU time)\n`);
  process.stdout.write(`${'model'.padEnd(12)}${'layer'.padEnd(20)}${'op'.padEnd(5)}${paths.map((p) => p.name.padStart(20)).join('')}\n`);
  for (let i = 0; i < rows.length; i += paths.length) {
    const r = rows[i]!;
    const cells = rows.slice(i, i + paths.length).map((c) => (Number.isNaN(c.ms) ? '-' : `${c.ms.toFixed(2)} ms ${c.gflops.toFixed(1).padStart(5)} GF`).padStart(20));
    process.stdout.write(`${r.model.padEnd(12)}${r.layer.padEnd(20)}${r.op.padEnd(5)}${cells.join('')}\n`);
  }
  const shifted = formulationTable(layers, reps);
  if (json) process.stdout.write(`${JSON.stringify({ load: [load0, load1], rows, shifted })}\n`);
}

await main();
