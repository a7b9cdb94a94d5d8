/**
 * Issue 12 item 16: a trainer that got SIGTERM on an overloaded machine spun at 100% CPU and
 * never exited. Here SIGTERM or SIGINT lands at a random moment (seeded) in the life of a small
 * federation in each run mode (serial, launch, trainer + learners as separate processes) while
 * two busy-loop processes keep both cores saturated, and every process of every trial must exit
 * within 10 s of the signal with the documented status (0: stopped by request).
 *
 * The issue asks for >= 100 trials; each trial starts 1-4 node processes, so the default here is
 * what fits CI's time on 2 cores: OIAFED_STOP_TRIALS (default 18, six per mode) and OIAFED_STOP_CONCURRENCY
 * (default 3). `OIAFED_STOP_TRIALS=100 npx vitest run --project faults test/stop-stress.test.ts`
 * runs the full count (docs/reliability.md records the last full run).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freeLoopbackPort } from '@oiafed/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { cliCommand, seededRandom, sleep, startProc, summaryLine, tempDir, type Proc } from './helpers.js';

const TRIALS = Number(process.env.OIAFED_STOP_TRIALS ?? 18);
const CONCURRENCY = Number(process.env.OIAFED_STOP_CONCURRENCY ?? 3);
const SEED = Number(process.env.OIAFED_STOP_SEED ?? 20261129);
const EXIT_LIMIT_MS = 10_000;
const MAX_DELAY_MS = 2_000;
/** A node process loads tsx and tfjs before it prints anything: slow on a saturated machine. */
const STARTUP_LIMIT_MS = 90_000;

type Mode = 'serial' | 'launch' | 'process';
/** OIAFED_STOP_MODES=serial,launch narrows the modes (to replay one); OIAFED_STOP_LOAD sets the busy loops. */
const MODES = (process.env.OIAFED_STOP_MODES ?? 'serial,launch,process').split(',') as Mode[];
const LOAD_PROCESSES = Number(process.env.OIAFED_STOP_LOAD ?? 2);

interface Trial {
  index: number;
  mode: Mode;
  signal: 'SIGTERM' | 'SIGINT';
  delayMs: number;
}

interface Outcome extends Trial {
  exits: Array<{ name: string; code: number | null; signal: NodeJS.Signals | null; ms: number }>;
  problem?: string;
}

/** Seeded xorshift: a failing trial can be replayed with OIAFED_STOP_SEED. */
function plan(seed: number, count: number): Trial[] {
  const next = seededRandom(seed);
  return Array.from({ length: count }, (_, index) => ({
    index,
    mode: MODES[index % MODES.length]!,
    signal: next() < 0.5 ? 'SIGTERM' : 'SIGINT',
    delayMs: Math.round(next() * MAX_DELAY_MS),
  }));
}

/** The reported setup: mlp on synthetic data, metrics and health on, many short rounds. */
function baseConfig(dir: string): Record<string, unknown> {
  return {
    exp_name: 'stop-stress',
    seed: 3,
    transport: { mode: 'grpc', grpc: { timeout: 5 } },
    heartbeat: { enabled: true, interval: 0.5, timeout: 5 },
    retry: { max_attempts: 40, backoff_strategy: 'exponential', initial_delay: 0.05, max_delay: 0.5 },
    model: { type: 'mlp', args: { hidden: [8] } },
    learner: { args: { batch_size: 32, lr: 0.05, device: 'cpu' } },
    metrics: { enabled: true, port: 0 },
    health: { enabled: true, port: 0 },
    tracker: { backends: [{ type: 'console', level: 'info' }], run_dir: join(dir, 'run') },
    checkpoint: { dir: join(dir, 'checkpoints') },
  };
}

const dataset = (partition: number) => ({
  type: 'synthetic',
  args: { alpha: 0, beta: 0, samples_per_client: 40 },
  partition: { num_partitions: 2, partition_id: partition },
});

function writeYaml(dir: string, name: string, config: Record<string, unknown>): string {
  const file = join(dir, name);
  writeFileSync(file, stringify(config));
  return file;
}

