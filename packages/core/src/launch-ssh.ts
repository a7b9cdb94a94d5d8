/**
 * `oiafed launch --hosts hosts.yaml`: the deployment guide's batch script (trainer first, then each
 * learner over ssh) as one command. Every node's output is streamed prefixed by its node id, a stop
 * request reaches every remote node, and the report says which hosts failed.
 *
 * Stopping a remote node: ssh without a pty sends no signal to the remote command when the session
 * closes. The remote side therefore runs a small POSIX sh wrapper that starts the node in its own
 * process group and watches the session's stdin: when the launcher ends that stdin (a stop
 * request), exits, or dies and the connection drops, the wrapper sends SIGTERM to the node's group
 * (the node's graceful stop) and SIGKILL 20 s later if it is still there.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { loadHostsFile, type HostEntry, type HostsFile } from '@oiafed/config';
import { running, waitForPort } from './launch.js';

export interface SshLaunchOptions {
  /** A hosts file to load, or one already loaded with loadHostsFile. */
  hosts: string | HostsFile;
  /** Variables for `${VAR}` in the hosts file and the environment of the local ssh processes. */
  env?: NodeJS.ProcessEnv;
  stdout?: NodeJS.WritableStream;
  stderr?: NodeJS.WritableStream;
  /** Aborting it stops every node (Ctrl-C). */
  signal?: AbortSignal;
  /** The ssh client (default `ssh` from PATH). */
  sshCommand?: string;
  /** How long the trainer gets to accept connections on grpc_host:grpc_port (default 120 s). */
  startTimeoutMs?: number;
  /** How long learners get to exit by themselves once the trainer is done (default 30 s). */
  learnerGraceMs?: number;
  /** How long a stopped node gets to finish before its ssh session is cut (default 30 s). */
  stopGraceMs?: number;
}

export type HostStatus = 'ok' | 'failed' | 'stopped' | 'not started';

export interface HostOutcome {
  nodeId: string;
  role: 'trainer' | 'learner';
  /** `user@host:port` as ssh was told. */
  destination: string;
  status: HostStatus;
  /** Exit status of ssh: the remote node's, or 255 when ssh itself failed. */
  exitCode: number | null;
  reason?: string;
}

export interface SshLaunchResult {
  /** 0 when every host ran to the end, 130 after a stop request, 1 when any host failed. */
  exitCode: number;
  hosts: HostOutcome[];
}

