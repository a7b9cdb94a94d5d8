/**
 * deploy/docker/Dockerfile built and run for real: a private dockerd (no bridge, no iptables),
 * buildah for the build, an offline stand-in for the node base image (see engine.ts). Every
 * container uses the host's network stack and binds 127.0.0.1 only. Skips, saying why, where no
 * container engine can run (not root, packages missing, dockerd does not start).
 */
import { chownSync, existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { downwardEnv, k8s } from '../../deploy/test/k8s.js';
import { repoRoot, roundAccuracies, writeCifarFixture } from '../../e2e/test/helpers.js';
import { Engine, IMAGE, missingRequirement, sh } from './engine.js';

const OIAFED_UID = 10001;
const configs = join(repoRoot, 'deploy/compose/configs');
const requirement = missingRequirement();
let engine: Engine | undefined;
let skipReason: string | undefined;
let setupError: Error | undefined;

/** `n` distinct free loopback ports (all held open while picking, so none repeats). */
async function freePorts(n: number): Promise<number[]> {
  const servers: Server[] = [];
  for (let i = 0; i < n; i++) {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    servers.push(server);
  }
  const ports = servers.map((s) => (s.address() as { port: number }).port);
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  return ports;
}

/** A /data directory for one node: a small CIFAR-10 fixture where the configs look for it, owned by the image's user. */
function dataDir(name: string): string {
  const dir = join(engine!.dir, 'data', name);
  mkdirSync(join(dir, 'cifar10'), { recursive: true });
  // 12 records per file: 20 training samples per learner, one batch. The CIFAR CNN (1.6 M parameters) on
  // wasm blocks a learner's event loop while a batch trains; on a loaded 2-core machine a large batch
  // outlasted the 30 s heartbeat timeout of the shipped configs.
  writeCifarFixture(join(dir, 'cifar10'), 12);
  for (const path of [dir, join(dir, 'cifar10'), ...readdirSync(join(dir, 'cifar10')).map((f) => join(dir, 'cifar10', f))]) {
    chownSync(path, OIAFED_UID, OIAFED_UID);
  }
  return dir;
}

interface NodePorts {
  grpc: number;
  metrics: number;
  health: number;
}

/** `--set` flags that put a node's three endpoints on 127.0.0.1 at the given ports. */
function loopbackSets(ports: NodePorts): string[] {
  const sets = [`listen.port=${ports.grpc}`, `metrics.port=${ports.metrics}`, `health.port=${ports.health}`];
  for (const key of ['listen', 'metrics', 'health']) sets.push(`${key}.host=127.0.0.1`);
  return sets.flatMap((s) => ['--set', s]);
}

/** `docker run -d` of one node as docs/deployment.md shows: its config at /config/node.yaml, its volume at /data. */
async function startNode(options: {
  name: string;
  config: string;
  data: string;
  ports: NodePorts;
  env?: Record<string, string>;
  extraSets?: string[];
  dockerFlags?: string[];
}): Promise<string> {
  const env = { OIAFED_HEALTH_PORT: String(options.ports.health), ...options.env };
  const args = ['run', '-d', '--name', options.name, '--network', 'host', ...(options.dockerFlags ?? [])];
  for (const [key, value] of Object.entries(env)) args.push('-e', `${key}=${value}`);
  args.push('-v', `${options.config}:/config/node.yaml:ro`, '-v', `${options.data}:/data`, IMAGE);
  args.push('run', '--config', '/config/node.yaml', ...loopbackSets(options.ports), ...(options.extraSets ?? []).flatMap((s) => ['--set', s]));
  const result = await engine!.docker(args);
  expect(result.code, result.stderr).toBe(0);
  return options.name;
}

function learnerSets(trainerPort: number): string[] {
  return [`connect_to=["trainer@127.0.0.1:${trainerPort}"]`];
}

async function inspect(container: string, format: string): Promise<string> {
  return (await engine!.docker(['inspect', '-f', format, container])).stdout.trim();
}

/** Polls until `check` returns a value (not undefined), for at most `seconds`. */
async function waitFor<T>(what: string, seconds: number, check: () => Promise<T | undefined>): Promise<T> {
  for (let i = 0; i < seconds * 2; i++) {
    const value = await check().catch(() => undefined);
    if (value !== undefined) return value;
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error(`timed out after ${seconds} s waiting for ${what}`);
}

async function waitHealth(container: string, status: 'healthy' | 'unhealthy'): Promise<void> {
  await waitFor(`${container} to become ${status}`, 120, async () =>
    (await inspect(container, '{{.State.Health.Status}}')) === status ? true : undefined,
  );
}

async function exitCode(container: string): Promise<number> {
  const waited = await engine!.docker(['wait', container], 300_000);
  return Number(waited.stdout.trim());
}

async function logs(container: string): Promise<string> {
  const result = await engine!.docker(['logs', container]);
  return `${result.stdout}${result.stderr}`;
}

/** GET from inside a container (its own node, no curl in the image). */
async function fetchInside(container: string, url: string): Promise<{ code: number; body: string }> {
  const script = `fetch(${JSON.stringify(url)}).then(async r=>{process.stdout.write(await r.text());process.exit(r.ok?0:1)},()=>process.exit(2))`;
  const result = await engine!.docker(['exec', container, 'node', '-e', script]);
  return { code: result.code, body: result.stdout };
}

/** The image's own HEALTHCHECK command, run in the container as Docker runs it. */
async function runHealthcheck(container: string): Promise<number> {
  const test = JSON.parse(await inspect(container, '{{json .Config.Healthcheck.Test}}')) as string[];
  expect(test[0]).toBe('CMD');
  return (await engine!.docker(['exec', container, ...test.slice(1)])).code;
}

function historyRounds(dir: string): unknown[] {
  const files = (readdirSync(dir, { recursive: true }) as string[]).filter((f) => f.endsWith('history.jsonl'));
  expect(files.length, `history.jsonl under ${dir}`).toBe(1);
  return readFileSync(join(dir, files[0]!), 'utf8').trim().split('\n').map((line) => JSON.parse(line));
}

describe.skipIf(requirement)(`the CPU image in a container engine${requirement ? ` (skipped: ${requirement})` : ''}`, () => {
  beforeAll(async () => {
    engine = new Engine();
    try {
      skipReason = await engine.startDockerd();
      if (skipReason) return;
      await engine.buildBaseImage().catch((error: Error) => {
        skipReason = `the stand-in base image could not be made from Debian: ${error.message.slice(0, 1500)}`;
      });
      if (skipReason) return;
      await engine.buildImage(repoRoot);
    } catch (error) {
      setupError = error as Error;
    }
  }, 1_800_000);

  afterAll(async () => {
    if (!engine) return;
    const size = await engine.docker(['image', 'inspect', '-f', '{{.Size}}', IMAGE]).catch(() => undefined);
    // The numbers docs/deployment.md reports: image size and how long each step took.
    console.info(`container suite: image ${IMAGE} ${Number(size?.stdout ?? 0) / 1e6} MB; seconds ${JSON.stringify(engine.timings)}`);
    await engine.close();
  }, 300_000);

  beforeEach((context) => {
    if (skipReason) context.skip(skipReason);
    if (setupError) throw setupError;
  });

  it('runs as its non-root user and carries the HEALTHCHECK', async () => {
    expect(await inspect(IMAGE, '{{.Config.User}}')).toBe('oiafed');
    expect(await inspect(IMAGE, '{{json .Config.Healthcheck.Test}}')).toContain('/health');
    const id = await engine!.docker(['run', '--rm', '--network', 'none', '--entrypoint', 'id', IMAGE, '-u']);
    expect(id.stdout.trim()).toBe(String(OIAFED_UID));
  });

  it('oiafed validate accepts every shipped config inside the image', async () => {
    // Compose configs mounted as the docs show, the ConfigMap's files with the env a pod gets, the image's examples.
    const dir = join(engine!.dir, 'validate');
    mkdirSync(dir, { recursive: true });
    const { manifests } = k8s();
    const configMap = manifests.find((m) => m.doc.kind === 'ConfigMap')!.doc;
    for (const key of ['trainer.yaml', 'learner.yaml']) writeFileSync(join(dir, `k8s-${key}`), configMap.data[key]);
    const statefulSet = manifests.find((m) => m.doc.kind === 'StatefulSet')!.doc;
    const env = downwardEnv(statefulSet.spec.template.spec.containers[0], 'oiafed-learner-1', 1);
    const files = [
      ...readdirSync(configs).map((f) => `/config/${f}`),
      '/k8s/k8s-trainer.yaml',
      '/k8s/k8s-learner.yaml',
      // Node configs only: a top-level role (or extend); examples/hosts/hosts.yaml is a launch hosts file.
      ...(readdirSync(join(repoRoot, 'examples'), { recursive: true }) as string[])
        .filter((f) => f.endsWith('.yaml') && /^(role|extend):/m.test(readFileSync(join(repoRoot, 'examples', f), 'utf8')))
        .map((f) => `/app/examples/${f}`),
    ];
    const args = ['run', '--rm', '--network', 'none', '-v', `${configs}:/config:ro`, '-v', `${dir}:/k8s:ro`];
    for (const [key, value] of Object.entries(env)) args.push('-e', `${key}=${value}`);
    const result = await engine!.docker([...args, IMAGE, 'validate', ...files]);
    const out = `${result.stdout}${result.stderr}`;
    expect(result.code, out).toBe(0);
    expect(out.match(/^ok: /gm)?.length, out).toBe(files.length);
  });

  it('a trainer and two learner containers federate to completion; /health and /metrics answer inside and outside', async () => {
    const [tg, tm, th, ...learnerPorts] = await freePorts(9);
    const trainerPorts = { grpc: tg!, metrics: tm!, health: th! };
    const trainerData = dataDir('trainer');
    const env = { MAX_ROUNDS: '2', MIN_CLIENTS: '2', EXP_NAME: 'containers' };
    const trainer = await startNode({
      name: 'fed-trainer',
      config: join(configs, 'trainer.yaml'),
      data: trainerData,
      ports: trainerPorts,
      env,
      // docker reads a 0 start period as unset (the image's 30 s); 1 ms is its minimum.
      dockerFlags: ['--health-interval=1s', '--health-start-period=1ms'],
    });
    // Docker runs the image's HEALTHCHECK (interval shortened) and finds the trainer healthy.
    await waitHealth(trainer, 'healthy');
    expect(await runHealthcheck(trainer)).toBe(0);
    const outside = await fetch(`http://127.0.0.1:${trainerPorts.health}/health`);
    expect(outside.status).toBe(200);
    const metricsOutside = await (await fetch(`http://127.0.0.1:${trainerPorts.metrics}/metrics`)).text();
    expect(metricsOutside).toMatch(/^oiafed_learners_registered\{[^}]*node="trainer"[^}]*\} 0$/m);
    const metricsInside = await fetchInside(trainer, `http://127.0.0.1:${trainerPorts.metrics}/metrics`);
    expect(metricsInside.body).toContain('oiafed_rounds_completed_total');
    expect((await fetchInside(trainer, `http://127.0.0.1:${trainerPorts.health}/health`)).code).toBe(0);
    expect((await engine!.docker(['exec', trainer, 'id', '-u'])).stdout.trim()).toBe(String(OIAFED_UID));

    const learners = [];
    for (const index of [0, 1]) {
      const [grpc, metrics, health] = learnerPorts.slice(index * 3, index * 3 + 3) as number[];
      learners.push(
        await startNode({
          name: `fed-learner-${index}`,
          config: join(configs, `learner-${index}.yaml`),
          data: dataDir(`learner-${index}`),
          ports: { grpc: grpc!, metrics: metrics!, health: health! },
          env,
          extraSets: learnerSets(trainerPorts.grpc),
        }),
      );
    }
    const code = await exitCode(trainer);
    const trainerLog = await logs(trainer);
    expect(code, trainerLog).toBe(0);
    expect(roundAccuracies(trainerLog), trainerLog).toHaveLength(2);
    expect(trainerLog).toMatch(/^done: 2 rounds/m);
    expect(historyRounds(trainerData).map((r) => (r as { participants: number }).participants)).toEqual([2, 2]);
    for (const learner of learners) {
      expect(await exitCode(learner), await logs(learner)).toBe(0);
      // The image ships OpenBLAS, so a learner's convolutions run on it, not on the fallback.
      expect(await logs(learner)).toMatch(/compute backend: wasm .*openblas \(\w+, \d+ threads?\)/);
    }
  }, 600_000);

  it('the HEALTHCHECK fails where no node answers', async () => {
    const [port] = await freePorts(1);
    const dead = 'dead-node';
    const started = await engine!.docker([
      'run', '-d', '--name', dead, '--network', 'host', '-e', `OIAFED_HEALTH_PORT=${port}`,
      '--health-interval=1s', '--health-retries=1', '--health-start-period=1ms', '--entrypoint', 'sleep', IMAGE, '600',
    ]);
    expect(started.code, started.stderr).toBe(0);
    await waitHealth(dead, 'unhealthy');
    expect(await runHealthcheck(dead)).not.toBe(0);
    await engine!.docker(['rm', '-f', dead]);
  }, 180_000);

  it('docker stop of the trainer mid-run writes a checkpoint and exits 0 within the grace period (tini forwards SIGTERM)', async () => {
    const [tg, tm, th, ...learnerPorts] = await freePorts(9);
    const trainerPorts = { grpc: tg!, metrics: tm!, health: th! };
    const trainerData = dataDir('stop-trainer');
    const env = { MAX_ROUNDS: '100000', MIN_CLIENTS: '2', EXP_NAME: 'containers-stop' };
    const trainer = await startNode({ name: 'stop-trainer', config: join(configs, 'trainer.yaml'), data: trainerData, ports: trainerPorts, env });
    const learners: Array<{ name: string; ports: NodePorts }> = [];
    for (const index of [0, 1]) {
      const [grpc, metrics, health] = learnerPorts.slice(index * 3, index * 3 + 3) as number[];
      const ports = { grpc: grpc!, metrics: metrics!, health: health! };
      const name = await startNode({
        name: `stop-learner-${index}`,
        config: join(configs, `learner-${index}.yaml`),
        data: dataDir(`stop-learner-${index}`),
        ports,
        env,
        extraSets: learnerSets(trainerPorts.grpc),
      });
      learners.push({ name, ports });
    }
    await waitFor('a completed round', 240, async () => {
      const text = await (await fetch(`http://127.0.0.1:${trainerPorts.metrics}/metrics`)).text();
      const done = /^oiafed_rounds_completed_total\{[^}]*\} (\d+)/m.exec(text);
      return done && Number(done[1]) >= 1 ? true : undefined;
    });
    // The learners' endpoints, from outside and from inside their containers, while they train.
    for (const { name, ports } of learners) {
      expect((await fetch(`http://127.0.0.1:${ports.health}/health`)).status).toBe(200);
      expect(await (await fetch(`http://127.0.0.1:${ports.metrics}/metrics`)).text()).toMatch(/role="learner"/);
      expect((await fetchInside(name, `http://127.0.0.1:${ports.metrics}/metrics`)).body).toMatch(/role="learner"/);
      expect(await runHealthcheck(name)).toBe(0);
    }

    // docker stop sends SIGTERM, then SIGKILL (exit 137) after the grace period; 30 s as in the compose file.
    const stopped = await engine!.docker(['stop', '--time', '30', trainer], 120_000);
    expect(stopped.code, stopped.stderr).toBe(0);
    const trainerLog = await logs(trainer);
    expect(await inspect(trainer, '{{.State.ExitCode}}'), trainerLog).toBe('0');
    expect(trainerLog).toMatch(/checkpoint of round \d+ written/);
    const checkpoints = join(trainerData, 'checkpoints');
    expect(existsSync(checkpoints) && readdirSync(checkpoints).length > 0, trainerLog).toBe(true);
    for (const { name } of learners) {
      await engine!.docker(['stop', '--time', '30', name], 120_000);
      expect(await inspect(name, '{{.State.ExitCode}}'), await logs(name)).toBe('0');
    }
  }, 600_000);

  it('docker-compose (v1) runs the shipped single-host federation, docker-compose.host.yml, for a few rounds', async () => {
    const ports = await freePorts(9);
    const names = ['TRAINER', 'LEARNER0', 'LEARNER1'];
    const portEnv = Object.fromEntries(
      names.flatMap((node, i) => ['GRPC', 'METRICS', 'HEALTH'].map((kind, k) => [`${node}_${kind}_PORT`, String(ports[i * 3 + k])])),
    );
    // The test's own layer: fixture data instead of downloading CIFAR-10, no restarts, quick healthchecks.
    const override = join(engine!.dir, 'compose.test.yml');
    const services = { trainer: dataDir('compose-trainer'), 'learner-0': dataDir('compose-learner-0'), 'learner-1': dataDir('compose-learner-1') };
    writeFileSync(
      override,
      'services:\n' +
        Object.entries(services)
          .map(([name, data]) => `  ${name}:\n    restart: "no"\n    volumes: ["${data}:/data"]\n    healthcheck: {interval: 1s, start_period: 1ms}\n`)
          .join(''),
    );
    const compose = (args: string[]) =>
      sh('docker-compose', ['-p', 'oiafedtest', '-f', 'deploy/compose/docker-compose.host.yml', '-f', override, ...args], {
        cwd: repoRoot,
        env: { ...engine!.env, ...portEnv, OIAFED_IMAGE: IMAGE, MAX_ROUNDS: '3', MIN_CLIENTS: '2', EXP_NAME: 'compose-test' },
        timeoutMs: 300_000,
      });
    try {
      const up = await compose(['up', '-d', '--no-build', 'trainer', 'learner-0', 'learner-1']);
      expect(up.code, up.stderr).toBe(0);
      const trainer = (await compose(['ps', '-q', 'trainer'])).stdout.trim();
      expect(await exitCode(trainer), await logs(trainer)).toBe(0);
      const trainerLog = await logs(trainer);
      expect(roundAccuracies(trainerLog), trainerLog).toHaveLength(3);
      expect(historyRounds(services.trainer).map((r) => (r as { participants: number }).participants)).toEqual([2, 2, 2]);
    } finally {
      await compose(['down', '-v', '--timeout', '30']);
    }
  }, 600_000);
});

// Where the suite is skipped, say why in the run's output rather than only in a describe title.
if (requirement) {
  describe('container suite', () => {
    it.skip(`skipped: ${requirement}`, () => undefined);
  });
}
