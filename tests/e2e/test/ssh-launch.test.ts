/**
 * `oiafed launch --hosts` against real ssh: two sshd instances on 127.0.0.2 and 127.0.0.3 (both
 * loopback) stand in for two machines, with a host key and a client key generated here. The
 * "remote" nodes run this clone's CLI by absolute paths, as a fresh machine would have to.
 */
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sourceNodeFlags } from '../../source-node.js';
import { collect, repoRoot, runCli, startCli, tempDir } from './helpers.js';

const SSHD = '/usr/sbin/sshd';

function skipReason(): string | undefined {
  if (!existsSync(SSHD)) return `${SSHD} not found (apt-get install openssh-server)`;
  if (process.getuid?.() !== 0) return 'sshd must run as root to accept logins';
  if (spawnSync('ssh', ['-V']).error) return 'no ssh client (apt-get install openssh-client)';
  if (spawnSync('ssh-keygen', ['-?']).error) return 'no ssh-keygen (apt-get install openssh-client)';
  return undefined;
}

async function freePort(host: string): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, host, () => {
      const address = server.address();
      server.close(() => resolvePort(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

function accepts(host: string, port: number): Promise<boolean> {
  return new Promise((resolveOpen) => {
    const socket = connect({ host, port });
    socket.once('connect', () => {
      socket.destroy();
      resolveOpen(true);
    });
    socket.once('error', () => resolveOpen(false));
  });
}

interface Sshd {
  host: string;
  port: number;
  proc: ChildProcess;
}

async function startSshd(dir: string, host: string): Promise<Sshd> {
  const port = await freePort(host);
  const config = join(dir, `sshd_${host}.conf`);
  writeFileSync(
    config,
    [
      `ListenAddress ${host}`,
      `Port ${port}`,
      `HostKey ${join(dir, 'host_key')}`,
      `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
      'PidFile none',
      'StrictModes no',
      'UsePAM no',
      'PermitRootLogin prohibit-password',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      '',
    ].join('\n'),
  );
  // sshd refuses to start without its privilege-separation directory (systemd creates it on a real host).
  mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
  const proc = spawn(SSHD, ['-D', '-e', '-f', config], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  proc.stderr!.on('data', (chunk: Buffer) => (log += chunk.toString()));
  for (let i = 0; i < 100 && proc.exitCode === null; i++) {
    if (await accepts(host, port)) return { host, port, proc };
    await new Promise((r) => setTimeout(r, 100));
  }
  proc.kill();
  throw new Error(`sshd on ${host}:${port} did not start:\n${log}`);
}

function pgrep(marker: string): string[] {
  const result = spawnSync('pgrep', ['-af', marker], { encoding: 'utf8' });
  return result.stdout.split('\n').filter((line) => line.trim() !== '' && !line.includes('pgrep'));
}

/** The remote nodes are sshd's children, not the launcher's: found by the run's directory in their command lines. */
function remoteNodes(dir: string): string[] {
  return pgrep(dir).filter((line) => line.startsWith(`${line.split(' ')[0]} ${process.execPath} `) && line.includes(' run --config '));
}

async function noneLeft(marker: string, timeoutMs: number): Promise<string[]> {
  const deadline = Date.now() + timeoutMs;
  let left = pgrep(marker);
  while (left.length > 0 && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 250));
    left = pgrep(marker);
  }
  return left;
}

/** A trainer on 127.0.0.2 and learners that dial it; configs are written where the "remote" workdir is. */
function writeFederation(dir: string, trainerPort: number, rounds: number): void {
  writeFileSync(
    join(dir, 'base.yaml'),
    `exp_name: ssh-launch
seed: 3
transport: {mode: grpc}
trainer:
  type: default
  args: {max_rounds: ${rounds}, local_epochs: 1, min_clients: 2, round_timeout: 60, registration_timeout: 60}
learner: {type: default, args: {batch_size: 32, lr: 0.05, optimizer: sgd, device: cpu}}
aggregator: {type: fedavg}
model: {type: mlp, args: {hidden: [16], num_classes: 10}}
retry: {max_attempts: 20, backoff_strategy: constant, initial_delay: 0.3, max_delay: 1}
tracker: {run_dir: ${join(dir, 'run')}, backends: [{type: console, level: info}]}
`,
  );
  writeFileSync(
    join(dir, 'trainer.yaml'),
    `extend: base.yaml
node_id: trainer
role: trainer
listen: {host: 127.0.0.2, port: ${trainerPort}}
datasets: [{type: synthetic, args: {samples_per_client: 200}, partition: {num_partitions: 2, partition_id: 0}}]
`,
  );
  for (const i of [0, 1]) {
    writeFileSync(
      join(dir, `learner_${i}.yaml`),
      `extend: base.yaml
node_id: learner_${i}
role: learner
listen: {host: 127.0.0.1, port: 0}
connect_to: [trainer@127.0.0.2:${trainerPort}]
datasets: [{type: synthetic, args: {samples_per_client: 200}, partition: {num_partitions: 2, partition_id: ${i}}}]
`,
    );
  }
}

interface HostsSetup {
  dir: string;
  trainerPort: number;
  a: Sshd;
  b: Sshd;
  keyDir: string;
  extraLearner?: Record<string, unknown>;
  /** Only learner_0 (on host B). */
  oneLearner?: boolean;
}

/** The hosts file (JSON is YAML): trainer and learner_1 on host A, learner_0 on host B, config paths absolute (they carry the run's marker). */
function writeHosts({ dir, trainerPort, a, b, keyDir, extraLearner, oneLearner }: HostsSetup): string {
  const hosts = {
    defaults: {
      ssh: {
        user: 'root',
        identity_file: join(keyDir, 'client_key'),
        options: ['-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'LogLevel=ERROR'],
      },
      workdir: dir,
      // Absolute node and CLI paths: a non-interactive ssh session has neither this PATH nor this cwd.
      command: [process.execPath, ...sourceNodeFlags(), join(repoRoot, 'apps/cli/src/main.ts')],
    },
    trainer: { host: a.host, ssh: { port: a.port }, config: join(dir, 'trainer.yaml'), grpc_port: trainerPort },
    learners: [
      { host: b.host, ssh: { port: b.port }, config: join(dir, 'learner_0.yaml') },
      ...(oneLearner ? [] : [{ host: a.host, ssh: { port: a.port }, config: join(dir, 'learner_1.yaml') }]),
      ...(extraLearner ? [extraLearner] : []),
    ],
  };
  const file = join(dir, 'hosts.yaml');
  writeFileSync(file, JSON.stringify(hosts, null, 2));
  return file;
}

const reason = skipReason();
const suite = reason ? describe.skip : describe;

suite(`oiafed launch --hosts over real sshd on loopback${reason ? ` (skipped: ${reason})` : ''}`, () => {
  let keyDir: string;
  let a: Sshd;
  let b: Sshd;

  beforeAll(async () => {
    keyDir = tempDir('sshd');
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(keyDir, 'host_key')]);
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(keyDir, 'client_key')]);
    execFileSync('cp', [join(keyDir, 'client_key.pub'), join(keyDir, 'authorized_keys')]);
    [a, b] = await Promise.all([startSshd(keyDir, '127.0.0.2'), startSshd(keyDir, '127.0.0.3')]);
  }, 30_000);

  afterAll(() => {
    a?.proc.kill();
    b?.proc.kill();
  });

  it('runs trainer + 2 learners on two hosts, prefixes output by node id, reports the unreachable host', async () => {
    const dir = tempDir('sshlaunch');
    const trainerPort = await freePort('127.0.0.2');
    writeFederation(dir, trainerPort, 2);
    const closedPort = await freePort('127.0.0.3');
    const extraLearner = { node_id: 'learner_bad', host: '127.0.0.3', ssh: { port: closedPort }, config: join(dir, 'learner_1.yaml') };
    const hosts = writeHosts({ dir, trainerPort, a, b, keyDir, extraLearner });

    const result = await runCli(['launch', '--hosts', hosts, '--json'], { timeoutMs: 170_000 });

    const context = `stdout:\n${result.stdout.slice(-3000)}\nstderr:\n${result.stderr.slice(-3000)}`;
    // --json: the nodes' output goes to stderr, stdout holds one JSON line with every host's outcome.
    expect(result.stderr, context).toMatch(/^trainer {5}\| round\s+2\/2\s+learners 2\/2/m);
    expect(result.stderr, context).toMatch(/^learner_0 {3}\| /m);
    expect(result.stderr, context).toMatch(/^learner_1 {3}\| /m);
    expect(result.stderr, context).toMatch(/^learner_bad \| .*Connection refused/m);
    expect(result.stderr, context).toMatch(/^ {2}trainer\s+root@127\.0\.0\.2:\d+\s+ok$/m);
    expect(result.stderr, context).toMatch(/^ {2}learner_0\s+root@127\.0\.0\.3:\d+\s+ok$/m);
    expect(result.stderr, context).toMatch(
      new RegExp(`^ {2}learner_bad\\s+root@127\\.0\\.0\\.3:${closedPort}\\s+failed \\(exit 255: .*Connection refused\\)$`, 'm'),
    );
    expect(result.stderr, context).toContain(`failed hosts: learner_bad (root@127.0.0.3:${closedPort})`);
    expect(result.code, context).toBe(1);
    const summary = JSON.parse(result.stdout.trim().split('\n').at(-1)!) as { exit_code: number; hosts: Array<{ nodeId: string; status: string }> };
    expect(summary.exit_code).toBe(1);
    expect(summary.hosts.map((h) => [h.nodeId, h.status])).toEqual([
      ['trainer', 'ok'],
      ['learner_0', 'ok'],
      ['learner_1', 'ok'],
      ['learner_bad', 'failed'],
    ]);
    expect(pgrep(dir)).toEqual([]);
  }, 180_000);

  /** Starts a long federation and resolves once round 1 is done and the 3 remote nodes run. */
  async function startLongFederation(prefix: string) {
    const dir = tempDir(prefix);
    const trainerPort = await freePort('127.0.0.2');
    writeFederation(dir, trainerPort, 10_000);
    const hosts = writeHosts({ dir, trainerPort, a, b, keyDir });
    const launcher = startCli(['launch', '--hosts', hosts]);
    const done = collect(launcher, 170_000);
    let stdout = '';
    launcher.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    const deadline = Date.now() + 120_000;
    while (!/^trainer\s+\| round\s+1\//m.test(stdout) && launcher.exitCode === null && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 200));
    }
    expect(stdout).toMatch(/^trainer\s+\| round\s+1\//m);
    expect(remoteNodes(dir).length, pgrep(dir).join('\n')).toBe(3);
    return { dir, launcher, done, stdout: () => stdout };
  }

  it('Ctrl-C to the launcher stops the remote trainer and learners (no process of the run is left)', async () => {
    const { dir, launcher, done, stdout: output } = await startLongFederation('sshstop');
    launcher.kill('SIGINT');
    const result = await done;

    const context = `stdout:\n${output().slice(-2000)}\nstderr:\n${result.stderr.slice(-3000)}`;
    expect(result.code, context).toBe(130);
    expect(result.stderr, context).toMatch(/^ {2}trainer\s+\S+\s+stopped \(stopped on request\)$/m);
    expect(result.stderr, context).toContain('no host failed');
    expect(await noneLeft(dir, 10_000)).toEqual([]);
  }, 180_000);

  it('a launcher killed outright (SIGKILL) still stops the remote nodes: the dropped sessions end them', async () => {
    const dir = tempDir('sshkill');
    const trainerPort = await freePort('127.0.0.2');
    writeFederation(dir, trainerPort, 10_000);
    // Trainer (waiting for 2 learners forever) and one learner: two remote nodes, no training needed.
    const launcher = startCli(['launch', '--hosts', writeHosts({ dir, trainerPort, a, b, keyDir, oneLearner: true })]);
    const done = collect(launcher, 170_000);
    const deadline = Date.now() + 120_000;
    while (remoteNodes(dir).length < 2 && launcher.exitCode === null && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 200));
    }
    expect(remoteNodes(dir).length, pgrep(dir).join('\n')).toBe(2);
    launcher.kill('SIGKILL');
    await done;
    // The remote wrapper sends SIGTERM on the session's EOF and SIGKILL 20 s later.
    expect(await noneLeft(dir, 25_000)).toEqual([]);
  }, 180_000);
});

describe('oiafed launch --hosts: the hosts file is validated like a node config', () => {
  it('names file, key path and expectation, exit 2', async () => {
    const dir = tempDir('hostsbad');
    const file = join(dir, 'hosts.yaml');
    writeFileSync(file, 'trainer: {host: a, config: t.yaml, ssh: {port: 70000}}\nlearners:\n  - {host: b, confg: l.yaml}\n');
    const result = await runCli(['launch', '--hosts', file], { timeoutMs: 60_000 });
    expect(result.code, result.stderr).toBe(2);
    expect(result.stderr).toContain(`${file}: trainer.ssh.port: must be <= 65535 (got 70000)`);
    expect(result.stderr).toContain(`${file}: learners[0]: unknown key "confg"`);
    expect(result.stderr).toContain(`${file}: learners[0].config: required key is missing`);
    expect(result.stderr).not.toMatch(/\n\s+at /);
  }, 60_000);
});
