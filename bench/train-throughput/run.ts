/**
 * Issue 4's benchmark: training throughput (samples/s, SGD) of lenet, simple_cnn and cifar10_cnn
 * per engine: tfjs-cpu, wasm-stock, wasm-patched, tfjs-node (if importable) and torch (PyTorch,
 * one CPU thread, via torch_bench.py).
 *
 *   npx tsx --conditions=@oiafed/source bench/train-throughput/run.ts [--json] [--quick] [--profile]
 *
 * Each engine/model pair runs in its own child process so that a failing engine (stock wasm
 * cannot train a CNN) cannot disturb the others. With --json the last stdout line is
 * {"rows":[{model, engine, batch, samples_per_s}, ...]} for the engines that ran.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BENCH_MODELS, buildBenchModel, INPUT_SHAPE } from './models.js';
import type { BenchModelName } from './models.js';

type Engine = 'tfjs-cpu' | 'wasm-stock' | 'wasm-patched' | 'tfjs-node' | 'torch';
const ENGINES: Engine[] = ['tfjs-cpu', 'wasm-stock', 'wasm-patched', 'tfjs-node', 'torch'];

interface Row {
  model: BenchModelName;
  engine: Engine;
  batch: number;
  samples_per_s: number;
}
interface Outcome {
  row?: Row;
  note?: string;
  profile?: { kernel: string; ms: number; calls: number }[];
}

const BATCH = 64;
const here = dirname(fileURLToPath(import.meta.url));

/** Batches timed per engine and model: pure JS is orders of magnitude slower, so it gets few. */
function plan(engine: Engine, model: BenchModelName, quick: boolean): { batch: number; warmup: number; steps: number } {
  if (engine === 'tfjs-cpu') {
    // ~25 samples/s on lenet, ~1 sample/s or less on the CIFAR nets: one short batch each.
    const batch = model === 'lenet' ? BATCH : model === 'simple_cnn' ? 8 : 2;
    return { batch, warmup: 0, steps: 1 };
  }
  const steps = { lenet: 20, simple_cnn: 10, cifar10_cnn: 4 }[model];
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
  } else if (engine === 'wasm-patched') {
    const { initWasmBackend } = await import('../../packages/models/src/wasm/index.js');
    await initWasmBackend();
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
    for (let i = 0; i < steps; i++) await step();
    const s = (performance.now() - t0) / 1000;
    return { row: { model, engine, batch, samples_per_s: (batch * steps) / s } };
  } catch (e) {
    const msg = (e as Error).message;
    const missing = /Kernel '([^']+)' not registered/.exec(msg);
    return { note: missing ? `cannot train: ${missing[1]} missing` : `cannot train: ${msg.slice(0, 160)}` };
  }
}

// ---------------------------------------------------------------------------------------------
// Driver.

function runWorker(engine: Engine, model: BenchModelName, quick: boolean, profile: boolean): Outcome {
  const args = [...process.execArgv, fileURLToPath(import.meta.url), '--worker', engine, model];
  if (quick) args.push('--quick');
  if (profile) args.push('--profile');
  const r = spawnSync(process.execPath, args, { encoding: 'utf8', timeout: 240_000, maxBuffer: 1 << 24 });
  const line = (r.stdout ?? '').trim().split('\n').reverse().find((l) => l.startsWith('{'));
  if (line == null) {
    const why = r.error ? r.error.message : (r.stderr ?? '').trim().split('\n').slice(-3).join(' | ');
    return { note: `failed: ${why || `exit ${r.status}`}` };
  }
  return JSON.parse(line) as Outcome;
}

function runTorch(models: BenchModelName[], quick: boolean): Map<BenchModelName, Outcome> {
  const out = new Map<BenchModelName, Outcome>();
  const python = '/usr/bin/python3';
  const noTorch = (note: string): Map<BenchModelName, Outcome> => {
    for (const m of models) out.set(m, { note });
    return out;
  };
  if (!existsSync(python)) return noTorch('skipped: /usr/bin/python3 not found');
  const steps = quick ? 4 : 10;
  const r = spawnSync(python, [join(here, 'torch_bench.py'), '--batch', String(BATCH), '--warmup', '2', '--steps', String(steps), ...models], {
    encoding: 'utf8',
    env: { ...process.env, OMP_NUM_THREADS: '1', MKL_NUM_THREADS: '1' },
    timeout: 300_000,
  });
  for (const line of (r.stdout ?? '').split('\n')) {
    if (!line.startsWith('{')) continue;
    const o = JSON.parse(line) as { error?: string; model?: BenchModelName; samples_per_s?: number; batch?: number };
    if (o.error != null) return noTorch(`skipped: ${o.error}`);
    if (o.model != null) out.set(o.model, { row: { model: o.model, engine: 'torch', batch: o.batch ?? BATCH, samples_per_s: o.samples_per_s ?? 0 } });
  }
  for (const m of models) if (!out.has(m)) out.set(m, { note: `failed: ${(r.stderr ?? '').trim().split('\n').slice(-1)[0] ?? 'no output'}` });
  return out;
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const quick = argv.includes('--quick');
  const profile = argv.includes('--profile');
  const wi = argv.indexOf('--worker');
  if (wi >= 0) {
    const outcome = await worker(argv[wi + 1] as Engine, argv[wi + 2] as BenchModelName, quick, profile);
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
  const torch = runTorch(models, quick);
  for (const model of models) {
    for (const engine of ENGINES) {
      const o = engine === 'torch' ? torch.get(model)! : runWorker(engine, model, quick, false);
      results.set(`${model}/${engine}`, o);
      const shown = o.row ? `${o.row.samples_per_s.toFixed(1)} samples/s (batch ${o.row.batch})` : o.note;
      process.stderr.write(`${model.padEnd(12)} ${engine.padEnd(13)} ${shown}\n`);
    }
  }

  const sps = (model: string, engine: Engine): number | undefined => results.get(`${model}/${engine}`)?.row?.samples_per_s;
  const ratio = (a?: number, b?: number): string => (a != null && b != null ? `${(a / b).toFixed(2)}x` : 'n/a');
  log(`\nTraining throughput, samples/s (SGD, batch ${BATCH} unless noted, 1 CPU thread)`);
  log(['model'.padEnd(12), ...ENGINES.map((e) => e.padStart(16)), 'patched/cpu'.padStart(12), 'patched/torch'.padStart(14)].join(' '));
  for (const model of models) {
    const cells = ENGINES.map((e) => {
      const o = results.get(`${model}/${e}`)!;
      if (o.row) return (o.row.samples_per_s.toFixed(1) + (o.row.batch !== BATCH ? ` (b${o.row.batch})` : '')).padStart(16);
      return (o.note?.startsWith('cannot train') ? 'cannot train' : 'skipped').padStart(16);
    });
    const p = sps(model, 'wasm-patched');
    log([model.padEnd(12), ...cells, ratio(p, sps(model, 'tfjs-cpu')).padStart(12), ratio(p, sps(model, 'torch')).padStart(14)].join(' '));
  }
  const notes = [...results].filter(([, o]) => o.note).map(([k, o]) => `  ${k}: ${o.note}`);
  if (notes.length > 0) log(`Notes:\n${[...new Set(notes)].join('\n')}`);
  if (json) {
    const rows = [...results.values()].flatMap((o) => (o.row ? [o.row] : []));
    log(JSON.stringify({ rows }));
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`train-throughput: ${(e as Error).stack ?? String(e)}\n`);
  process.exit(1);
});
