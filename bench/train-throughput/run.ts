/**
 * Issues 4 and 13's benchmark: training throughput (samples/s, SGD) of lenet, simple_cnn,
 * fmnist_cnn (bench:federation's CNN) and cifar10_cnn per engine: tfjs-cpu, wasm-stock,
 * wasm-patched (XNNPACK kernels), wasm-blas (patched wasm with the OpenBLAS conv/matmul kernels,
 * one OpenBLAS thread), tfjs-node (if importable) and torch (PyTorch, one CPU thread, via
 * torch_bench.py, with the OPENBLAS_CORETYPE our kernels use).
 *
 *   npm run bench:train -- [--json] [--quick] [--profile] [--no-overhead] [--no-threads | --threads-only] [lenet|simple_cnn|fmnist_cnn|cifar10_cnn ...]
 *
 * Each engine/model pair runs in its own child process so that a failing engine (stock wasm
 * cannot train a CNN) cannot disturb the others; OIAFED_BLAS=on|off picks the kernel path per
 * child. Throughput is measured twice: per wall-clock second (`samples_per_s`) and per CPU-second
 * of the process (`samples_per_cpu_s`). Every engine of the per-engine table runs one thread, so
 * on an idle machine the two agree; on a shared, loaded machine wall time depends on what else
 * runs at that moment while CPU time does not (much), which is why the ratios are given on CPU
 * time first.
 *
 * A second section measures the framework's own overhead: FedModel.train (one local epoch: batch
 * gathering from a DataSource, shuffling, loss/accuracy bookkeeping, yields to the event loop)
 * against a bare tfjs loop (optimizer.minimize over pre-built batch tensors), same model, batch,
 * backend (patched wasm, OIAFED_BLAS as set, default auto) and process, alternating so both see
 * the same load; the overhead is the median of the paired per-round CPU-time ratios.
 *
 * A threads section (issue 13) measures our training path (engine `oiafed`: FedModel.train) with
 * 1 thread and with every core (os.availableParallelism()) spent each way compute-plan.ts knows
 * (data-parallel workers on XNNPACK or OpenBLAS kernels, or one worker with N OpenBLAS threads;
 * the plan planCompute picks is marked), and PyTorch (torch.set_num_threads) likewise, then the
 * per-core ratios (ours / PyTorch at one thread) against issue 13's goals. `--threads-only` runs
 * just that section.
 *
 * With --json the last stdout line is {"rows":[{model, engine, batch, threads, samples_per_s,
 * samples_per_cpu_s, plan?, blas?}, ...], "overhead":[{model, batch, bare_samples_per_s,
 * fedmodel_samples_per_s, overhead_pct}, ...]}: `plan` ('none' | 'data' | 'blas') and `blas`
 * (OpenBLAS kernels on) for our wasm engines.
 */
import { spawnSync } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BENCH_MODELS, buildBenchModel, INPUT_SHAPE } from './models.js';
import type { BenchModelName } from './models.js';

type Engine = 'tfjs-cpu' | 'wasm-stock' | 'wasm-patched' | 'wasm-blas' | 'tfjs-node' | 'torch' | 'oiafed';
const ENGINES: Engine[] = ['tfjs-cpu', 'wasm-stock', 'wasm-patched', 'wasm-blas', 'tfjs-node', 'torch'];
/** How our engine spends its threads (FedModel.train's `parallelism`): see packages/models/src/parallel/compute-plan.ts. */
type Plan = 'none' | 'data' | 'blas';
/** One configuration of our engine in the threads section. */
interface Variant {
  plan: Plan;
  /** OpenBLAS kernels (OIAFED_BLAS=on) or the patched XNNPACK ones (off). */
  blas: boolean;
}
/** Per-core goals of issue 13: ours / PyTorch samples/s at one thread. */
const PER_CORE_GOAL: Record<BenchModelName, number> = { lenet: 0.6, simple_cnn: 0.6, fmnist_cnn: 0.6, cifar10_cnn: 0.5 };
/** The threads dimension: one thread, and every core of this machine. */
const THREADS: number[] = [...new Set([1, availableParallelism()])];

