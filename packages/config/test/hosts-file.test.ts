// The hosts file of `oiafed launch --hosts`: defaults merged under each entry, ${VAR} like a node
// config, and errors that name file, key path and expectation.
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { loadConfig, loadHostsFile } from '@oiafed/config';
import { configError, writeTree } from './helpers.js';

const examples = join(dirname(fileURLToPath(import.meta.url)), '../../../examples');

const HOSTS = `defaults:
  ssh: {user: oiafed, identity_file: ~/.ssh/id_ed25519, options: [-o, ProxyJump=bastion]}
  workdir: /opt/oiafed-ts
  command: [/usr/bin/node, /opt/oiafed-ts/apps/cli/dist/main.js]
  env: {OMP_NUM_THREADS: 1}
trainer:
  host: \${TRAINER_HOST:10.0.0.1}
  config: configs/trainer.yaml
  grpc_port: \${TRAINER_PORT:50051}
learners:
  - {host: 10.0.0.2, config: configs/learner_0.yaml, ssh: {port: 2222}}
  - {node_id: gpu_box, host: 10.0.0.3, config: configs/learner_1.yaml, command: oiafed, env: {CUDA_VISIBLE_DEVICES: "0"}}
`;

describe('loadHostsFile', () => {
  it('merges defaults under each entry (ssh and env key by key) and expands ${VAR}', () => {
    const dir = writeTree({ 'hosts.yaml': HOSTS });
    const hosts = loadHostsFile(join(dir, 'hosts.yaml'), { env: { TRAINER_PORT: '6000' } });
    expect(hosts.trainer).toMatchObject({ node_id: 'trainer', host: '10.0.0.1', grpc_host: '10.0.0.1', grpc_port: 6000, workdir: '/opt/oiafed-ts' });
    expect(hosts.learners[0]).toMatchObject({
      node_id: 'learner_0',
      ssh: { user: 'oiafed', port: 2222, identity_file: '~/.ssh/id_ed25519', options: ['-o', 'ProxyJump=bastion'] },
      command: ['/usr/bin/node', '/opt/oiafed-ts/apps/cli/dist/main.js'],
      env: { OMP_NUM_THREADS: '1' },
    });
    expect(hosts.learners[1]).toMatchObject({ node_id: 'gpu_box', command: 'oiafed', env: { OMP_NUM_THREADS: '1', CUDA_VISIBLE_DEVICES: '0' } });
  });

  it('reports every problem with file and key path', () => {
    const dir = writeTree({
      'bad.yaml': 'trainer: {host: a, config: t.yaml, grpc_port: 0}\nlearners:\n  - {host: b, config: l.yaml, ssh: {identiy_file: k}}\n  - {host: c, config: l.yaml, node_id: trainer}\nextra: 1\n',
      'dup.yaml': 'trainer: {host: a, config: t.yaml}\nlearners:\n  - {host: c, config: l.yaml, node_id: trainer}\n',
      'empty.yaml': 'trainer: {host: a, config: t.yaml}\nlearners: []\n',
    });
    const bad = configError(() => loadHostsFile(join(dir, 'bad.yaml'), { env: {} })).message;
    expect(bad).toMatch(/bad\.yaml: trainer\.grpc_port: must be >= 1 \(got 0\)/);
    expect(bad).toMatch(/bad\.yaml: learners\[0\]\.ssh: unknown key "identiy_file" .*did you mean "identity_file"\?/);
    expect(bad).toMatch(/bad\.yaml: \(root\): unknown key "extra"/);
    expect(configError(() => loadHostsFile(join(dir, 'dup.yaml'), { env: {} })).message).toMatch(
      /dup\.yaml: learners\[0\]\.node_id: node id "trainer" is used twice/,
    );
    expect(configError(() => loadHostsFile(join(dir, 'empty.yaml'), { env: {} })).message).toMatch(/empty\.yaml: learners: must NOT have fewer than 1 items/);
    expect(configError(() => loadHostsFile(join(dir, 'missing.yaml'), { env: {} })).message).toMatch(/missing\.yaml: cannot read config: file not found/);
  });

  it('examples/hosts: the hosts file and the configs it names load with the env it gives each host', () => {
    const hosts = loadHostsFile(join(examples, 'hosts/hosts.yaml'), { env: {} });
    expect(hosts.trainer).toMatchObject({ host: '192.168.1.1', grpc_port: 50051, workdir: '/opt/oiafed-ts' });
    const trainer = loadConfig(join(examples, '..', hosts.trainer.config), { env: hosts.trainer.env });
    expect(trainer.trainer.args.min_clients).toBe(hosts.learners.length);
    hosts.learners.forEach((entry, i) => {
      const learner = loadConfig(join(examples, '..', entry.config), { env: entry.env });
      expect(learner.node_id).toBe(entry.node_id);
      expect(learner.datasets[0]!.partition).toMatchObject({ partition_id: i, num_partitions: hosts.learners.length });
      expect(learner.connect_to).toEqual([`trainer@${hosts.trainer.host}:${hosts.trainer.grpc_port}`]);
    });
  });
});
