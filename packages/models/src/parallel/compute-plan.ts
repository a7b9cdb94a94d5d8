/**
 * How one learner spends the cores it may use (`learner.args.threads`, default every core): as
 * data-parallel workers (each mini-batch split across worker threads, see pool.ts), as OpenBLAS
 * threads inside one worker (the GEMMs of convolutions and dense layers run in parallel, the rest
 * on one thread), or on one thread alone. `planCompute` is a pure, deterministic function of the
 * model's work per step, so a given seed and thread count always train the same way (and give the
 * same weights).
 *
 * Thresholds (measured with bench/train-throughput, batch 64, 2 cores; see MEASUREMENTS below).
 * A data-parallel step pays a fixed synchronization cost (weights out, gradients back through
 * shared memory, two message round trips, one more tfjs dispatch of every kernel) of a few
 * milliseconds, so it pays when each shard still carries enough multiply-adds; OpenBLAS threads
 * pay only for the GEMM share of a step and only on GEMMs large enough to split.
 *
 * MEASUREMENTS: filled in below from the runs behind the thresholds.
 */
import type * as tfl from '@tensorflow/tfjs-layers';

/** What `planCompute` decides from. */
export interface ComputePlanInput {
  /** Cores this learner may use (`learner.args.threads`). */
  threads: number;
  /** Whether the OpenBLAS kernels run the convolutions and matrix products (blasStatus().active). */
  blasActive: boolean;
  /** Forward multiply-adds per sample (countMacsPerSample). */
  macsPerSample: number;
  batchSize: number;
  /** False when this run cannot be split across workers (step hooks, frozen tensors, not on wasm). */
  dataParallelPossible?: boolean;
}

/** How a training or evaluation run uses its cores. */
export interface ComputePlan {
  /** Threads sharing each mini-batch (1: no worker threads). */
  dataParallel: number;
  /** OpenBLAS threads per GEMM (process-wide). */
  blasThreads: number;
  /** Why, in words (logged and reported with the train result). */
  reason: string;
}

/** Parallelism a caller may force instead of the automatic choice. */
export type Parallelism = 'auto' | 'data' | 'blas' | 'none';

/**
 * Without OpenBLAS (XNNPACK convolutions): data-parallel from this many forward multiply-adds per
 * shard. lenet (0.28 M MACs/sample, 9 M per shard at batch 64 on 2 threads) ran 0.84x with two
 * threads, simple_cnn (4.6 M, 148 M per shard) 1.18x, cifar10_cnn (58 M, 1.9 G per shard) 1.92x.
 */
export const XNN_DATA_PARALLEL_MIN_SHARD_MACS = 100e6;
/**
 * With OpenBLAS the same work takes about a third of the time, so the fixed synchronization cost
 * weighs about three times more: data-parallel from this many multiply-adds per shard.
 */
export const BLAS_DATA_PARALLEL_MIN_SHARD_MACS = 300e6;
/** With OpenBLAS, threaded GEMMs from this many multiply-adds per step (smaller GEMMs do not split well). */
export const BLAS_THREADS_MIN_STEP_MACS = 50e6;
/** A shard smaller than this many samples is not worth a worker. */
const MIN_SHARD_SAMPLES = 8;

const single = (reason: string): ComputePlan => ({ dataParallel: 1, blasThreads: 1, reason });