interface Row {
  model: BenchModelName;
  engine: Engine;
  batch: number;
  /** Threads the engine trained with (the engines of the per-engine table run one). */
  threads: number;
  samples_per_s: number;
  samples_per_cpu_s: number;
  /** Our engine: how the threads were spent ('none': one thread; 'data': data-parallel workers; 'blas': OpenBLAS threads). */
  plan?: Plan;
  /** Our engines: whether the OpenBLAS kernels ran. */
  blas?: boolean;
}
interface OverheadRow {
  model: BenchModelName;
  batch: number;
  bare_samples_per_s: number;
  fedmodel_samples_per_s: number;
  /** Median over paired rounds of (FedModel CPU time / bare CPU time - 1), in percent. */
  overhead_pct: number;
}
interface Outcome {
  row?: Row;
  overhead?: OverheadRow;
  note?: string;
  /** Our engine: the plan planCompute picks for this model and thread count (parallelism 'auto'), and why. */
  autoPlan?: { plan: Plan; reason: string };
  /** blas-status worker: the OpenBLAS core type our kernels run. */
  coreType?: string;
  profile?: { kernel: string; ms: number; calls: number }[];
}

/** Three significant digits at least (the pure-JS engine runs well under 1 sample/s). */
function fmt(v: number): string {
  return v >= 100 ? v.toFixed(0) : v >= 1 ? v.toFixed(1) : v.toPrecision(2);
}

/** CPU seconds (user + system) of this process since `from`. */
function cpuSeconds(from: NodeJS.CpuUsage): number {
  const d = process.cpuUsage(from);
  return (d.user + d.system) / 1e6;
}

const BATCH = 64;
/** The whole bench must end within 10 minutes even on a loaded machine; workers share this. */
const BUDGET_MS = 9 * 60_000;
const startedAt = Date.now();
/** Per-process cap: the pure-JS engine on the CIFAR nets can take minutes under load. */
const WORKER_CAP_MS: Record<Engine | 'overhead', number> = {
  'tfjs-cpu': 90_000,
  'wasm-stock': 60_000,
  'wasm-patched': 180_000,
  'wasm-blas': 180_000,
  'tfjs-node': 120_000,
  torch: 180_000,
  oiafed: 180_000,
  overhead: 120_000,
};

/** Milliseconds a child may run: its cap, cut to what is left of the budget (0: do not start). */
function timeLeft(kind: Engine | 'overhead'): number {
  const left = BUDGET_MS - (Date.now() - startedAt) - 5_000;
  return left < 10_000 ? 0 : Math.min(WORKER_CAP_MS[kind], left);
}
const here = dirname(fileURLToPath(import.meta.url));

/** Batches timed per engine and model: pure JS is orders of magnitude slower, so it gets few. */
function plan(engine: Engine, model: BenchModelName, quick: boolean): { batch: number; warmup: number; steps: number } {
  if (engine === 'tfjs-cpu') {
    // ~25 samples/s on lenet, ~1 sample/s or less on the CIFAR nets: one short batch each.
    const batch = model === 'lenet' ? BATCH : model === 'simple_cnn' ? 8 : 2;
    return { batch, warmup: 0, steps: 1 };
  }
  const steps = { lenet: 30, simple_cnn: 10, fmnist_cnn: 10, cifar10_cnn: 5 }[model];
  return { batch: BATCH, warmup: 2, steps: quick ? Math.max(2, Math.ceil(steps / 3)) : steps };
}

// ---------------------------------------------------------------------------------------------
// Worker: one engine, one model.

async function setUpTfjs(engine: Engine): Promise<typeof import('@tensorflow/tfjs-core')> {
  const tf = await import('@tensorflow/tfjs-core');
  if (engine === 'tfjs-cpu') {
    await import('@tensorflow/tfjs-backend-cpu');
    await tf.setBackend('cpu');
  } else if (engine === 'wasm-stock') {
    const wasm = await import('@tensorflow/tfjs-backend-wasm');
    const { wasmBinaryDir } = await import('../../packages/models/src/wasm/index.js');
    wasm.setWasmPaths(wasmBinaryDir());
    wasm.setThreadsCount(1);
    await tf.setBackend('wasm');
  } else if (engine === 'wasm-patched' || engine === 'wasm-blas') {
    // The driver starts this child with OIAFED_BLAS=off or on (the BLAS path follows it).
    const { initWasmBackend } = await import('../../packages/models/src/wasm/index.js');
    await initWasmBackend();
    const { blasStatus, setBlasThreads } = await import('@oiafed/models');
    if (blasStatus().active) setBlasThreads(1);
  } else if (engine === 'tfjs-node') {
    const name = '@tensorflow/tfjs-node';
    await import(name);
    await tf.setBackend('tensorflow');
  }
  await tf.ready();
  return tf;
}

