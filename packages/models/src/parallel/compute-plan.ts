/**
 * How one learner spends the cores it may use (`learner.args.threads`, default every core): as
 * data-parallel workers (each mini-batch split across worker threads, see pool.ts), as OpenBLAS
 * threads inside one worker (the GEMMs of convolutions and dense layers run in parallel, the rest
 * on one thread), or on one thread alone. `planCompute` is a pure, deterministic function of the
 * model's work per step, so a given seed and thread count always train the same way (and give the
 * same weights).
 *
 * A data-parallel step pays a fixed synchronization cost (weights out and shard gradients back
 * through shared memory, two message round trips, the combine and the optimizer step on the main
 * thread: about 11 ms on simple_cnn, measured) and tfjs's per-kernel cost twice for half the work
 * each, so it pays when every shard still carries enough multiply-adds. OpenBLAS threads pay only
 * on the GEMM share of a step (about half of it with the OpenBLAS kernels) and pay OpenBLAS's
 * thread hand-off on every GEMM.
 *
 * Measurements behind the thresholds (bench/train-throughput, FedModel.train, batch 64, 2 vCPUs,
 * samples/s of 2 threads over 1 thread on the same kernel path; MACs = forward multiply-adds):
 *
 * | model (MACs/sample, per shard of 32) | data-parallel, XNNPACK | data-parallel, OpenBLAS | 2 OpenBLAS threads |
 * |---|---|---|---|
 * | lenet (0.28 M, 9 M)        | 0.84x (a) | 0.77x (b), 1.15x (c), 1.22x (d) | 0.64x (b), 1.34x (c), 1.13x (d) |
 * | simple_cnn (4.6 M, 148 M)  | 1.18x (a), 1.47x (c) | 1.09x (b), 1.44x (c), 1.40x (d) | 0.89x (b), 0.82x (c), 0.93x (d) |
 * | fmnist_cnn (4.2 M, 136 M)  |           | 0.91x (b), 1.23x and 1.05x (c), 1.14x (d) | 0.88x (b), 0.98x and 0.81x (c), 0.93x (d) |
 * | cifar10_cnn (58 M, 1.9 G)  | 1.92x (a) | 1.44x (b), 1.70x (d) | 0.86x (b), 1.35x (d) |
 *
 * (a) 2026-11-29 21:40 UTC, quiet machine (load average 1.1), patched XNNPACK kernels only.
 * (b) `npm run bench:train -- --json`, 2026-11-29 22:57-23:01 UTC, threads section at load
 *     average about 2.5 (the per-engine part before it ran at 8.6).
 * (c) single runs 23:02-23:12 UTC in moments when no other process used the CPU (system busy
 *     time minus our own under 0.1 cores), load average 1.6-5.8. lenet's runs are 1-2 s long,
 *     so its two sources disagree within noise. With another process on half a core the same
 *     configurations lost (simple_cnn data-parallel on OpenBLAS 0.62x): 2 vCPUs leave no slack.
 * (d) `npm run bench:train -- --json`, 2026-11-29 23:30-23:33 UTC, quiet machine (load average
 *     1.8 -> 1.75, nothing else running), after the OpenBLAS Sum/Mean, max-pool-gradient and
 *     batch-norm kernels: data-parallel on OpenBLAS is the best plan on every model; lenet's
 *     1.22x is a 1-2 s window and lost under load in (b), so lenet stays on one thread.
 *
 * The rule: data-parallel from XNN_DATA_PARALLEL_MIN_SHARD_MACS per shard on XNNPACK (between
 * lenet's 9 M, a loss, and simple_cnn's 148 M, a gain) and BLAS_DATA_PARALLEL_MIN_SHARD_MACS on
 * OpenBLAS (its faster kernels leave less work to hide the synchronization behind; fmnist_cnn's
 * 136 M and simple_cnn's 148 M gained); otherwise one thread. OpenBLAS threads were never faster
 * than one thread end to end here (0.64-0.98x in the steadier runs; 0.81-0.82x in quiet moments), so the automatic rule does
 * not pick them (BLAS_THREADS_MIN_STEP_MACS is infinite); `parallelism: 'blas'` still forces them,
 * and a machine where they pay (more cores, less busy siblings) only needs that constant lowered.
 * The lead reruns bench:train on a quiet machine; if its figures move a threshold, change it here.
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
 * shard (lenet's 9 M lost, simple_cnn's 148 M and cifar10_cnn's 1.9 G gained; see above).
 */
export const XNN_DATA_PARALLEL_MIN_SHARD_MACS = 100e6;
/** With OpenBLAS kernels: data-parallel from this many multiply-adds per shard (fmnist_cnn's 136 M gained). */
export const BLAS_DATA_PARALLEL_MIN_SHARD_MACS = 120e6;
/**
 * With OpenBLAS, OpenBLAS threads (for a run that is not data-parallel) from this many
 * multiply-adds per step: infinite, as they were measured no faster than one thread (see above).
 */
export const BLAS_THREADS_MIN_STEP_MACS = Number.POSITIVE_INFINITY;
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
  const kernels = input.blasActive ? 'OpenBLAS' : 'XNNPACK';
  const minShard = input.blasActive ? BLAS_DATA_PARALLEL_MIN_SHARD_MACS : XNN_DATA_PARALLEL_MIN_SHARD_MACS;
  const mega = (v: number): string => `${(v / 1e6).toFixed(1)} M`;
  if (splittable && shardMacs >= minShard) {
    return { dataParallel: threads, blasThreads: 1, reason: `data-parallel: ${mega(shardMacs)} MACs per shard >= ${mega(minShard)} (${kernels})` };
  }
  if (input.blasActive && stepMacs >= BLAS_THREADS_MIN_STEP_MACS) {
    return { dataParallel: 1, blasThreads: threads, reason: `OpenBLAS threads: ${mega(stepMacs)} MACs per step >= ${mega(BLAS_THREADS_MIN_STEP_MACS)}` };
  }
  const why = splittable ? `${mega(shardMacs)} MACs per shard < ${mega(minShard)}` : 'the run cannot be split across workers';
  return single(`one thread: ${why} (${kernels})`);
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
