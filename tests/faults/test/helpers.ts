import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { sourceNodeFlags } from '../../source-node.js';

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');

/** node + tsx + the source condition: the CLI runs from source, no build step needed. */
export function cliCommand(): [string, string[]] {
  return [process.execPath, [...sourceNodeFlags(), join(repoRoot, 'apps/cli/src/main.ts')]];
}

export function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), `oiafed-faults-${prefix}-`));
}

/** A child process whose output is kept, with helpers to wait for lines in it. */
export class Proc {
  stdout = '';
  stderr = '';
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  exit?: { code: number | null; signal: NodeJS.Signals | null };
  private waiters: Array<() => void> = [];

  constructor(
    readonly name: string,
    readonly child: ChildProcess,
  ) {
    const poke = () => {
      for (const w of [...this.waiters]) w();
    };
    child.stdout?.on('data', (chunk: Buffer) => {
      this.stdout += chunk.toString();
      poke();
    });
    child.stderr?.on('data', (chunk: Buffer) => {
      this.stderr += chunk.toString();
      poke();
    });
    this.exited = new Promise((resolveExit) =>
      child.once('close', (code, signal) => {
        this.exit = { code, signal };
        poke();
        resolveExit({ code, signal });
      }),
    );
  }

  get pid(): number {
    return this.child.pid!;
  }

  get alive(): boolean {
    return this.exit === undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Resolves with the match once `pattern` appears in stdout+stderr after `from` characters of each. */
  waitFor(pattern: RegExp, timeoutMs: number, where: 'stdout' | 'stderr' | 'any' = 'any'): Promise<RegExpMatchArray> {
    return new Promise((resolveMatch, reject) => {
      const check = () => {
        const text = where === 'stdout' ? this.stdout : where === 'stderr' ? this.stderr : `${this.stdout}\n${this.stderr}`;
        const match = text.match(pattern);
        if (match) return finish(() => resolveMatch(match));
        if (this.exit) return finish(() => reject(new Error(`${this.name} exited (${JSON.stringify(this.exit)}) before ${pattern}\n${this.tail()}`)));
      };
      const timer = setTimeout(() => finish(() => reject(new Error(`${this.name}: no ${pattern} within ${timeoutMs} ms\n${this.tail()}`))), timeoutMs);
      const finish = (fn: () => void) => {
        clearTimeout(timer);
        this.waiters = this.waiters.filter((w) => w !== check);
        fn();
      };
      this.waiters.push(check);
      check();
    });
  }

  tail(chars = 3000): string {
    return `--- ${this.name} stdout:\n${this.stdout.slice(-chars)}\n--- ${this.name} stderr:\n${this.stderr.slice(-chars)}`;
  }

  kill(signal: NodeJS.Signals = 'SIGKILL'): void {
    if (this.alive) this.child.kill(signal);
  }
}

const running = new Set<Proc>();

export function startProc(name: string, command: string, args: string[], options: SpawnOptions = {}): Proc {
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], ...options });
  const proc = new Proc(name, child);
  running.add(proc);
  void proc.exited.then(() => running.delete(proc));
  return proc;
}

/** SIGKILLs every process these helpers started that still runs (afterEach). */
export async function killAll(): Promise<void> {
  const left = [...running];
  for (const proc of left) proc.kill('SIGKILL');
  await Promise.all(left.map((p) => p.exited));
}

/** Parsed trainer round line: `round  3/5  learners 2/3  accuracy  71.25%  loss 0.8123  1.20s  failed=learner_1`. */
export interface RoundLine {
  round: number;
  participants: number;
  selected: number;
  accuracy?: number;
  seconds: number;
  failed: string[];
}

export function roundLines(stdout: string): RoundLine[] {
  return [...stdout.matchAll(/^round\s+(\d+)\/\d+\s+learners (\d+)\/(\d+)\s+accuracy\s+([\d.]+%|-)\s.*?\s([\d.]+)s(?:\s+failed=(\S+))?$/gm)].map((m) => ({
    round: Number(m[1]),
    participants: Number(m[2]),
    selected: Number(m[3]),
    accuracy: m[4] === '-' ? undefined : Number(m[4]!.slice(0, -1)) / 100,
    seconds: Number(m[5]),
    failed: m[6] ? m[6].split(',') : [],
  }));
}

export function finalAccuracy(stdout: string): number | undefined {
  const m = stdout.match(/^done: .*final accuracy ([\d.]+)%/m);
  return m ? Number(m[1]) / 100 : undefined;
}

export interface FederationOptions {
  numLearners: number;
  rounds: number;
  minClients: number;
  /** Trainer address as learners dial it (defaults to 127.0.0.1). */
  trainerHost?: string;
  /** Host the trainer listens on (defaults to trainerHost). */
  listenHost?: string;
  port: number;
  roundTimeoutS?: number;
  registrationTimeoutS?: number;
  checkpointEvery?: number;
  localEpochs?: number;
  heartbeat?: { interval: number; timeout: number };
  /** Extra top-level keys merged into every node's config. */
  extra?: Record<string, unknown>;
}