async function worker(engine: Engine, model: BenchModelName, quick: boolean, profile: boolean): Promise<Outcome> {
  if (engine === 'tfjs-node') {
    try {
      await import('@tensorflow/tfjs-node' as string);
    } catch {
      return { note: 'skipped: @tensorflow/tfjs-node is not installed' };
    }
  }
  const tf = await setUpTfjs(engine);
  const { batch, warmup, steps } = plan(engine, model, quick);
  const m = buildBenchModel(model);
  m.compile({
    optimizer: tf.train.sgd(0.01),
    loss: (yTrue: unknown, yPred: unknown) => tf.losses.softmaxCrossEntropy(yTrue as never, yPred as never),
  });
  const x = tf.randomNormal([batch, ...INPUT_SHAPE[model]], 0, 1, 'float32', 1);
  if (engine === 'wasm-patched' || engine === 'wasm-blas') {
    // As FedModel.train does: the batch's gradient is never read (see skipInputGradient).
    const { skipInputGradient } = await import('../../packages/models/src/wasm/index.js');
    skipInputGradient(x);
  }
  const labels = Array.from({ length: batch }, (_, i) => i % 10);
  const y = tf.oneHot(tf.tensor1d(labels, 'int32'), 10);
  const step = async (): Promise<void> => {
    await m.trainOnBatch(x, y);
  };
  try {
    for (let i = 0; i < warmup; i++) await step();
    if (profile) {
      const info = await tf.profile(step);
      const agg = new Map<string, { ms: number; calls: number }>();
      for (const k of info.kernels) {
        const e = agg.get(k.name) ?? { ms: 0, calls: 0 };
        e.ms += typeof k.kernelTimeMs === 'number' ? k.kernelTimeMs : 0;
        e.calls++;
        agg.set(k.name, e);
      }
      const rows = [...agg].map(([kernel, v]) => ({ kernel, ...v })).sort((a, b) => b.ms - a.ms);
      return { profile: rows };
    }
    const t0 = performance.now();
    const c0 = process.cpuUsage();
    for (let i = 0; i < steps; i++) await step();
    const cpu = cpuSeconds(c0);
    const s = (performance.now() - t0) / 1000;
    const blas = engine === 'wasm-blas' || engine === 'wasm-patched' ? engine === 'wasm-blas' : undefined;
    return { row: { model, engine, batch, threads: 1, samples_per_s: (batch * steps) / s, samples_per_cpu_s: (batch * steps) / cpu, plan: 'none', ...(blas === undefined ? {} : { blas }) } };
  } catch (e) {
    const msg = (e as Error).message;
    const missing = /Kernel '([^']+)' not registered/.exec(msg);
    return { note: missing ? `cannot train: ${missing[1]} missing` : `cannot train: ${msg.slice(0, 160)}` };
  }
}

/** `n` samples of uniform noise in [-0.5, 0.5) for `model`, labels cycling through the 10 classes. */
function syntheticData(model: BenchModelName, n: number): { features: Float32Array; labels: Int32Array; sampleShape: number[]; numClasses: number; length: number } {
  const shape = INPUT_SHAPE[model];
  const features = new Float32Array(n * shape[0] * shape[1] * shape[2]);
  let seed = 12345;
  for (let i = 0; i < features.length; i++) {
    seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
    features[i] = seed / 2 ** 32 - 0.5;
  }
  const labels = Int32Array.from({ length: n }, (_, i) => i % 10);
  return { features, labels, sampleShape: [...shape], numClasses: 10, length: n };
}

/** The plan's name from FedModel's ComputePlan. */
function planName(p: { dataParallel: number; blasThreads: number }): Plan {
  return p.dataParallel > 1 ? 'data' : p.blasThreads > 1 ? 'blas' : 'none';
}

/**
 * Our training path with `threads` threads spent as `forced` says (FedModel.train's
 * `parallelism`; the driver sets OIAFED_BLAS for the kernel path): one epoch over `steps`
 * batches, after a two-batch warm-up epoch that also starts any workers. CPU time is the whole
 * process's (all its threads). Also reports what the automatic plan would have been.
 */
async function fedModelWorker(model: BenchModelName, quick: boolean, threads: number, forced: Plan): Promise<Outcome> {
  await setUpTfjs('wasm-patched');
  const { FedModel, blasStatus, countMacsPerSample, planCompute } = await import('@oiafed/models');
  const { steps } = plan('wasm-patched', model, quick);
  const fed = new FedModel(model, buildBenchModel(model));
  const blas = blasStatus().active;
  const auto = planCompute({ threads, blasActive: blas, macsPerSample: countMacsPerSample(fed.model), batchSize: BATCH });
  const opts = { epochs: 1, batchSize: BATCH, lr: 0.01, optimizer: 'sgd' as const, seed: 1, threads, parallelism: forced };
  try {
    await fed.train(syntheticData(model, 2 * BATCH), opts);
    const data = syntheticData(model, steps * BATCH);
    const t0 = performance.now();
    const c0 = process.cpuUsage();
    const result = await fed.train(data, opts);
    const cpu = cpuSeconds(c0);
    const s = (performance.now() - t0) / 1000;
    const used = result.plan ? planName(result.plan) : forced;
    return {
      row: { model, engine: 'oiafed', batch: BATCH, threads, samples_per_s: data.length / s, samples_per_cpu_s: data.length / cpu, plan: used, blas },
      autoPlan: { plan: planName(auto), reason: auto.reason },
    };
  } finally {
    fed.dispose();
  }
}

