/**
 * Round overhead of the federation itself: round wall time minus the slowest learner's training
 * time (RoundRecord.duration_s - slowest_train_s), with a tiny model so the federation's own cost
 * dominates. In-process learners (serial mode, memory transport, one shared model) and learner
 * processes over gRPC on 127.0.0.1 (`oiafed launch`). Also: time from start to the end of round
 * 1, and RSS of the trainer and of each learner.
 *
 *   npm run bench:rounds [-- --json] [-- --quick]
 *
 * Each configuration runs in its own child process so RSS figures do not mix.
 * JSON (last stdout line): {"rows": [{transport, learners, client_fraction, overhead_s, first_round_s, trainer_rss_mb, learner_rss_mb}]}
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { Writable } from 'node:stream';
import { resolveConfig } from '@oiafed/config';
import { launchLocal, runSerial, type RoundRecord } from '@oiafed/core';
import { sourceNodeFlags } from '../../tests/source-node.js';
import { COUNT, numberFlag, readFlags } from '../args.js';

const flags = readFlags(
  process.argv.slice(2),
  {
    json: { type: 'boolean', default: false },
    quick: { type: 'boolean', default: false },
    /** Rows to run, as transport:learners (e.g. grpc:10,memory:100). */
    only: { type: 'string' },
    /** Internal: the child process that measures the memory of n learners. */
    'child-memory': { type: 'string' },
  },
  'bench/rounds/run.ts',
);
const { json, quick } = flags;
const ROUNDS = 4;
const root = resolve(import.meta.dirname, '../..');

interface Row {
  transport: 'memory' | 'grpc';
  learners: number;
  client_fraction: number;
  overhead_s: number;
  first_round_s: number;
  trainer_rss_mb: number;
  learner_rss_mb: number;
}

/** Sampling keeps about 100 learners per round at most, as a large federation would. */
function fraction(n: number): number {
  return n > 100 ? 100 / n : 1;
}

function trainerConfig(n: number, runDir: string, grpc: boolean): Record<string, unknown> {
  return {
    exp_name: `bench-rounds-${n}`,
    node_id: 'trainer',
    role: 'trainer',
    seed: 1,
    ...(grpc ? { listen: { host: '127.0.0.1', port: 0 } } : {}),
    transport: { mode: grpc ? 'grpc' : 'memory' },
    trainer: {
      args: {
        max_rounds: ROUNDS,
        local_epochs: 1,
        client_fraction: fraction(n),
        min_clients: 1,
        min_available_clients: n,
        eval_every: 0,
        round_timeout: 300,
        registration_timeout: 600,
      },
    },
    learner: { args: { batch_size: 32, lr: 0.05, device: 'cpu' } },
    aggregator: { type: 'fedavg' },
    model: { type: 'mlp', args: { hidden: [16], num_classes: 10 } },
    datasets: [{ type: 'synthetic', args: { alpha: 0, beta: 0, samples_per_client: 64 }, partition: { num_partitions: n } }],
    heartbeat: { enabled: true, interval: 5, timeout: 60 },
    tracker: { backends: [{ type: 'console', level: 'error' }], run_dir: runDir },
  };
}

function summarise(rounds: RoundRecord[]): { overhead: number } {
  // Round 1 includes model building and JIT warm-up on every learner; later rounds are steady state.
  const steady = rounds.slice(1);
  const overhead = steady.reduce((s, r) => s + (r.duration_s - r.slowest_train_s), 0) / steady.length;
  return { overhead };
}

function rssOf(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : 0;
  } catch {
    return 0;
  }
}

/** Child processes of `parent`: pid -> command line. */
function children(parent: number): Map<number, string> {
  const out = new Map<number, string>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === parent) out.set(Number(entry), readFileSync(`/proc/${entry}/cmdline`, 'utf8').replace(/\0/g, ' '));
    } catch {
      // the process ended while we looked
    }
  }
  return out;
}

/** Child mode: one in-process federation of n learners; prints its row as JSON. */
async function memoryChild(n: number): Promise<void> {
  const runDir = mkdtempSync(join(tmpdir(), 'oiafed-bench-rounds-'));
  const config = resolveConfig(trainerConfig(n, runDir, false), { file: 'bench-rounds.yaml', env: {} });
  const rssBefore = process.memoryUsage.rss() / 2 ** 20;
  let peak = rssBefore;
  const timer = setInterval(() => (peak = Math.max(peak, process.memoryUsage.rss() / 2 ** 20)), 50);
  const t0 = performance.now();
  let firstRound = 0;
  const summary = await runSerial(config, {
    numClients: n,
    report: (line) => {
      if (firstRound === 0 && line.startsWith('round ')) firstRound = (performance.now() - t0) / 1000;
    },
  });
  clearInterval(timer);
  peak = Math.max(peak, process.memoryUsage.rss() / 2 ** 20);
  const { overhead } = summarise(summary.rounds);
  const row: Row = {
    transport: 'memory',
    learners: n,
    client_fraction: +fraction(n).toFixed(3),
    overhead_s: +overhead.toFixed(4),
    first_round_s: +firstRound.toFixed(2),
    trainer_rss_mb: Math.round(peak),
    // Everything above the process's baseline, shared model and backend included, per learner.
    learner_rss_mb: +((peak - rssBefore) / n).toFixed(3),
  };
  process.stdout.write(`${JSON.stringify(row)}\n`);
}

