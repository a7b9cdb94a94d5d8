/**
 * The node configs shipped under deploy/ load through @oiafed/config exactly as the containers
 * load them: same file text, same environment (downward API for the learner pods, the compose
 * `environment:` block for the compose services).
 */
import { loadConfig } from '@oiafed/config';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { composeEnv, composeFile, configMountSource } from './compose.js';
import { readYaml } from './helpers.js';
import { downwardEnv, k8s, strategicMerge } from './k8s.js';

const tmp = mkdtempSync(join(tmpdir(), 'oiafed-deploy-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

let counter = 0;
/** Writes `text` to a fresh temp file and loads it the way `oiafed run --config` does. */
async function load(text: string, env: Record<string, string>) {
  const file = join(tmp, `node-${counter++}.yaml`);
  writeFileSync(file, text);
  return await loadConfig(file, { env });
}

const { manifests, patchFiles } = k8s();
const configMap = manifests.find((m) => m.doc.kind === 'ConfigMap')!.doc;
const sts = manifests.find((m) => m.doc.kind === 'StatefulSet')!.doc;
const trainerDeploy = manifests.find((m) => m.doc.kind === 'Deployment')!.doc;
const learnerContainer = sts.spec.template.spec.containers[0];
const trainerContainer = trainerDeploy.spec.template.spec.containers[0];

describe('ConfigMap configs', () => {
  it('trainer.yaml loads with the Deployment environment', async () => {
    const cfg = await load(configMap.data['trainer.yaml'], downwardEnv(trainerContainer, 'oiafed-trainer-abc12', 0));
    expect(cfg.node_id).toBe('trainer');
    expect(cfg.role).toBe('trainer');
    expect(cfg.listen.port).toBe(50051);
    expect(cfg.trainer.args.min_clients).toBe(4);
    expect(cfg.trainer.args.max_rounds).toBe(100);
    expect(cfg.metrics).toMatchObject({ enabled: true, port: 9090 });
    expect(cfg.health).toMatchObject({ enabled: true, port: 8080 });
  });

  it('learner.yaml in pod oiafed-learner-2 gets node_id oiafed-learner-2 and partition_id 2', async () => {
    const env = downwardEnv(learnerContainer, 'oiafed-learner-2', 2);
    const cfg = await load(configMap.data['learner.yaml'], env);
    expect(cfg.node_id).toBe('oiafed-learner-2');
    expect(cfg.role).toBe('learner');
    expect(cfg.connect_to).toEqual(['trainer@oiafed-trainer:50051']);
    expect(cfg.datasets[0]!.partition).toMatchObject({ strategy: 'iid', num_partitions: 4, partition_id: 2 });
    expect(cfg.learner.args.device).toBe('auto');
    expect(cfg.health).toMatchObject({ enabled: true, port: 8080 });
    expect(cfg.metrics).toMatchObject({ enabled: true, port: 9090 });
  });

  it('every ordinal of the StatefulSet maps to its own partition', async () => {
    const ids: number[] = [];
    for (let i = 0; i < sts.spec.replicas; i++) {
      const cfg = await load(configMap.data['learner.yaml'], downwardEnv(learnerContainer, `oiafed-learner-${i}`, i));
      ids.push(cfg.datasets[0]!.partition!.partition_id!);
    }
    expect(ids).toEqual([0, 1, 2, 3]);
  });

  it('TRAINER_HOST falls back to the trainer Service name', async () => {
    const cfg = await load(configMap.data['learner.yaml'], { NODE_ID: 'oiafed-learner-0', PARTITION_ID: '0', OIAFED_AUTH_TOKEN: 't' });
    expect(cfg.connect_to).toEqual(['trainer@oiafed-trainer:50051']);
  });

  it('a pod without NODE_ID is rejected with the variable named', async () => {
    await expect(load(configMap.data['learner.yaml'], { PARTITION_ID: '0' })).rejects.toThrow(/NODE_ID/);
  });

  it('an empty pod-index (cluster older than 1.28) is rejected, not silently partition 0', async () => {
    await expect(load(configMap.data['learner.yaml'], { NODE_ID: 'oiafed-learner-0', PARTITION_ID: '', OIAFED_AUTH_TOKEN: 't' })).rejects.toThrow(
      /partition_id|PARTITION_ID/,
    );
  });

  it('both configs take the bearer token from the Secret; an empty Secret value is rejected, not "no auth"', async () => {
    const trainer = await load(configMap.data['trainer.yaml'], downwardEnv(trainerContainer, 'oiafed-trainer-abc12', 0));
    const learner = await load(configMap.data['learner.yaml'], downwardEnv(learnerContainer, 'oiafed-learner-0', 0));
    expect(trainer.transport.grpc.auth_token).toBe('secret-oiafed-auth-token');
    expect(learner.transport.grpc.auth_token).toBe('secret-oiafed-auth-token');
    const empty = { ...downwardEnv(trainerContainer, 'oiafed-trainer-abc12', 0), OIAFED_AUTH_TOKEN: '' };
    await expect(load(configMap.data['trainer.yaml'], empty)).rejects.toThrow(/transport\.grpc\.auth_token: must not be empty/);
  });

  it('the GPU overlay makes the same learner.yaml pick cuda:0', async () => {
    const gpu = strategicMerge(sts, readYaml(patchFiles[0]!)) as any;
    const env = downwardEnv(gpu.spec.template.spec.containers[0], 'oiafed-learner-1', 1);
    const cfg = await load(configMap.data['learner.yaml'], env);
    expect(cfg.learner.args.device).toBe('cuda:0');
    expect(cfg.datasets[0]!.partition!.partition_id).toBe(1);
  });
});

describe('compose configs', () => {
  const compose = composeFile();
  const services = Object.entries<any>(compose.services);

  it.each(services.map(([name, svc]) => [name, svc]))('%s: its mounted config loads with its environment', async (name, svc) => {
    const cfg = await load(readFileSync(configMountSource(name, svc), 'utf8'), composeEnv(svc));
    expect(cfg.role).toBe(name === 'trainer' ? 'trainer' : 'learner');
    expect(cfg.health).toMatchObject({ enabled: true, port: 8080 });
    expect(cfg.metrics).toMatchObject({ enabled: true, port: 9090 });
  });

  it('learners have distinct node ids and disjoint partitions, and dial the trainer service', async () => {
    const trainer = await load(readFileSync(configMountSource('trainer', compose.services.trainer), 'utf8'), composeEnv(compose.services.trainer));
    const learners = [];
    for (const [name, svc] of services.filter(([n]) => n !== 'trainer')) {
      learners.push({ name, cfg: await load(readFileSync(configMountSource(name, svc), 'utf8'), composeEnv(svc)) });
    }
    expect(new Set(learners.map((l) => l.cfg.node_id)).size).toBe(learners.length);
    const parts = learners.map((l) => l.cfg.datasets[0]!.partition!);
    expect(parts.map((p) => p.partition_id).sort()).toEqual([0, 1, 2]);
    for (const p of parts) expect(p.num_partitions).toBe(learners.length);
    for (const { cfg } of learners) expect(cfg.connect_to).toEqual([`${trainer.node_id}@trainer:${trainer.listen.port}`]);
    expect(trainer.trainer.args.min_clients).toBe(learners.length);
    const devices = Object.fromEntries(learners.map((l) => [l.name, l.cfg.learner.args.device]));
    expect(devices).toEqual({ 'learner-0': 'cpu', 'learner-1': 'cpu', 'learner-gpu': 'cuda:0' });
  });
});