/**
 * Config files of a small synthetic federation (mlp [16], 200 samples per learner) with short
 * heartbeats and fast retries, so faults are detected and healed in about a second.
 */
export class Federation {
  readonly dir: string;
  readonly trainerConfig: string;
  readonly learnerConfigs: string[];

  constructor(
    prefix: string,
    readonly o: FederationOptions,
  ) {
    this.dir = tempDir(prefix);
    const host = o.trainerHost ?? '127.0.0.1';
    const heartbeat = { enabled: true, ...(o.heartbeat ?? { interval: 0.3, timeout: 1.5 }) };
    const common = {
      exp_name: 'faults',
      seed: 11,
      transport: { mode: 'grpc', grpc: { timeout: 5 } },
      heartbeat,
      retry: { max_attempts: 200, backoff_strategy: 'exponential', initial_delay: 0.1, max_delay: 0.5 },
      model: { type: 'mlp', args: { hidden: [16] } },
      learner: { type: 'default', args: { batch_size: 32, lr: 0.05, momentum: 0.5, device: 'cpu' } },
      tracker: { backends: [{ type: 'console', level: 'info' }], run_dir: join(this.dir, 'run') },
      checkpoint: { dir: join(this.dir, 'checkpoints') },
      ...(o.extra ?? {}),
    };
    const dataset = (partition: number) => ({
      type: 'synthetic',
      args: { alpha: 0, beta: 0, samples_per_client: 200 },
      partition: { num_partitions: o.numLearners, partition_id: partition },
    });
    this.trainerConfig = join(this.dir, 'trainer.yaml');
    writeFileSync(
      this.trainerConfig,
      stringify({
        ...common,
        node_id: 'trainer',
        role: 'trainer',
        listen: { host: o.listenHost ?? host, port: o.port },
        trainer: {
          type: 'default',
          args: {
            max_rounds: o.rounds,
            local_epochs: o.localEpochs ?? 1,
            min_clients: o.minClients,
            min_available_clients: o.numLearners,
            round_timeout: o.roundTimeoutS ?? 20,
            registration_timeout: o.registrationTimeoutS ?? 150,
            checkpoint_every: o.checkpointEvery ?? 0,
          },
        },
        aggregator: { type: 'fedavg' },
        datasets: [dataset(0)],
      }),
    );
    this.learnerConfigs = Array.from({ length: o.numLearners }, (_, i) => {
      const file = join(this.dir, `learner_${i}.yaml`);
      writeFileSync(
        file,
        stringify({
          ...common,
          node_id: `learner_${i}`,
          role: 'learner',
          connect_to: [`trainer@${host}:${o.port}`],
          datasets: [{ ...dataset(i), split: 'train' }],
        }),
      );
      return file;
    });
  }

  /** `prefix` runs the node inside something else (e.g. `ip netns exec ns`). */
  startTrainer(extraArgs: string[] = [], prefix: string[] = []): Proc {
    return this.start('trainer', this.trainerConfig, extraArgs, prefix);
  }

  startLearner(index: number, prefix: string[] = []): Proc {
    return this.start(`learner_${index}`, this.learnerConfigs[index]!, [], prefix);
  }

  private start(name: string, config: string, extraArgs: string[], prefix: string[]): Proc {
    const [node, args] = cliCommand();
    const all = [node, ...args, 'run', '--config', config, ...extraArgs];
    const [command, ...rest] = [...prefix, ...all];
    return startProc(name, command!, rest, {
      cwd: this.dir,
      env: { ...process.env, OIAFED_LOG_FORMAT: 'text', OIAFED_BACKEND: 'cpu', NO_COLOR: '1' },
    });
  }

  cleanup(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** One greppable line per fault test, for CI logs and docs/reliability.md. */
export function summaryLine(test: string, fields: Record<string, string | number>): string {
  const line = `FAULT-SUMMARY ${test}: ${Object.entries(fields)
    .map(([k, v]) => `${k}=${v}`)
    .join(' ')}`;
  process.stdout.write(`${line}\n`);
  return line;
}

/** Seeded xorshift32 in [0, 1): a failing randomized test can be replayed from its seed. */
export function seededRandom(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 0x100000000;
  };
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Polls `probe` every 50 ms until it returns a value other than undefined/false. */
export async function waitUntil<T>(probe: () => T | undefined | false, timeoutMs: number, describe: () => string = () => ''): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms\n${describe()}`);
    await sleep(50);
  }
}

/** Unix ms of the first text-format log line matching `pattern` (its leading ISO timestamp). */
export function logTime(text: string, pattern: RegExp): number | undefined {
  const line = text.split('\n').find((l) => pattern.test(l));
  const stamp = line?.match(/^(\d{4}-\d\d-\d\dT[\d:.]+Z)/)?.[1];
  return stamp ? Date.parse(stamp) : undefined;
}

/**
 * Limit for tests that start CLI processes: each start loads tsx and tfjs (seconds of CPU), and
 * CI shares two cores between test files. Generous on purpose; the tests themselves take 20-40 s.
 */
export const PROCESS_TEST_TIMEOUT_MS = 240_000;