/** The OpenBLAS core type our kernels run here (what PyTorch's OpenBLAS is given too). */
async function blasStatusWorker(): Promise<Outcome> {
  const { initWasmBackend } = await import('../../packages/models/src/wasm/index.js');
  await initWasmBackend();
  const { blasStatus } = await import('@oiafed/models');
  const st = blasStatus();
  return st.active ? { coreType: st.coreType } : { note: `OpenBLAS not active: ${st.reason ?? 'unknown reason'}` };
}

/**
 * FedModel.train vs a bare loop on patched wasm, alternating `rounds` times; each run is one
 * epoch over the same `batches * BATCH` samples. Returns CPU-time throughputs (summed over the
 * rounds, the first round of each discarded as warm-up).
 */
async function overheadWorker(model: BenchModelName, quick: boolean): Promise<Outcome> {
  const tf = await setUpTfjs('wasm-patched');
  const { FedModel } = await import('@oiafed/models');
  const batches = { lenet: 20, simple_cnn: 6, fmnist_cnn: 6, cifar10_cnn: 2 }[model];
  const rounds = quick ? 3 : 7;
  const shape = INPUT_SHAPE[model];
  const sampleSize = shape[0] * shape[1] * shape[2];
  const n = batches * BATCH;
  const data = syntheticData(model, n);
  const { features, labels } = data;

  const fed = new FedModel(model, buildBenchModel(model));
  const bareModel = buildBenchModel(model);
  // The bare loop gets its batches ready-made (the cost FedModel pays to gather them is part of
  // what is measured) and does nothing but forward, backward and the SGD update.
  const xs: import('@tensorflow/tfjs-core').Tensor[] = [];
  const ys: import('@tensorflow/tfjs-core').Tensor[] = [];
  for (let b = 0; b < batches; b++) {
    xs.push(tf.tensor(features.subarray(b * BATCH * sampleSize, (b + 1) * BATCH * sampleSize), [BATCH, ...shape]));
    ys.push(tf.oneHot(tf.tensor1d(labels.subarray(b * BATCH, (b + 1) * BATCH), 'int32'), 10));
  }
  const bareEpoch = async (): Promise<void> => {
    const opt = tf.train.sgd(0.01);
    for (let b = 0; b < batches; b++) {
      const loss = opt.minimize(() => tf.losses.softmaxCrossEntropy(ys[b]!, bareModel.apply(xs[b]!, { training: true }) as never) as never, true);
      loss?.dispose();
    }
    await tf.ready();
    opt.dispose();
  };
  const fedEpoch = async (): Promise<void> => {
    await fed.train(data, { epochs: 1, batchSize: BATCH, lr: 0.01, optimizer: 'sgd', seed: 1 });
  };
  // Paired rounds (bare, then FedModel), the first discarded as warm-up; the overhead is the
  // median of the per-round ratios, which shrugs off a round that another process slowed down.
  const bareTimes: number[] = [];
  const fedTimes: number[] = [];
  for (let r = 0; r < rounds + 1; r++) {
    let c = process.cpuUsage();
    await bareEpoch();
    const b = cpuSeconds(c);
    c = process.cpuUsage();
    await fedEpoch();
    const f = cpuSeconds(c);
    if (r > 0) {
      bareTimes.push(b);
      fedTimes.push(f);
    }
  }
  const median = (v: number[]): number => {
    const s = [...v].sort((a, b) => a - b);
    return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
  };
  const ratio = median(fedTimes.map((f, i) => f / bareTimes[i]!));
  const bare = (n * rounds) / bareTimes.reduce((a, b) => a + b, 0);
  const fedSps = (n * rounds) / fedTimes.reduce((a, b) => a + b, 0);
  return {
    overhead: { model, batch: BATCH, bare_samples_per_s: bare, fedmodel_samples_per_s: fedSps, overhead_pct: 100 * (ratio - 1) },
  };
}

