/**
 * Helpers for observability tests: CLI child processes started from source, a Prometheus text
 * parser, and HTTP polling of /metrics, /health and /ready on loopback.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { get } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { sourceNodeFlags } from '../../source-node.js';

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');

/** Starts `oiafed <args>` from source (tsx + the @oiafed/source condition). */
export function startCli(args: string[], env: NodeJS.ProcessEnv = {}): ChildProcess {
  return spawn(
    process.execPath,
    [...sourceNodeFlags(), join(repoRoot, 'apps/cli/src/main.ts'), ...args],
    { cwd: repoRoot, env: { ...process.env, OIAFED_BACKEND: 'cpu', OIAFED_LOG_FORMAT: 'text', ...env }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
}

export interface Output {
  stdout: string;
  stderr: string;
}

/** Accumulates a child's output as it arrives (readable while the child still runs). */
export function capture(child: ChildProcess): Output {
  const out: Output = { stdout: '', stderr: '' };
  child.stdout?.on('data', (chunk: Buffer) => (out.stdout += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (out.stderr += chunk.toString()));
  return out;
}

/** Resolves with the exit code once the child has closed; kills it past `timeoutMs`. */
export function exited(child: ChildProcess, out: Output, timeoutMs = 60_000): Promise<number | null> {
  if (child.exitCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolveExit, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`process timed out after ${timeoutMs} ms\nstdout:\n${out.stdout}\nstderr:\n${out.stderr.slice(-4000)}`));
    }, timeoutMs);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolveExit(code);
    });
  });
}

export function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), `oiafed-${prefix}-`));
}

export function writeFile(dir: string, name: string, text: string): string {
  const file = join(dir, name);
  writeFileSync(file, text);
  return file;
}

export interface HttpAnswer {
  status: number;
  contentType: string;
  body: string;
}

/** GET on 127.0.0.1; undefined when nothing listens there (yet). */
export function httpGet(port: number, path: string): Promise<HttpAnswer | undefined> {
  return new Promise((resolveAnswer) => {
    const request = get({ host: '127.0.0.1', port, path, agent: false, timeout: 5_000 }, (response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (body += chunk));
      response.on('end', () =>
        resolveAnswer({ status: response.statusCode ?? 0, contentType: String(response.headers['content-type'] ?? ''), body }),
      );
      response.on('error', () => resolveAnswer(undefined));
    });
    request.on('error', () => resolveAnswer(undefined));
    request.on('timeout', () => request.destroy());
  });
}

/** Polls `probe` every `everyMs` until it returns a value; fails with `what` after `timeoutMs`. */
export async function waitFor<T>(probe: () => Promise<T | undefined> | T | undefined, what: string, timeoutMs = 30_000, everyMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Parses Prometheus text exposition 0.0.4 (the subset prom-client writes). */
export function parseMetrics(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (!match) throw new Error(`unparseable metrics line: ${line}`);
    const labels: Record<string, string> = {};
    for (const pair of (match[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[pair[1]!] = pair[2]!;
    samples.push({ name: match[1]!, labels, value: Number(match[3]) });
  }
  return samples;
}

/** The value of the first sample named `name` whose labels include `labels`; undefined when absent. */
export function valueOf(samples: Sample[], name: string, labels: Record<string, string> = {}): number | undefined {
  return samples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value;
}

/** Scrapes /metrics once; undefined when the server is not up. */
export async function scrape(port: number): Promise<Sample[] | undefined> {
  const answer = await httpGet(port, '/metrics');
  return answer && answer.status === 200 ? parseMetrics(answer.body) : undefined;
}

/** Throws with the child's stderr when it has already exited (so a wait fails fast and says why). */
export function assertRunning(child: ChildProcess, out: Output, name: string): void {
  if (child.exitCode !== null || child.signalCode !== null) {
    throw new Error(`${name} exited early (code ${child.exitCode}, signal ${child.signalCode})\nstderr:\n${out.stderr.slice(-4000)}`);
  }
}