async function runMemory(n: number): Promise<Row> {
  const child = spawn(process.execPath, [...sourceNodeFlags(), join(root, 'bench/rounds/run.ts'), '--child-memory', String(n)], {
    cwd: root,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  const code = await new Promise<number | null>((r) => child.on('exit', r));
  const last = out.trim().split('\n').at(-1) ?? '';
  if (code !== 0 || !last.startsWith('{')) throw new Error(`in-process run with ${n} learners failed (exit ${code}): ${out.slice(-500)}`);
  return JSON.parse(last) as Row;
}

async function runGrpc(n: number): Promise<Row> {
  const dir = mkdtempSync(join(tmpdir(), 'oiafed-bench-rounds-grpc-'));
  const file = join(dir, 'trainer.yaml');
  writeFileSync(file, JSON.stringify(trainerConfig(n, join(dir, 'run'), true)));
  let trainerPeak = 0;
  const learnerPeak = new Map<number, number>();
  const timer = setInterval(() => {
    for (const [pid, cmd] of children(process.pid)) {
      const rss = rssOf(pid);
      if (cmd.includes('trainer.yaml')) trainerPeak = Math.max(trainerPeak, rss);
      else learnerPeak.set(pid, Math.max(learnerPeak.get(pid) ?? 0, rss));
    }
  }, 500);
  const t0 = performance.now();
  let firstRound = 0;
  const stdout = new Writable({
    write(chunk: Buffer, _enc, cb) {
      if (firstRound === 0 && /round\s+1\//.test(chunk.toString())) firstRound = (performance.now() - t0) / 1000;
      cb();
    },
  });
  const result = await launchLocal({
    trainerConfig: file,
    numClients: n,
    nodeCommand: nodeCommand(),
    runDir: join(dir, 'launch'),
    stdout,
    stderr: new Writable({ write: (_c, _e, cb) => cb() }),
    env: { ...process.env, OIAFED_LOG_FORMAT: 'text' },
    learnerGraceMs: 20_000,
  });
  clearInterval(timer);
  if (result.exitCode !== 0) throw new Error(`gRPC run with ${n} learners: trainer exited ${result.exitCode} (logs in ${dir})`);
  const history = findHistory(dir);
  const rounds = readFileSync(history, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as RoundRecord);
  const { overhead } = summarise(rounds);
  const peaks = [...learnerPeak.values()].filter((v) => v > 0);
  return {
    transport: 'grpc',
    learners: n,
    client_fraction: +fraction(n).toFixed(3),
    overhead_s: +overhead.toFixed(4),
    first_round_s: +firstRound.toFixed(2),
    trainer_rss_mb: Math.round(trainerPeak),
    learner_rss_mb: peaks.length ? Math.round(peaks.reduce((a, b) => a + b, 0) / peaks.length) : 0,
  };
}

function findHistory(dir: string): string {
  for (const entry of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile() && entry.name === 'history.jsonl') return join(entry.parentPath, entry.name);
  }
  throw new Error(`no history.jsonl under ${dir}`);
}

if (flags['child-memory'] !== undefined) {
  await memoryChild(numberFlag('--child-memory', flags['child-memory'], COUNT));
  process.exit(0);
}

const rows: Row[] = [];
const plan: Array<['memory' | 'grpc', number]> = quick
  ? [['memory', 10], ['memory', 100], ['grpc', 10]]
  : [['memory', 10], ['memory', 100], ['memory', 1000], ['grpc', 10], ['grpc', 50], ['grpc', 100]];
const { only } = flags;
for (const [transport, n] of plan) {
  if (only && !only.split(',').includes(`${transport}:${n}`)) continue;
  const row = transport === 'memory' ? await runMemory(n) : await runGrpc(n);
  rows.push(row);
  // Progress on stderr so a long run that is cut short still leaves its finished rows.
  if (json) process.stderr.write(`${JSON.stringify(row)}\n`);
  if (!json) {
    process.stdout.write(
      `${transport.padEnd(6)} ${String(n).padStart(5)} learners (fraction ${row.client_fraction})  overhead ${row.overhead_s.toFixed(3)} s/round  ` +
        `first round done ${row.first_round_s.toFixed(1)} s  trainer RSS ${row.trainer_rss_mb} MB  per learner ${row.learner_rss_mb} MB\n`,
    );
  }
}
const machine = `${cpus().length} cores, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, load ${loadavg().map((l) => l.toFixed(1)).join(' ')}`;
if (json) {
  process.stdout.write(`machine: ${machine}\n| transport | learners | client_fraction | overhead s/round | first round done s | trainer RSS MB | per-learner RSS MB |\n|---|---|---|---|---|---|---|\n`);
  for (const r of rows) {
    process.stdout.write(`| ${r.transport} | ${r.learners} | ${r.client_fraction} | ${r.overhead_s} | ${r.first_round_s} | ${r.trainer_rss_mb} | ${r.learner_rss_mb} |\n`);
  }
  process.stdout.write(`${JSON.stringify({ machine, rows })}\n`);
} else {
  process.stdout.write(`machine: ${machine}\n`);
}

/**
 * The built CLI when `npm run build` has run (what users run: no TypeScript compilation per
 * process, less memory per learner), else the sources through tsx.
 */
function nodeCommand(): string[] {
  const built = join(root, 'apps/cli/dist/main.js');
  if (existsSync(built) && !process.env.OIAFED_BENCH_FROM_SOURCE) return [process.execPath, built];
  return [process.execPath, ...sourceNodeFlags(), join(root, 'apps/cli/src/main.ts')];
}