// ---------------------------------------------------------------------------------------------
// Driver.

/** OIAFED_BLAS for a child: the OpenBLAS path only where the engine or variant asks for it. */
function blasEnv(engine: Engine | 'overhead' | 'blas-status', variant?: Variant): string {
  if (variant !== undefined) return variant.blas ? 'on' : 'off';
  return engine === 'wasm-blas' || engine === 'blas-status' ? 'on' : engine === 'overhead' ? (process.env.OIAFED_BLAS ?? 'auto') : 'off';
}

function runWorker(engine: Engine | 'overhead' | 'blas-status', model: BenchModelName, quick: boolean, profile: boolean, threads = 1, variant?: Variant): Outcome {
  const args = [...process.execArgv, fileURLToPath(import.meta.url), '--worker', engine, model, '--threads', String(threads)];
  if (variant) args.push('--plan', variant.plan);
  if (quick) args.push('--quick');
  if (profile) args.push('--profile');
  const timeout = timeLeft(engine === 'blas-status' ? 'overhead' : engine);
  if (timeout === 0) return { note: 'skipped: the 9-minute time budget is spent' };
  const env = { ...process.env, OIAFED_BLAS: blasEnv(engine, variant) };
  const r = spawnSync(process.execPath, args, { encoding: 'utf8', timeout, maxBuffer: 1 << 24, env });
  if (r.error && /ETIMEDOUT/.test(r.error.message)) return { note: `timed out after ${Math.round(timeout / 1000)} s` };
  const line = (r.stdout ?? '').trim().split('\n').reverse().find((l) => l.startsWith('{'));
  if (line == null) {
    const why = r.error ? r.error.message : (r.stderr ?? '').trim().split('\n').slice(-3).join(' | ');
    return { note: `failed: ${why || `exit ${r.status}`}` };
  }
  return JSON.parse(line) as Outcome;
}

/**
 * OPENBLAS_CORETYPE for PyTorch: Debian's torch does its generic BLAS through the system OpenBLAS
 * (libopenblas0-pthread), so it gets the core type our kernels run (the user's, else the one our
 * loader chose from /proc/cpuinfo), not OpenBLAS's own detection that a hypervisor can mislead.
 */
let torchCoreType: string | undefined;

function runTorch(models: BenchModelName[], quick: boolean, threads = 1): Map<BenchModelName, Outcome> {
  const out = new Map<BenchModelName, Outcome>();
  const python = '/usr/bin/python3';
  const noTorch = (note: string): Map<BenchModelName, Outcome> => {
    for (const m of models) out.set(m, { note });
    return out;
  };
  if (!existsSync(python)) return noTorch('skipped: /usr/bin/python3 not found');
  const steps = quick ? 4 : 12;
  const args = ['--batch', String(BATCH), '--warmup', '2', '--steps', String(steps), '--threads', String(threads)];
  const r = spawnSync(python, [join(here, 'torch_bench.py'), ...args, ...models], {
    encoding: 'utf8',
    env: {
      ...process.env,
      OMP_NUM_THREADS: String(threads),
      MKL_NUM_THREADS: String(threads),
      ...(torchCoreType ? { OPENBLAS_CORETYPE: torchCoreType } : {}),
    },
    timeout: timeLeft('torch'),
  });
  for (const line of (r.stdout ?? '').split('\n')) {
    if (!line.startsWith('{')) continue;
    const o = JSON.parse(line) as { error?: string; model?: BenchModelName; samples_per_s?: number; samples_per_cpu_s?: number; batch?: number };
    if (o.error != null) return noTorch(`skipped: ${o.error}`);
    if (o.model != null) {
      out.set(o.model, {
        row: { model: o.model, engine: 'torch', batch: o.batch ?? BATCH, threads, samples_per_s: o.samples_per_s ?? 0, samples_per_cpu_s: o.samples_per_cpu_s ?? 0 },
      });
    }
  }
  for (const m of models) if (!out.has(m)) out.set(m, { note: `failed: ${(r.stderr ?? '').trim().split('\n').slice(-1)[0] ?? 'no output'}` });
  return out;
}

/** Our engine's configurations at `threads` threads: one thread, or each way of spending N. */
function variants(threads: number): Variant[] {
  if (threads === 1) return [{ plan: 'none', blas: true }];
  return [
    { plan: 'data', blas: false },
    { plan: 'data', blas: true },
    { plan: 'blas', blas: true },
  ];
}

const variantKey = (model: string, threads: number, v: Variant): string => `${model}/oiafed/${threads}/${v.plan}/${v.blas ? 'blas' : 'xnn'}`;