/** Quotes one word for a POSIX shell. */
export function shellQuote(word: string): string {
  return /^[A-Za-z0-9_./:=@%+,-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

const WATCH_STDIN =
  '( cat <&3 >/dev/null; kill -TERM -$pid 2>/dev/null || kill -TERM $pid 2>/dev/null; n=0; ' +
  'while kill -0 $pid 2>/dev/null; do n=$((n+1)); ' +
  '[ $n -eq 20 ] && { kill -KILL -$pid 2>/dev/null || kill -KILL $pid 2>/dev/null; }; sleep 1; done ) >/dev/null 2>&1 & w=$!';

/**
 * The one-line sh script run on the host: cd, export env, start the node (setsid: its own process
 * group, stdin from /dev/null), stop it when the session's stdin ends, exit with its status.
 */
export function remoteScript(entry: HostEntry): string {
  const env: Record<string, string> = { OIAFED_LOG_FORMAT: 'text', ...entry.env };
  const program = typeof entry.command === 'string' ? entry.command : entry.command.map(shellQuote).join(' ');
  const workdir = entry.workdir?.startsWith('~/') ? `"$HOME"/${shellQuote(entry.workdir.slice(2))}` : entry.workdir && shellQuote(entry.workdir);
  return [
    ...(workdir ? [`cd ${workdir} || exit 127`] : []),
    ...Object.entries(env).map(([key, value]) => `export ${key}=${shellQuote(value)}`),
    // Without job control sh gives `&` jobs /dev/null as stdin, so the watcher reads the session's through fd 3.
    'exec 3<&0',
    's=; command -v setsid >/dev/null 2>&1 && s=setsid',
    `$s ${program} run --config ${shellQuote(entry.config)} </dev/null 3<&- & pid=$!`,
    WATCH_STDIN,
    'exec 3<&-',
    'wait $pid; code=$?; kill $w 2>/dev/null; exit $code',
  ].join('; ');
}

/** ssh arguments that run `remoteScript(entry)` on the entry's host; the user's options come first, so they win. */
export function sshArgs(entry: HostEntry): string[] {
  const { user, port, identity_file: identity, options = [] } = entry.ssh;
  return [
    '-T',
    ...(user ? ['-l', user] : []),
    ...(port ? ['-p', String(port)] : []),
    ...(identity ? ['-i', identity, '-o', 'IdentitiesOnly=yes'] : []),
    ...options,
    // No prompt can be answered with many sessions sharing one terminal; a dead link is noticed in a minute.
    ...['-o', 'BatchMode=yes', '-o', 'ConnectTimeout=10', '-o', 'ServerAliveInterval=15', '-o', 'ServerAliveCountMax=4'],
    '--',
    entry.host,
    `sh -c ${shellQuote(remoteScript(entry))}`,
  ];
}

function destinationOf(entry: HostEntry): string {
  return `${entry.ssh.user ? `${entry.ssh.user}@` : ''}${entry.host}${entry.ssh.port ? `:${entry.ssh.port}` : ''}`;
}

interface RemoteNode {
  entry: HostEntry;
  child: ChildProcess;
  closed: Promise<number | null>;
  lastError: () => string | undefined;
  /** Ends the session's stdin (the remote wrapper stops the node); cuts the session after `graceMs`. */
  stop: (graceMs: number) => void;
  stopped: () => boolean;
  /** Set when the launcher itself gave up on the node (the trainer never listened). */
  failure?: string;
}

/** Copies each line of `input` to `output` behind `prefix`; calls `onLine` with it too. */
function prefixLines(input: NodeJS.ReadableStream, output: NodeJS.WritableStream, prefix: string, onLine?: (line: string) => void): void {
  createInterface({ input, crlfDelay: Infinity }).on('line', (line) => {
    output.write(`${prefix}${line}\n`);
    onLine?.(line);
  });
}

function startRemote(entry: HostEntry, prefix: string, options: SshLaunchOptions): RemoteNode {
  // Its own process group: a Ctrl-C at the terminal reaches the launcher, which stops nodes in order,
  // instead of killing every ssh client at once.
  const child = spawn(options.sshCommand ?? 'ssh', sshArgs(entry), {
    env: options.env ?? process.env,
    stdio: ['pipe', 'pipe', 'pipe'],
    detached: true,
  });
  let lastError: string | undefined;
  let stopRequested = false;
  const closed = new Promise<number | null>((resolveExit) => {
    child.once('error', (error) => {
      lastError = `cannot start ${options.sshCommand ?? 'ssh'}: ${error.message}`;
      resolveExit(null);
    });
    child.once('close', (code) => resolveExit(code));
  });
  child.stdin!.on('error', () => undefined); // ssh already gone: nothing left to tell it
  prefixLines(child.stdout!, options.stdout ?? process.stdout, prefix);
  prefixLines(child.stderr!, options.stderr ?? process.stderr, prefix, (line) => {
    if (line.trim() !== '') lastError = line.trim();
  });
  const stop = (graceMs: number) => {
    if (stopRequested || !running(child)) return;
    stopRequested = true;
    child.stdin!.end();
    const timer = setTimeout(() => running(child) && child.kill('SIGTERM'), graceMs);
    void closed.then(() => clearTimeout(timer));
  };
  return { entry, child, closed, lastError: () => lastError, stop, stopped: () => stopRequested };
}

function outcomeOf(node: RemoteNode, role: 'trainer' | 'learner', code: number | null, interrupted: boolean): HostOutcome {
  const base = { nodeId: node.entry.node_id, role, destination: destinationOf(node.entry), exitCode: code };
  const detail = node.lastError();
  if (node.failure) return { ...base, status: 'failed', reason: node.failure };
  // 255 is ssh's own failure (unreachable, refused, authentication): a failed host even during a stop.
  if (code !== 255 && (interrupted || node.stopped())) {
    return { ...base, status: 'stopped', reason: interrupted ? 'stopped on request' : 'stopped by launch after the trainer finished' };
  }
  if (code === 0) return { ...base, status: 'ok' };
  return { ...base, status: 'failed', reason: `exit ${code ?? 'signal'}${detail ? `: ${detail}` : ''}` };
}

/** Starts the trainer, waits until it accepts connections, then the learners; resolves when all have ended. */
export async function launchOverSsh(options: SshLaunchOptions): Promise<SshLaunchResult> {
  const hosts = typeof options.hosts === 'string' ? loadHostsFile(options.hosts, { env: options.env ?? process.env }) : options.hosts;
  const all = [hosts.trainer, ...hosts.learners];
  const width = Math.max(...all.map((entry) => entry.node_id.length));
  const prefixOf = (entry: HostEntry) => `${entry.node_id.padEnd(width)} | `;
  const stopGraceMs = options.stopGraceMs ?? 30_000;
  const nodes: RemoteNode[] = [];
  const stopAll = () => nodes.forEach((node) => node.stop(stopGraceMs));
  options.signal?.addEventListener('abort', stopAll, { once: true });
  try {
    if (options.signal?.aborted) return finish(hosts, [], [], true, options);
    const trainer = startRemote(hosts.trainer, prefixOf(hosts.trainer), options);
    nodes.push(trainer);
    const listening = await waitForTrainer(hosts, trainer, options);
    const learners = listening && !options.signal?.aborted
      ? hosts.learners.map((entry) => startRemote(entry, prefixOf(entry), options))
      : [];
    nodes.push(...learners);
    const trainerCode = await trainer.closed;
    const graceTimer = setTimeout(() => learners.forEach((node) => node.stop(stopGraceMs)), options.learnerGraceMs ?? 30_000);
    const learnerCodes = await Promise.all(learners.map((node) => node.closed));
    clearTimeout(graceTimer);
    return finish(hosts, [{ node: trainer, code: trainerCode }], learners.map((node, i) => ({ node, code: learnerCodes[i]! })), Boolean(options.signal?.aborted), options);
  } finally {
    options.signal?.removeEventListener('abort', stopAll);
  }
}

/** True once the trainer accepts connections; on timeout its node is stopped and marked with why. */
async function waitForTrainer(hosts: HostsFile, trainer: RemoteNode, options: SshLaunchOptions): Promise<boolean> {
  const { grpc_host: host, grpc_port: port } = hosts.trainer;
  const timeoutMs = options.startTimeoutMs ?? 120_000;
  const timeout = AbortSignal.timeout(timeoutMs);
  const signal = options.signal ? AbortSignal.any([options.signal, timeout]) : timeout;
  const listening = await waitForPort(port, trainer.child, signal, host);
  if (!listening && timeout.aborted && running(trainer.child)) {
    trainer.failure = `did not accept connections on ${host}:${port} within ${timeoutMs / 1000} s`;
    (options.stderr ?? process.stderr).write(`launch: the trainer ${trainer.failure}; stopping it\n`);
    trainer.stop(options.stopGraceMs ?? 30_000);
  }
  return listening;
}

function finish(
  hosts: HostsFile,
  trainer: Array<{ node: RemoteNode; code: number | null }>,
  learners: Array<{ node: RemoteNode; code: number | null }>,
  interrupted: boolean,
  options: SshLaunchOptions,
): SshLaunchResult {
  const started = [
    ...trainer.map(({ node, code }) => outcomeOf(node, 'trainer', code, interrupted)),
    ...learners.map(({ node, code }) => outcomeOf(node, 'learner', code, interrupted)),
  ];
  const notStarted = [hosts.trainer, ...hosts.learners].slice(started.length).map(
    (entry, i): HostOutcome => ({
      nodeId: entry.node_id,
      role: i + started.length === 0 ? 'trainer' : 'learner',
      destination: destinationOf(entry),
      status: 'not started',
      exitCode: null,
      reason: interrupted ? 'stopped on request before it started' : 'the trainer never accepted connections',
    }),
  );
  const outcomes = [...started, ...notStarted];
  (options.stderr ?? process.stderr).write(renderReport(outcomes));
  const failed = outcomes.some((o) => o.status === 'failed') || outcomes[0]?.status !== 'ok';
  return { exitCode: interrupted ? 130 : failed ? 1 : 0, hosts: outcomes };
}

/** The closing table: one line per node, then the failed hosts by name. */
export function renderReport(outcomes: HostOutcome[]): string {
  const idWidth = Math.max(...outcomes.map((o) => o.nodeId.length));
  const destWidth = Math.max(...outcomes.map((o) => o.destination.length));
  const lines = outcomes.map(
    (o) => `  ${o.nodeId.padEnd(idWidth)}  ${o.destination.padEnd(destWidth)}  ${o.status}${o.reason ? ` (${o.reason})` : ''}`,
  );
  const failed = outcomes.filter((o) => o.status === 'failed');
  const verdict = failed.length === 0 ? 'no host failed' : `failed hosts: ${failed.map((o) => `${o.nodeId} (${o.destination})`).join(', ')}`;
  return `launch over ssh:\n${lines.join('\n')}\n${verdict}\n`;
}
