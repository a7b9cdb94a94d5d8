/**
 * A federation a user recognizes (issue 13 §3): serial FedAvg on real Fashion-MNIST (Debian's
 * dataset-fashion-mnist in /usr/share/datasets/fashion-mnist), the `fmnist_cnn` CNN (421,642
 * parameters), 10 IID learners, 5 rounds, 1 local epoch, batch 64, SGD lr 0.01, global-model
 * test accuracy every round; and in the same run a PyTorch loop (federation_torch.py: same model,
 * data, samples per round, thread count and evaluation) as the baseline.
 *
 *   npm run bench:federation -- [--json] [--rounds 5] [--learners 10] [--threads N] [--fraction F] [--learner-pool] [--no-torch] [--data-dir DIR]
 *
 * `--threads` defaults to every core (os.availableParallelism()) for both engines; `--fraction F`
 * trains on the first F of the 60,000 training images (quick runs; the test set stays whole).
 * Our learners train one after another, each data-parallel over N threads; `--learner-pool` runs
 * them instead N at a time on serial mode's learner pool (one thread each), as row `oiafed-pool`.
 * Each engine runs in its own child process, so its peak RSS (VmHWM) is its own.
 * BENCH_FEDERATION_PROBE=1 prints after each round (stderr, `probe {...}`) the main thread's
 * tf.memory() and wasm heap, process.memoryUsage() and the CPU-seconds of every OS thread (main
 * thread, training workers, GC helpers): what showed that nothing grows from round to round.
 *
 * Prints per round: seconds, CPU-seconds, accuracy; and peak RSS. With --json the last stdout
 * line is {"rows": [{engine: "oiafed" | "torch", threads, s_per_round, cpu_s_per_round,
 * accuracy_by_round: [...], final_accuracy, peak_rss_mb, ...}]}.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { resolveConfig } from '@oiafed/config';
import { runSerial } from '@oiafed/core';
import { loadDataset, registerDataset, subset, type DatasetSpec } from '@oiafed/datasets';
import { blasKernelsLabel, enableBlasKernels } from '@oiafed/models';
import { sourceNodeFlags } from '../../tests/source-node.js';

const root = resolve(import.meta.dirname, '../..');
const DEFAULT_DATA_DIR = '/usr/share/datasets/fashion-mnist';

interface Options {
  rounds: number;
  learners: number;
  threads: number;
  fraction: number;
  dataDir: string;
  torch: boolean;
  json: boolean;
  learnerPool: boolean;
}

interface Row {
  engine: 'oiafed' | 'oiafed-pool' | 'torch';
  threads: number;
  rounds: number;
  learners: number;
  train_samples: number;
  s_per_round: number;
  cpu_s_per_round: number;
  s_by_round: number[];
  cpu_s_by_round: number[];
  accuracy_by_round: number[];
  final_accuracy: number;
  peak_rss_mb: number;
  /** Kernel path of our engine ('openblas (SkylakeX, 1 thread)' or 'xnnpack'); PyTorch: its OPENBLAS_CORETYPE. */
  kernels?: string;
}

function parseOptions(argv: string[]): Options {
  const value = (flag: string, fallback: number): number => {
    const i = argv.indexOf(flag);
    if (i < 0) return fallback;
    const v = Number(argv[i + 1]);
    if (!Number.isFinite(v) || v <= 0) throw new Error(`${flag}: expected a positive number, got ${argv[i + 1]}`);
    return v;
  };
  const di = argv.indexOf('--data-dir');
  return {
    rounds: value('--rounds', 5),
    learners: value('--learners', 10),
    threads: value('--threads', availableParallelism()),
    fraction: Math.min(1, value('--fraction', 1)),
    dataDir: di >= 0 ? argv[di + 1]! : DEFAULT_DATA_DIR,
    torch: !argv.includes('--no-torch'),
    json: argv.includes('--json'),
    learnerPool: argv.includes('--learner-pool'),
  };
}

/** `fashion_mnist_head`: Fashion-MNIST with only the first `fraction` of its training images. */
function registerHeadDataset(): void {
  registerDataset('fashion_mnist_head', async (spec: DatasetSpec, options) => {
    const { fraction = 1, ...rest } = (spec.args ?? {}) as Record<string, unknown>;
    const loaded = await loadDataset({ type: 'fashion_mnist', split: spec.split, args: rest }, options);
    const train = loaded.train;
    if (!train || Number(fraction) >= 1) return loaded;
    const keep = Array.from({ length: Math.max(1, Math.round(train.length * Number(fraction))) }, (_, i) => i);
    return { ...loaded, train: subset(train, keep, `${train.name}[:${keep.length}]`) };
  });
}

