import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { sourceNodeFlags } from '../../source-node.js';

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');

/** Starts the CLI from source (tsx + the @oiafed/source condition): no build step needed. */
export function cliArgv(): string[] {
  return [process.execPath, ...sourceNodeFlags(), join(repoRoot, 'apps/cli/src/main.ts')];
}

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export function startCli(args: string[], options: { env?: NodeJS.ProcessEnv; cwd?: string } = {}): ChildProcess {
  const [command, ...prefix] = cliArgv();
  return spawn(command!, [...prefix, ...args], {
    cwd: options.cwd ?? repoRoot,
    env: { ...process.env, ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

export function collect(child: ChildProcess, timeoutMs = 240_000): Promise<CliResult> {
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  return new Promise((resolveResult, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`process timed out after ${timeoutMs} ms\nstdout:\n${stdout}\nstderr:\n${stderr.slice(-4000)}`));
    }, timeoutMs);
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolveResult({ code, signal, stdout, stderr });
    });
  });
}

export function runCli(args: string[], options: { env?: NodeJS.ProcessEnv; cwd?: string; timeoutMs?: number } = {}) {
  return collect(startCli(args, options), options.timeoutMs);
}

export function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), `oiafed-${prefix}-`));
}

export function writeYaml(dir: string, name: string, text: string): string {
  const file = join(dir, name);
  writeFileSync(file, text);
  return file;
}

/** Parses the trainer's round lines: `round  3/5  learners 4/4  accuracy  71.25%  loss 0.8123  1.20s`. */
export function roundAccuracies(stdout: string): number[] {
  return [...stdout.matchAll(/^round\s+\d+\/\d+\s+learners \d+\/\d+\s+accuracy\s+([\d.]+)%/gm)].map((m) => Number(m[1]) / 100);
}

/** CIFAR-10 binary records (1 label byte + 3072 pixel bytes) whose class is visible in the pixels. */
export function writeCifarFixture(dir: string, recordsPerBatch: number): void {
  const recordSize = 1 + 3072;
  const files = ['data_batch_1.bin', 'data_batch_2.bin', 'data_batch_3.bin', 'data_batch_4.bin', 'data_batch_5.bin', 'test_batch.bin'];
  let seed = 7;
  const random = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
  for (const name of files) {
    const buffer = Buffer.alloc(recordsPerBatch * recordSize);
    for (let r = 0; r < recordsPerBatch; r++) {
      const label = r % 10;
      const offset = r * recordSize;
      buffer[offset] = label;
      for (let p = 0; p < 3072; p++) {
        const channel = Math.floor(p / 1024);
        const base = channel === label % 3 ? 40 + label * 20 : 30;
        buffer[offset + 1 + p] = Math.min(255, Math.floor(base + random() * 30));
      }
    }
    writeFileSync(join(dir, name), buffer);
  }
}