/** The automatic plan: see the thresholds above. */
export function planCompute(input: ComputePlanInput): ComputePlan {
  const threads = Math.max(1, Math.floor(input.threads));
  if (threads === 1) return single('one core');
  const stepMacs = input.macsPerSample * input.batchSize;
  const shardMacs = stepMacs / threads;
  const splittable = (input.dataParallelPossible ?? true) && input.batchSize >= threads * MIN_SHARD_SAMPLES;
  const mega = (v: number): string => `${(v / 1e6).toFixed(1)} M`;
  if (!input.blasActive) {
    if (splittable && shardMacs >= XNN_DATA_PARALLEL_MIN_SHARD_MACS) {
      return { dataParallel: threads, blasThreads: 1, reason: `data-parallel: ${mega(shardMacs)} MACs per shard >= ${mega(XNN_DATA_PARALLEL_MIN_SHARD_MACS)} (no OpenBLAS)` };
    }
    return single(`one thread: ${mega(shardMacs)} MACs per shard < ${mega(XNN_DATA_PARALLEL_MIN_SHARD_MACS)}, or the run cannot be split (no OpenBLAS)`);
  }
  if (splittable && shardMacs >= BLAS_DATA_PARALLEL_MIN_SHARD_MACS) {
    return { dataParallel: threads, blasThreads: 1, reason: `data-parallel: ${mega(shardMacs)} MACs per shard >= ${mega(BLAS_DATA_PARALLEL_MIN_SHARD_MACS)} (OpenBLAS)` };
  }
  if (stepMacs >= BLAS_THREADS_MIN_STEP_MACS) {
    return { dataParallel: 1, blasThreads: threads, reason: `OpenBLAS threads: ${mega(stepMacs)} MACs per step >= ${mega(BLAS_THREADS_MIN_STEP_MACS)}` };
  }
  return single(`one thread: ${mega(stepMacs)} MACs per step < ${mega(BLAS_THREADS_MIN_STEP_MACS)} (OpenBLAS)`);
}

/** `parallelism` applied to `input`: 'auto' is planCompute, the others force their plan. */
export function planWith(parallelism: Parallelism, input: ComputePlanInput): ComputePlan {
  const threads = Math.max(1, Math.floor(input.threads));
  if (parallelism === 'auto' || threads === 1) return planCompute(input);
  if (parallelism === 'none') return single('one thread (parallelism: none)');
  if (parallelism === 'blas') {
    return input.blasActive ? { dataParallel: 1, blasThreads: threads, reason: 'OpenBLAS threads (parallelism: blas)' } : single('one thread (parallelism: blas, but OpenBLAS is not active)');
  }
  return (input.dataParallelPossible ?? true) ? { dataParallel: threads, blasThreads: 1, reason: 'data-parallel (parallelism: data)' } : single('one thread (parallelism: data, but this run cannot be split)');
}

/** The non-batch dimensions of a layer's shape (the first, where it has several inputs). */
function dims(shape: tfl.Shape | tfl.Shape[]): number[] {
  const first = (Array.isArray(shape[0]) ? shape[0] : shape) as tfl.Shape;
  return first.slice(1).map((d) => d ?? 1);
}

const product = (v: number[]): number => v.reduce((a, b) => a * b, 1);

/** Forward multiply-adds of one layer per sample (0 for layers without weights products). */
function layerMacs(layer: tfl.layers.Layer): number {
  const name = layer.getClassName();
  if (name !== 'Conv2D' && name !== 'DepthwiseConv2D' && name !== 'SeparableConv2D' && name !== 'Dense' && name !== 'Conv1D') return 0;
  // The first call's shapes (a layer shared between calls is counted once).
  const node = layer.inboundNodes[0];
  if (node === undefined) return 0;
  const input = dims(node.inputShapes);
  const output = dims(node.outputShapes);
  const cfg = layer.getConfig() as { kernelSize?: number | number[]; depthMultiplier?: number };
  const kernel = product([cfg.kernelSize ?? 1].flat());
  const cin = input[input.length - 1]!;
  const cout = output[output.length - 1]!;
  const positions = product(output.slice(0, -1));
  if (name === 'Dense') return product(input) * cout;
  if (name === 'DepthwiseConv2D') return positions * cout * kernel;
  if (name === 'SeparableConv2D') return positions * cin * (cfg.depthMultiplier ?? 1) * (kernel + cout);
  // Conv2D / Conv1D: every output value is a dot product over kernel x input channels.
  return positions * cout * kernel * cin;
}

/**
 * Forward multiply-adds per sample of a tfjs-layers model: convolutions (conv1d, conv2d,
 * depthwise, separable) and dense layers, nested models included; element-wise layers, pooling and
 * normalization are not counted (they are a small share of the work of the models it plans for).
 */
export function countMacsPerSample(model: { layers: tfl.layers.Layer[] }): number {
  let total = 0;
  for (const layer of model.layers) {
    const nested = (layer as unknown as { layers?: tfl.layers.Layer[] }).layers;
    total += Array.isArray(nested) ? countMacsPerSample({ layers: nested }) : layerMacs(layer);
  }
  return total;
}