function trainerConfig(o: Options, runDir: string): ReturnType<typeof resolveConfig> {
  return resolveConfig(
    {
      exp_name: 'bench-federation',
      node_id: 'trainer',
      role: 'trainer',
      seed: 1,
      transport: { mode: 'memory' },
      trainer: {
        type: 'default',
        args: { max_rounds: o.rounds, local_epochs: 1, client_fraction: 1, min_clients: o.learners, eval_every: 1, round_timeout: 86400 },
      },
      learner: { type: 'default', args: { batch_size: 64, lr: 0.01, optimizer: 'sgd', device: 'cpu', threads: o.threads } },
      aggregator: { type: 'fedavg' },
      model: { type: 'fmnist_cnn' },
      datasets: [
        {
          type: 'fashion_mnist_head',
          args: { fraction: o.fraction, data_dir: o.dataDir },
          partition: { strategy: 'iid', num_partitions: o.learners, config: { seed: 1 } },
        },
      ],
      heartbeat: { enabled: false },
      tracker: { backends: [{ type: 'console', level: 'warn' }], run_dir: runDir },
    },
    { file: '<bench:federation>', env: {} },
  );
}

/** Peak resident set of this process so far (all its threads), MiB. */
function peakRssMb(): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
  return m ? Math.round(Number(m[1]) / 1024) : 0;
}

/** Child: our serial federation; prints its row. A round's time runs from the previous round's end. */
async function oiafedChild(o: Options): Promise<void> {
  registerHeadDataset();
  const config = trainerConfig(o, mkdtempSync(join(tmpdir(), 'oiafed-bench-federation-')));
  const marks: Array<{ t: number; cpu: number }> = [];
  const mark = (): void => {
    const c = process.cpuUsage();
    marks.push({ t: performance.now(), cpu: (c.user + c.system) / 1e6 });
  };
  // Data loading, partitioning and model building happen before the trainer listens: they are
  // not part of a round (the PyTorch loop loads its data before its clock starts too). Round
  // lines are reported as each round ends (the final summary comes after them).
  const summary = await runSerial(config, {
    numClients: o.learners,
    ...(o.learnerPool ? { learnerPool: o.threads } : {}),
    onListening: () => mark(),
    report: () => {
      if (marks.length <= o.rounds) mark();
      if (process.env.BENCH_FEDERATION_PROBE) probeRound();
    },
  });
  const s = marks.slice(1).map((m, i) => m.t / 1000 - marks[i]!.t / 1000);
  const cpu = marks.slice(1).map((m, i) => m.cpu - marks[i]!.cpu);
  const acc = summary.rounds.map((r) => r.accuracy ?? NaN);
  const row: Row = {
    engine: o.learnerPool ? 'oiafed-pool' : 'oiafed',
    threads: o.threads,
    rounds: o.rounds,
    learners: o.learners,
    train_samples: Math.round(60000 * o.fraction),
    s_per_round: mean(s),
    cpu_s_per_round: mean(cpu),
    s_by_round: s,
    cpu_s_by_round: cpu,
    accuracy_by_round: acc,
    final_accuracy: acc.at(-1) ?? NaN,
    peak_rss_mb: peakRssMb(),
    kernels: blasKernelsLabel(),
  };
  process.stdout.write(`${JSON.stringify(row)}\n`);
}

/** BENCH_FEDERATION_PROBE=1: this thread's tensors and wasm heap, the process's memory, CPU-s per OS thread (stderr). */
function probeRound(): void {
  const m = tf.memory();
  const heap = (tf.backend() as unknown as { wasm?: { HEAPU8: Uint8Array } }).wasm?.HEAPU8.length ?? 0;
  const mu = process.memoryUsage();
  const threads: Record<string, number> = {};
  for (const tid of readdirSync('/proc/self/task')) {
    try {
      const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const name = `${readFileSync(`/proc/self/task/${tid}/comm`, 'utf8').trim()}:${tid}`;
      threads[name] = +((Number(f[11]) + Number(f[12])) / 100).toFixed(1);
    } catch {
      // the thread ended meanwhile
    }
  }
  const mb = (b: number): number => Math.round(b / 2 ** 20);
  process.stderr.write(`probe ${JSON.stringify({ tensors: m.numTensors, bytes: m.numBytes, heap_mb: mb(heap), rss_mb: mb(mu.rss), js_mb: mb(mu.heapUsed), ext_mb: mb(mu.external), ab_mb: mb(mu.arrayBuffers), threads })}\n`);
}

function mean(v: number[]): number {
  return v.length === 0 ? NaN : v.reduce((a, b) => a + b, 0) / v.length;
}

function lastJsonLine(out: string): Row | undefined {
  const line = out.trim().split('\n').reverse().find((l) => l.startsWith('{'));
  return line ? (JSON.parse(line) as Row) : undefined;
}