/**
 * The threads dimension: our training path (FedModel.train, each plan of compute-plan.ts) and
 * PyTorch (torch.set_num_threads), each with 1 thread and with every core. Keys
 * model/torch/threads and model/oiafed/threads/plan/blas|xnn.
 */
function measureThreads(models: BenchModelName[], quick: boolean, torchOne: Map<BenchModelName, Outcome>): Map<string, Outcome> {
  const out = new Map<string, Outcome>();
  for (const threads of THREADS) {
    const torch = threads === 1 && torchOne.size > 0 ? torchOne : runTorch(models, quick, threads);
    for (const model of models) {
      const o = torch.get(model)!;
      out.set(`${model}/torch/${threads}`, o);
      process.stderr.write(`${model.padEnd(12)} torch   ${threads} thread(s)            ${shownRate(o)}\n`);
      for (const v of variants(threads)) {
        const r = runWorker('oiafed', model, quick, false, threads, v);
        out.set(variantKey(model, threads, v), r);
        process.stderr.write(`${model.padEnd(12)} oiafed  ${threads} thread(s) ${v.plan.padEnd(4)} ${v.blas ? 'blas' : 'xnn '} ${shownRate(r)}\n`);
      }
    }
  }
  return out;
}

function shownRate(o: Outcome): string {
  return o.row ? `${fmt(o.row.samples_per_s)} samples/s, ${fmt(o.row.samples_per_cpu_s)} per CPU-s` : (o.note ?? '');
}

function printThreads(models: BenchModelName[], scaling: Map<string, Outcome>, log: (s: string) => void): void {
  const n = THREADS[THREADS.length - 1]!;
  const sps = (key: string): number | undefined => scaling.get(key)?.row?.samples_per_s;
  const cell = (v?: number, w = 11): string => (v == null ? 'n/a' : fmt(v)).padStart(w);
  const ratio = (a?: number, b?: number, w = 9): string => (a != null && b != null && b > 0 ? `${(a / b).toFixed(2)}x` : 'n/a').padStart(w);
  const one = (m: string): number | undefined => sps(variantKey(m, 1, variants(1)[0]!));
  log(`\nThreads: samples per wall-clock second, 1 thread and ${n} (every core), batch ${BATCH}`);
  log(`  oiafed = FedModel.train on wasm; at ${n} threads: data = data-parallel workers (xnn: XNNPACK kernels, blas: OpenBLAS 1 thread each),`);
  log(`  blas = one worker with ${n} OpenBLAS threads; auto = the plan planCompute picks (marked *); scaling = best of ours at ${n} / ours at 1`);
  const heads = ['model'.padEnd(12), 'oiafed 1'.padStart(10), 'data xnn'.padStart(10), 'data blas'.padStart(10), 'blas thr'.padStart(10), 'auto'.padStart(6), 'scaling'.padStart(8), 'torch 1'.padStart(9), `torch ${n}`.padStart(9), 'scaling'.padStart(8), `auto/torch@${n}`.padStart(13)];
  log(heads.join(' '));
  for (const m of models) {
    if (n === 1) break;
    const vs = variants(n);
    const rates = vs.map((v) => sps(variantKey(m, n, v)));
    // The automatic plan of the default kernel path (OpenBLAS where it loads), as a learner gets it.
    const autoPlan = vs.filter((v) => v.blas).map((v) => scaling.get(variantKey(m, n, v))?.autoPlan).find((a) => a !== undefined);
    const autoIdx = vs.findIndex((v) => v.blas && v.plan === autoPlan?.plan);
    const auto = autoPlan?.plan === 'none' ? one(m) : autoIdx >= 0 ? rates[autoIdx] : undefined;
    const best = Math.max(...rates.map((r) => r ?? 0));
    const cells = rates.map((r, i) => (cell(r, 9) + (i === autoIdx ? '*' : ' ')));
    const [t1, tn] = [sps(`${m}/torch/1`), sps(`${m}/torch/${n}`)];
    log([m.padEnd(12), cell(one(m), 10), ...cells, (autoPlan?.plan ?? 'n/a').padStart(6), ratio(best > 0 ? best : undefined, one(m), 8), cell(t1, 9), cell(tn, 9), ratio(tn, t1, 8), ratio(auto, tn, 13)].join(' '));
  }
  const reasons = models.map((m) => [m, variants(n).filter((v) => v.blas).map((v) => scaling.get(variantKey(m, n, v))?.autoPlan).find((a) => a !== undefined)] as const);
  for (const [m, a] of reasons) if (a) log(`  ${m}: auto = ${a.plan} (${a.reason})`);
}