/** Starts the processes of one trial; the first is the one the mode's user would signal. */
async function startTrial(trial: Trial, dir: string): Promise<Proc[]> {
  const port = await freeLoopbackPort();
  const base = baseConfig(dir);
  const trainer = writeYaml(dir, 'trainer.yaml', {
    ...base,
    node_id: 'trainer',
    role: 'trainer',
    listen: { host: '127.0.0.1', port },
    trainer: { args: { max_rounds: 500, min_clients: 2, round_timeout: 10, registration_timeout: 60, checkpoint_every: 0 } },
    aggregator: { type: 'fedavg' },
    datasets: [dataset(0)],
  });
  const [node, args] = cliCommand();
  const env = { ...process.env, OIAFED_LOG_FORMAT: 'text', OIAFED_BACKEND: 'cpu', NO_COLOR: '1' };
  const start = (name: string, cliArgs: string[]) => startProc(`trial${trial.index}-${name}`, node, [...args, ...cliArgs], { cwd: dir, env });
  if (trial.mode === 'serial') return [start('serial', ['run', '--mode', 'serial', '--num-clients', '2', '--config', trainer])];
  if (trial.mode === 'launch') return [start('launch', ['launch', '--num-clients', '2', '--config', trainer, '--run-dir', join(dir, 'run')])];
  const learners = [0, 1].map((i) =>
    writeYaml(dir, `learner_${i}.yaml`, {
      ...base,
      node_id: `learner_${i}`,
      role: 'learner',
      connect_to: [`trainer@127.0.0.1:${port}`],
      datasets: [{ ...dataset(i), split: 'train' }],
    }),
  );
  return [start('trainer', ['run', '--config', trainer]), ...learners.map((file, i) => start(`learner_${i}`, ['run', '--config', file]))];
}

/** Whether the process has printed anything: by then the CLI has its signal handlers. */
const hasSpoken = (proc: Proc) => proc.stdout.length + proc.stderr.length > 0 || !proc.alive;

async function runTrial(trial: Trial): Promise<Outcome> {
  const dir = tempDir(`stop-${trial.index}`);
  try {
    return await signalTrial(trial, await startTrial(trial, dir));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function signalTrial(trial: Trial, procs: Proc[]): Promise<Outcome> {
  const outcome: Outcome = { ...trial, exits: [] };
  const deadline = Date.now() + STARTUP_LIMIT_MS;
  while (!procs.every(hasSpoken) && Date.now() < deadline) await sleep(20);
  if (!procs.every(hasSpoken)) {
    for (const proc of procs) proc.kill('SIGKILL');
    await Promise.all(procs.map((p) => p.exited));
    return { ...outcome, problem: `no output within ${STARTUP_LIMIT_MS} ms` };
  }
  await sleep(trial.delayMs);
  // Kubernetes and docker signal every container; launch gets the signal once, as from a terminal.
  const signalledAt = Date.now();
  for (const proc of procs) proc.kill(trial.signal);
  const timers: NodeJS.Timeout[] = [];
  await Promise.all(
    procs.map(async (proc) => {
      const timer = setTimeout(() => proc.kill('SIGKILL'), EXIT_LIMIT_MS + 2_000);
      timers.push(timer);
      const exit = await proc.exited;
      outcome.exits.push({ name: proc.name, ...exit, ms: Date.now() - signalledAt });
    }),
  );
  timers.forEach(clearTimeout);
  const bad = outcome.exits.filter((e) => e.code !== 0 || e.ms > EXIT_LIMIT_MS);
  if (bad.length > 0) {
    const proc = procs.find((p) => p.name === bad[0]!.name)!;
    outcome.problem = `${JSON.stringify(bad)}\n${proc.tail(1500)}`;
  }
  return outcome;
}

const loadGenerators: ChildProcess[] = [];

beforeAll(() => {
  // Two busy loops keep both cores of a CI runner saturated for the whole test.
  for (let i = 0; i < LOAD_PROCESSES; i++) loadGenerators.push(spawn(process.execPath, ['-e', 'for (;;) {}'], { stdio: 'ignore' }));
});

afterAll(() => {
  for (const child of loadGenerators) child.kill('SIGKILL');
});

describe('stop under load', () => {
  it(`${TRIALS} trials of SIGTERM/SIGINT at random moments across serial, launch and process modes: every process exits 0 within 10 s`, async () => {
    const trials = plan(SEED, TRIALS);
    const outcomes: Outcome[] = [];
    let next = 0;
    const worker = async () => {
      while (next < trials.length) outcomes.push(await runTrial(trials[next++]!));
    };
    await Promise.all(Array.from({ length: Math.max(1, CONCURRENCY) }, worker));
    const failures = outcomes.filter((o) => o.problem);
    const slowest = Math.max(0, ...outcomes.flatMap((o) => o.exits.map((e) => e.ms)));
    summaryLine('stop-stress', {
      trials: outcomes.length,
      seed: SEED,
      failures: failures.length,
      slowest_exit_ms: slowest,
      by_mode: MODES.map((m) => `${m}:${outcomes.filter((o) => o.mode === m).length}`).join(','),
    });
    expect(failures.map((f) => `trial ${f.index} (${f.mode}, ${f.signal} after ${f.delayMs} ms): ${f.problem}`)).toEqual([]);
    expect(outcomes).toHaveLength(TRIALS);
  }, 30 * 60_000);
});
