#!/usr/bin/env node
import { fileURLToPath } from 'node:url';
import { ConfigError } from '@oiafed/config';
import { UsageError, runCommand, type CommandIo } from './commands.js';

/**
 * Process wrapper shared by the three executables: signals become an AbortSignal (a second
 * Ctrl-C exits at once), config and usage errors exit 2 without a stack trace.
 */
export async function main(argv: string[], options: { expectRole?: 'trainer' | 'learner' } = {}): Promise<void> {
  const controller = new AbortController();
  let signals = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    signals += 1;
    if (signals > 1) process.exit(130);
    process.stderr.write(`\n${signal} received: finishing the current step, then stopping (again to force)\n`);
    controller.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    const io = { stdout: process.stdout, stderr: process.stderr, env: process.env, signal: controller.signal, selfCommand: selfCommand() };
    process.exitCode = await runWithExitCode(argv, io, options);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

/**
 * Runs one command and turns a failure into its exit status: config and usage errors print their
 * message and give 2, anything else prints `error: ...` (the stack with OIAFED_DEBUG) and gives 1.
 */
export async function runWithExitCode(argv: string[], io: CommandIo, options: { expectRole?: 'trainer' | 'learner' } = {}): Promise<number> {
  try {
    return await runCommand(argv, io, options);
  } catch (error) {
    if (error instanceof ConfigError || error instanceof UsageError) {
      io.stderr.write(`${error.message}\n`);
      return 2;
    }
    const message = io.env.OIAFED_DEBUG ? (error as Error).stack : (error as Error).message;
    io.stderr.write(`error: ${message ?? String(error)}\n`);
    return 1;
  }
}

/**
 * `oiafed-trainer` / `oiafed-learner`: `oiafed run` refusing configs of another role; `--help`
 * shows run's help and `--version` the version.
 */
export async function mainForRole(role: 'trainer' | 'learner', args: string[]): Promise<void> {
  const first = args[0];
  let argv = ['run', ...args];
  if (first === '--version' || first === '-V') argv = [first];
  else if (first === '--help' || first === '-h') argv = ['run', '--help'];
  await main(argv, { expectRole: role });
}

/** How to start this CLI again in a child process (same node flags, e.g. tsx's loader in development). */
function selfCommand(): string[] {
  const script = fileURLToPath(new URL(import.meta.url.endsWith('.ts') ? './main.ts' : './main.js', import.meta.url));
  return [process.execPath, ...process.execArgv, script];
}

const invokedDirectly = process.argv[1] && fileURLToPath(import.meta.url) === (await realpath(process.argv[1]));
if (invokedDirectly) await main(process.argv.slice(2));

async function realpath(path: string): Promise<string> {
  const { realpathSync } = await import('node:fs');
  try {
    return realpathSync(path);
  } catch {
    return path;
  }
}