/** Issue 13's per-core goal: ours / PyTorch samples/s with one thread each, met or not. */
function printPerCore(models: BenchModelName[], results: Map<string, Outcome>, scaling: Map<string, Outcome>, log: (s: string) => void): void {
  const sps = (o?: Outcome): number | undefined => o?.row?.samples_per_s;
  const perCpu = (o?: Outcome): number | undefined => o?.row?.samples_per_cpu_s;
  log(`\nPer core: ours / PyTorch, samples per wall-clock second, 1 thread each (goal: >= 0.6x lenet, simple_cnn, fmnist_cnn; >= 0.5x cifar10_cnn)`);
  log('  oiafed 1 = FedModel.train (OpenBLAS kernels where they load); wasm-blas = the bare loop of the per-engine table; per CPU-s = the same ratio on CPU time (less load-dependent)');
  log(['model'.padEnd(12), 'oiafed 1'.padStart(10), 'wasm-blas'.padStart(10), 'torch 1'.padStart(9), 'oiafed/torch'.padStart(13), 'wasm-blas/torch'.padStart(16), 'per CPU-s'.padStart(10), 'goal'.padStart(6), 'met'.padStart(8)].join(' '));
  for (const m of models) {
    const oursRow = scaling.get(variantKey(m, 1, variants(1)[0]!));
    const torchRow = scaling.get(`${m}/torch/1`) ?? results.get(`${m}/torch`);
    const cpuRatio = perCpu(oursRow) != null && perCpu(torchRow) ? perCpu(oursRow)! / perCpu(torchRow)! : undefined;
    const ours = sps(oursRow);
    const bare = sps(results.get(`${m}/wasm-blas`));
    const torch = sps(scaling.get(`${m}/torch/1`)) ?? sps(results.get(`${m}/torch`));
    const r = ours != null && torch ? ours / torch : undefined;
    const rb = bare != null && torch ? bare / torch : undefined;
    const met = r == null ? 'n/a' : r >= PER_CORE_GOAL[m] ? 'met' : 'not met';
    const x = (v?: number, w = 10): string => (v == null ? 'n/a' : `${v.toFixed(2)}x`).padStart(w);
    log([m.padEnd(12), (ours == null ? 'n/a' : fmt(ours)).padStart(10), (bare == null ? 'n/a' : fmt(bare)).padStart(10), (torch == null ? 'n/a' : fmt(torch)).padStart(9), x(r, 13), x(rb, 16), x(cpuRatio, 10), `${PER_CORE_GOAL[m]}x`.padStart(6), met.padStart(8)].join(' '));
  }
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const quick = argv.includes('--quick');
  const profile = argv.includes('--profile');
  const wi = argv.indexOf('--worker');
  if (wi >= 0) {
    const kind = argv[wi + 1];
    const model = argv[wi + 2] as BenchModelName;
    const ti = argv.indexOf('--threads');
    const threads = ti >= 0 ? Number(argv[ti + 1]) : 1;
    const pi = argv.indexOf('--plan');
    const forced = (pi >= 0 ? argv[pi + 1] : 'none') as Plan;
    const outcome =
      kind === 'overhead'
        ? await overheadWorker(model, quick)
        : kind === 'oiafed'
          ? await fedModelWorker(model, quick, threads, forced)
          : kind === 'blas-status'
            ? await blasStatusWorker()
            : await worker(kind as Engine, model, quick, profile);
    process.stdout.write(JSON.stringify(outcome) + '\n');
    return;
  }
  const json = argv.includes('--json');
  const only = argv.filter((a) => (BENCH_MODELS as readonly string[]).includes(a)) as BenchModelName[];
  const models = only.length > 0 ? only : [...BENCH_MODELS];
  const log = (s: string): void => void process.stdout.write(s + '\n');

  if (profile) {
    for (const model of models) {
      const o = runWorker('wasm-patched', model, quick, true);
      log(`\n${model} (wasm-patched, one training step, batch ${BATCH}):`);
      const total = (o.profile ?? []).reduce((s, k) => s + k.ms, 0);
      for (const k of (o.profile ?? []).slice(0, 14)) {
        log(`  ${k.kernel.padEnd(24)} ${k.ms.toFixed(1).padStart(8)} ms ${((100 * k.ms) / total).toFixed(1).padStart(5)}%  x${k.calls}`);
      }
      if (o.note) log(`  ${o.note}`);
    }
    return;
  }

  const results = new Map<string, Outcome>();
  const threadsOnly = argv.includes('--threads-only');
  const status = runWorker('blas-status', models[0]!, quick, false);
  torchCoreType = process.env.OPENBLAS_CORETYPE || status.coreType;
  log(`OpenBLAS: ${status.coreType ? `core ${status.coreType}` : status.note}; PyTorch runs with OPENBLAS_CORETYPE=${torchCoreType ?? '(unset)'}`);
  const torch = threadsOnly ? new Map<BenchModelName, Outcome>() : runTorch(models, quick);
  for (const model of threadsOnly ? [] : models) {
    for (const engine of ENGINES) {
      const o = engine === 'torch' ? torch.get(model)! : runWorker(engine, model, quick, false);
      results.set(`${model}/${engine}`, o);
      const shown = o.row ? `${fmt(o.row.samples_per_s)} samples/s, ${fmt(o.row.samples_per_cpu_s)} per CPU-s (batch ${o.row.batch})` : o.note;
      process.stderr.write(`${model.padEnd(12)} ${engine.padEnd(13)} ${shown}\n`);
    }
  }

  const scaling = argv.includes('--no-threads') ? new Map<string, Outcome>() : measureThreads(models, quick, torch);

  const overhead: OverheadRow[] = [];
  if (!argv.includes('--no-overhead') && !threadsOnly) {
    for (const model of models.filter((m) => m !== 'cifar10_cnn')) {
      const o = runWorker('overhead', model, quick, false);
      if (o.overhead) overhead.push(o.overhead);
      process.stderr.write(`${model.padEnd(12)} overhead      ${o.overhead ? `${o.overhead.overhead_pct.toFixed(1)}%` : o.note}\n`);
    }
  }

  const get = (model: string, engine: Engine, key: 'samples_per_s' | 'samples_per_cpu_s'): number | undefined => results.get(`${model}/${engine}`)?.row?.[key];
  const ratio = (a?: number, b?: number): string => (a != null && b != null && b > 0 ? `${(a / b).toFixed(2)}x` : 'n/a');
  const table = (key: 'samples_per_s' | 'samples_per_cpu_s', title: string): void => {
    log(`\n${title}`);
    log(['model'.padEnd(12), ...ENGINES.map((e) => e.padStart(14)), 'patched/cpu'.padStart(12), 'patched/torch'.padStart(14)].join(' '));
    for (const model of models) {
      const cells = ENGINES.map((e) => {
        const o = results.get(`${model}/${e}`)!;
        if (o.row) return (fmt(o.row[key]) + (o.row.batch !== BATCH ? ` (b${o.row.batch})` : '')).padStart(14);
        const shown = o.note?.startsWith('cannot train') ? 'cannot train' : o.note?.startsWith('timed out') ? 'timed out' : 'skipped';
      return shown.padStart(14);
      });
      const p = get(model, 'wasm-patched', key);
      log([model.padEnd(12), ...cells, ratio(p, get(model, 'tfjs-cpu', key)).padStart(12), ratio(p, get(model, 'torch', key)).padStart(14)].join(' '));
    }
  };
  if (!threadsOnly) {
    table('samples_per_cpu_s', `Training throughput, samples per CPU-second (SGD, batch ${BATCH} unless noted, 1 thread each)`);
    table('samples_per_s', 'Same runs, samples per wall-clock second (depends on the machine\'s load at that moment)');
  }
  if (overhead.length > 0) {
    log(`\nFramework overhead on wasm-patched (one local epoch, batch ${BATCH}, samples per CPU-second)`);
    log(['model'.padEnd(12), 'bare loop'.padStart(12), 'FedModel.train'.padStart(15), 'overhead'.padStart(9)].join(' '));
    for (const o of overhead) {
      log([o.model.padEnd(12), o.bare_samples_per_s.toFixed(1).padStart(12), o.fedmodel_samples_per_s.toFixed(1).padStart(15), `${o.overhead_pct.toFixed(1)}%`.padStart(9)].join(' '));
    }
  }
  if (scaling.size > 0) printThreads(models, scaling, log);
  if (scaling.size > 0) printPerCore(models, results, scaling, log);
  const notes = [...results, ...scaling].filter(([, o]) => o.note).map(([k, o]) => `  ${k}: ${o.note}`);
  if (notes.length > 0) log(`Notes:\n${[...new Set(notes)].join('\n')}`);
  if (json) {
    const rows = [...new Set([...results.values(), ...scaling.values()].flatMap((o) => (o.row ? [o.row] : [])))];
    log(JSON.stringify({ rows, overhead }));
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`train-throughput: ${(e as Error).stack ?? String(e)}\n`);
  process.exit(1);
});