function childArgs(o: Options, pool = false): string[] {
  return [...(pool ? ['--learner-pool'] : []), '--rounds', String(o.rounds), '--learners', String(o.learners), '--threads', String(o.threads), '--fraction', String(o.fraction), '--data-dir', o.dataDir];
}

function runOiafed(o: Options, pool = false): Row | string {
  const r = spawnSync(process.execPath, [...sourceNodeFlags(), join(root, 'bench/federation/run.ts'), '--child', ...childArgs(o, pool)], {
    cwd: root,
    encoding: 'utf8',
    maxBuffer: 1 << 26,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return lastJsonLine(r.stdout ?? '') ?? `oiafed run failed (exit ${r.status})`;
}

/**
 * PyTorch's environment: its thread count, and the OpenBLAS core type our kernels run. Debian's
 * torch does its generic BLAS (the linear layers) through the system OpenBLAS, whose own core
 * detection a hypervisor can mislead (it picks Prescott here: 4-5x slower), so both engines get
 * the same core type; its convolutions run on MKL-DNN either way.
 */
function torchEnv(o: Options): NodeJS.ProcessEnv {
  const coreType = process.env.OPENBLAS_CORETYPE || enableBlasKernels('auto').coreType;
  const threads = String(o.threads);
  return { ...process.env, OMP_NUM_THREADS: threads, MKL_NUM_THREADS: threads, OPENBLAS_NUM_THREADS: threads, ...(coreType ? { OPENBLAS_CORETYPE: coreType } : {}) };
}

function runTorch(o: Options): Row | string {
  const python = '/usr/bin/python3';
  if (!existsSync(python)) return 'skipped: /usr/bin/python3 not found';
  const env = torchEnv(o);
  const r = spawnSync(python, [join(root, 'bench/federation/federation_torch.py'), ...childArgs(o)], { encoding: 'utf8', env, maxBuffer: 1 << 26, stdio: ['ignore', 'pipe', 'inherit'] });
  const row = lastJsonLine(r.stdout ?? '');
  if (row && 'error' in row) return `skipped: ${(row as { error: string }).error}`;
  return row ? { ...row, kernels: `OPENBLAS_CORETYPE=${env.OPENBLAS_CORETYPE ?? '(unset)'}` } : `torch run failed (exit ${r.status})`;
}

function printRow(row: Row, log: (s: string) => void): void {
  log(`\n${row.engine}, ${row.threads} thread(s), ${row.learners} learners, ${row.train_samples} training samples per round${row.kernels ? `; ${row.kernels}` : ''}`);
  log('round   seconds   CPU-s   accuracy');
  row.s_by_round.forEach((s, i) => {
    log(`${String(i + 1).padStart(5)} ${s.toFixed(1).padStart(9)} ${row.cpu_s_by_round[i]!.toFixed(1).padStart(7)} ${(100 * (row.accuracy_by_round[i] ?? NaN)).toFixed(2).padStart(9)}%`);
  });
  log(`mean ${row.s_per_round.toFixed(1)} s/round, ${row.cpu_s_per_round.toFixed(1)} CPU-s/round; final accuracy ${(100 * row.final_accuracy).toFixed(2)}%; peak RSS ${row.peak_rss_mb} MB`);
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const o = parseOptions(argv);
  if (argv.includes('--child')) return oiafedChild(o);
  const log = (s: string): void => void process.stdout.write(`${s}\n`);
  log(`bench:federation: Fashion-MNIST, fmnist_cnn, ${o.learners} IID learners, ${o.rounds} rounds x 1 epoch, batch 64, SGD lr 0.01, ${o.threads} thread(s); load average at start ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  const rows: Row[] = [];
  const runs: Array<[string, () => Row | string]> = [['oiafed', () => runOiafed(o)]];
  if (o.learnerPool) runs.push(['oiafed-pool', () => runOiafed(o, true)]);
  if (o.torch) runs.push(['torch', () => runTorch(o)]);
  for (const [name, run] of runs) {
    const r = run();
    if (typeof r === 'string') log(`\n${name}: ${r}`);
    else {
      rows.push(r);
      printRow(r, log);
    }
  }
  const torch = rows.find((r) => r.engine === 'torch');
  for (const ours of rows.filter((r) => r.engine !== 'torch')) {
    if (!torch) break;
    log(`\n${ours.engine}/torch: ${(ours.s_per_round / torch.s_per_round).toFixed(2)}x seconds per round; accuracy ${(100 * (ours.final_accuracy - torch.final_accuracy)).toFixed(2)} points`);
  }
  log(`load average at end ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  if (o.json) log(JSON.stringify({ rows }));
}

main().catch((e: unknown) => {
  process.stderr.write(`bench:federation: ${(e as Error).stack ?? String(e)}\n`);
  process.exit(1);
});
