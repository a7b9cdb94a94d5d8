import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Writable } from 'node:stream';
import { afterAll } from 'vitest';
import { runWithExitCode } from '@oiafed/cli';
import { sourceNodeFlags } from '../../../tests/source-node.js';

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');

/** Starts the CLI from source (tsx + the @oiafed/source condition): no build step needed. */
export function cliArgv(): string[] {
  return [process.execPath, ...sourceNodeFlags(), join(repoRoot, 'apps/cli/src/main.ts')];
}

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the CLI with piped stdio (not a terminal) in `cwd` (default: a fresh temp dir). */
export function runCli(args: string[], options: { env?: NodeJS.ProcessEnv; cwd?: string; timeoutMs?: number } = {}): Promise<CliResult> {
  const [command, ...prefix] = cliArgv();
  const child = spawn(command!, [...prefix, ...args], {
    cwd: options.cwd ?? tempDir('cwd'),
    env: { ...process.env, NO_COLOR: '', FORCE_COLOR: '', ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  return new Promise((resolveResult, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`oiafed ${args.join(' ')} timed out\nstdout:\n${stdout}\nstderr:\n${stderr.slice(-4000)}`));
    }, options.timeoutMs ?? 240_000);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolveResult({ code, stdout, stderr });
    });
  });
}

function collector(): { stream: Writable; text: () => string } {
  let text = '';
  const stream = new Writable({
    write(chunk, _enc, cb) {
      text += String(chunk);
      cb();
    },
  });
  return { stream, text: () => text };
}

/**
 * Runs one command in this process, exactly as `main` does minus the signal handlers (same exit
 * status mapping): cheaper than a child for the checks that do not need a process of their own.
 */
export async function runInProcess(args: string[], env: NodeJS.ProcessEnv = {}): Promise<CliResult> {
  const stdout = collector();
  const stderr = collector();
  const io = { stdout: stdout.stream, stderr: stderr.stream, env: { ...env }, signal: new AbortController().signal, selfCommand: cliArgv() };
  const code = await runWithExitCode(args, io);
  return { code, stdout: stdout.text(), stderr: stderr.text() };
}

function shellQuote(word: string): string {
  return /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replaceAll("'", `'\\''`)}'`;
}

const hasScript = spawnSync('sh', ['-c', 'command -v script'], { encoding: 'utf8' }).status === 0;

/**
 * Runs the CLI on a real pseudo-terminal (util-linux `script`, else Python's pty module), so
 * stdout and stderr are TTYs as at an operator's terminal. Returns everything the terminal got.
 */
export function runCliOnPty(args: string[], options: { env?: NodeJS.ProcessEnv; cwd?: string } = {}): Promise<CliResult> {
  const argv = [...cliArgv(), ...args];
  const wrapper = hasScript
    ? ['script', '-qfec', argv.map(shellQuote).join(' '), '/dev/null']
    : ['python3', '-c', 'import os, pty, sys; sys.exit(os.waitstatus_to_exitcode(pty.spawn(sys.argv[1:])))', ...argv];
  const child = spawn(wrapper[0]!, wrapper.slice(1), {
    cwd: options.cwd ?? tempDir('cwd'),
    env: { ...process.env, NO_COLOR: '', FORCE_COLOR: '', TERM: 'xterm', ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  return new Promise((resolveResult) => child.once('close', (code) => resolveResult({ code, stdout, stderr })));
}

/**
 * What a terminal shows for `raw`, line by line: `\r` returns to column 0, ESC[K erases to the
 * end of the line, other escape sequences (colors) take no room, other characters overwrite.
 */
export function renderTerminal(raw: string): string[] {
  return raw.split('\n').map((segment) => {
    const cells: string[] = [];
    let col = 0;
    for (let i = 0; i < segment.length; i++) {
      const ch = segment[i]!;
      if (ch === '\r') col = 0;
      else if (ch === '\x1b' && segment[i + 1] === '[') {
        const end = segment.slice(i + 2).search(/[A-Za-z]/);
        if (segment[i + 2 + end] === 'K') cells.length = col;
        i += 2 + end;
      } else cells[col++] = ch;
    }
    return Array.from(cells, (c) => c ?? ' ').join('').trimEnd();
  });
}

const dirs: string[] = [];
afterAll(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

export function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), `oiafed-cli-${prefix}-`));
  dirs.push(dir);
  return dir;
}

export function writeFile(dir: string, name: string, text: string): string {
  const file = join(dir, name);
  writeFileSync(file, text);
  return file;
}

/** A tiny synthetic federation (MLP, 2 learners' worth of data) that finishes in about a second. */
export function tinyTrainerYaml(dir: string, extra = ''): string {
  return writeFile(
    dir,
    'trainer.yaml',
    `exp_name: tiny
node_id: trainer
role: trainer
seed: 42
listen: {host: 127.0.0.1, port: 0}
transport: {mode: grpc}
trainer: {type: default, args: {max_rounds: 5, min_clients: 2, round_timeout: 120, registration_timeout: 120}}
learner: {type: default, args: {batch_size: 32, lr: 0.05, device: cpu}}
aggregator: {type: fedavg}
model: {type: mlp, args: {hidden: [16], num_classes: 10}}
datasets:
  - type: synthetic
    args: {alpha: 1, beta: 1, samples_per_client: 120}
    partition: {num_partitions: 2}
retry: {max_attempts: 40, backoff_strategy: constant, initial_delay: 0.25, max_delay: 0.25}
tracker: {run_dir: ${join(dir, 'run')}, backends: [{type: console, level: info}]}
checkpoint: {dir: ${join(dir, 'checkpoints')}}
${extra}`,
  );
}
