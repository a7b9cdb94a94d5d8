import { existsSync, mkdirSync, readFileSync, realpathSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { freeLoopbackPort } from '@oiafed/core';
import { describe, expect, it } from 'vitest';
import { collect, repoRoot, roundAccuracies, runCli, startCli, tempDir, writeYaml } from './helpers.js';

/** A small synthetic federation whose aggregator section is the only thing the tests vary. */
function trainerYaml(aggregator: string, rounds: number): string {
  return `exp_name: plugin-e2e
node_id: trainer
role: trainer
seed: 5
listen: {host: 127.0.0.1, port: 0}
transport: {mode: grpc}
trainer:
  type: default
  args: {max_rounds: ${rounds}, local_epochs: 1, client_fraction: 1.0, min_clients: 2, round_timeout: 120, registration_timeout: 60}
learner:
  type: default
  args: {batch_size: 32, lr: 0.05, optimizer: sgd, momentum: 0.5, device: cpu}
aggregator: ${aggregator}
model: {type: mlp, args: {hidden: [32], num_classes: 10}}
datasets:
  - type: synthetic
    args: {alpha: 0.5, beta: 0.5, samples_per_client: 300}
    partition: {num_partitions: 2}
heartbeat: {enabled: true, interval: 2, timeout: 10}
retry: {max_attempts: 20, backoff_strategy: exponential, initial_delay: 0.2, max_delay: 2}
tracker:
  backends: [{type: console, level: info}]
`;
}

/** Rows of the partition-stats table: `part c0..c9 total labels`, plus the `all` row. */
function histogramRows(stdout: string): { rows: Array<{ part: number; total: number; labels: number }>; all: { total: number; labels: number } } {
  const rows: Array<{ part: number; total: number; labels: number }> = [];
  let all: { total: number; labels: number } | undefined;
  for (const line of stdout.split('\n')) {
    const cells = line.trim().split(/[\s|]+/).filter(Boolean);
    if (cells.length < 4 || !cells.slice(1).every((c) => /^\d+$/.test(c))) continue;
    const total = Number(cells.at(-2));
    const labels = Number(cells.at(-1));
    if (cells[0] === 'all') all = { total, labels };
    else if (/^\d+$/.test(cells[0]!)) rows.push({ part: Number(cells[0]), total, labels });
  }
  if (!all) throw new Error(`no "all" row in partition-stats output:\n${stdout}`);
  return { rows, all };
}

describe('an aggregation plugin chosen purely by config', () => {
  it('trains a trainer + 2 learner processes with aggregator my_algo from @acme/oiafed-aggregator-example', async () => {
    const dir = tempDir('plugin');
    const config = writeYaml(
      dir,
      'trainer.yaml',
      trainerYaml('{type: my_algo, package: "@acme/oiafed-aggregator-example", args: {server_lr: 1.0}}', 3),
    );
    const runDir = join(dir, 'run');
    const result = await runCli(['launch', '--config', config, '--num-clients', '2', '--run-dir', runDir], { timeoutMs: 180_000 });
    expect(result.code, result.stderr.slice(-3000)).toBe(0);
    expect(result.stdout).toMatch(/^done: 3 rounds/m);
    const accuracies = roundAccuracies(result.stdout);
    expect(accuracies).toHaveLength(3);
    // 10 classes: chance is 10%.
    expect(accuracies.at(-1)!).toBeGreaterThan(0.2);
    const trainerLog = readFileSync(join(runDir, 'launch', 'trainer.log'), 'utf8') + result.stderr;
    expect(trainerLog).toContain('loaded plugin @acme/oiafed-aggregator-example');
    const history = readFileSync(join(runDir, 'history.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(history.map((r) => r.participants)).toEqual([2, 2, 2]);
    expect(history.every((r) => r.aggregated === true)).toBe(true);
  });

  it('exits 1 naming aggregator.package when the package does not exist', async () => {
    const dir = tempDir('plugin-missing');
    const config = writeYaml(
      dir,
      'trainer.yaml',
      trainerYaml('{type: my_algo, package: "@acme/oiafed-no-such-aggregator"}', 1),
    );
    const result = await runCli(['run', '--config', config], { cwd: dir, timeoutMs: 60_000 });
    expect(result.code, result.stdout + result.stderr.slice(-3000)).toBe(1);
    expect(result.stderr).toContain('aggregator.package');
    expect(result.stderr).toContain('@acme/oiafed-no-such-aggregator');
  });
});

/** A model plugin: a seeded linear classifier registered as `plugin_linear`. */
const MODEL_PLUGIN = `import * as tfl from '@tensorflow/tfjs-layers';
import { registerModel } from '@oiafed/models';

function pluginLinear(args, ctx) {
  const model = tfl.sequential({ name: 'plugin_linear' });
  model.add(tfl.layers.dense({
    name: 'plugin_fc',
    units: ctx.numClasses,
    inputShape: ctx.inputShape,
    kernelInitializer: tfl.initializers.glorotUniform({ seed: ctx.seed ?? 1 }),
  }));
  return model;
}

export function register() {
  registerModel('plugin_linear', pluginLinear);
}
`;

/** A dataset plugin: two well separated 8-dimensional blobs registered as `plugin_blobs`. */
const DATASET_PLUGIN = `import { createDataset, registerDataset } from '@oiafed/datasets';

function blobs(name, n, offset) {
  const features = new Float32Array(n * 8);
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    labels[i] = i % 2;
    for (let j = 0; j < 8; j++) features[i * 8 + j] = (labels[i] === 1 ? 1 : -1) + (((i + offset) * 7 + j * 13) % 10) / 20 - 0.25;
  }
  return createDataset({ name, features, labels, sampleShape: [8], numClasses: 2 });
}

export function register() {
  registerDataset('plugin_blobs', async () => ({ train: blobs('plugin_blobs/train', 200, 0), test: blobs('plugin_blobs/test', 60, 3) }));
}
`;

/**
 * A user's project: the two plugins as files, the @oiafed packages and tfjs in its node_modules
 * (links to this repo's copies, as `npm install` would provide them), and an optional bare-name
 * plugin package `oiafed-plugin-tiny` (ESM-only exports) installed there too.
 */
function pluginProject(prefix: string): string {
  const project = tempDir(prefix);
  writeFileSync(join(project, 'model-plugin.mjs'), MODEL_PLUGIN);
  writeFileSync(join(project, 'dataset-plugin.mjs'), DATASET_PLUGIN);
  const link = (name: string, target: string) => {
    mkdirSync(dirname(join(project, 'node_modules', name)), { recursive: true });
    symlinkSync(realpathSync(target), join(project, 'node_modules', name));
  };
  link('@oiafed/models', join(repoRoot, 'packages/models'));
  link('@oiafed/datasets', join(repoRoot, 'packages/datasets'));
  link('@tensorflow/tfjs-layers', join(repoRoot, 'node_modules/@tensorflow/tfjs-layers'));
  const pkg = join(project, 'node_modules/oiafed-plugin-tiny');
  mkdirSync(pkg);
  writeFileSync(join(pkg, 'package.json'), JSON.stringify({ name: 'oiafed-plugin-tiny', version: '1.0.0', type: 'module', exports: { '.': { import: './index.mjs' } } }));
  writeFileSync(join(pkg, 'index.mjs'), MODEL_PLUGIN);
  return project;
}

/** A trainer on the plugin dataset with the plugin model, 2 rounds, 2 learners. */
function pluginTrainerYaml(plugins: string[], port = 0): string {
  return `exp_name: plugin-types
node_id: trainer
role: trainer
seed: 11
listen: {host: 127.0.0.1, port: ${port}}
transport: {mode: grpc}
plugins: [${plugins.join(', ')}]
trainer:
  type: default
  args: {max_rounds: 2, local_epochs: 1, client_fraction: 1.0, min_clients: 2, round_timeout: 120, registration_timeout: 90}
learner:
  type: default
  args: {batch_size: 20, lr: 0.1, optimizer: sgd, device: cpu}
aggregator: {type: fedavg}
model: {type: plugin_linear, args: {num_classes: 2}}
datasets:
  - type: plugin_blobs
    partition: {num_partitions: 2}
heartbeat: {enabled: true, interval: 2, timeout: 10}
retry: {max_attempts: 200, backoff_strategy: constant, initial_delay: 0.5, max_delay: 0.5}
tracker:
  backends: [{type: console, level: info}]
`;
}

function learnerYaml(index: number, port: number): string {
  return `node_id: learner_${index}
role: learner
seed: 11
connect_to: [trainer@127.0.0.1:${port}]
transport: {mode: grpc}
plugins: [./model-plugin.mjs, ./dataset-plugin.mjs]
learner:
  type: default
  args: {batch_size: 20, lr: 0.1, optimizer: sgd, device: cpu}
datasets:
  - type: plugin_blobs
    partition: {num_partitions: 2, partition_id: ${index}}
retry: {max_attempts: 200, backoff_strategy: constant, initial_delay: 0.5, max_delay: 0.5}
tracker:
  backends: [{type: console, level: info}]
`;
}

/** Two rounds ran on the plugin types and learned the separable blobs. */
function expectPluginRun(result: { code: number | null; stdout: string; stderr: string }, logs: string): void {
  expect(result.code, result.stdout + result.stderr.slice(-3000)).toBe(0);
  expect(result.stdout).toMatch(/^done: 2 rounds/m);
  expect(roundAccuracies(result.stdout).at(-1)!).toBeGreaterThan(0.9);
  expect(logs).toContain('loaded plugin ./model-plugin.mjs');
  expect(logs).toContain('loaded plugin ./dataset-plugin.mjs');
  expect(logs).toContain('model plugin_linear');
}

const PLUGINS = ['./model-plugin.mjs', './dataset-plugin.mjs'];

describe('model and dataset plugins named by a relative path', () => {
  it('serial mode loads them before building the learners', async () => {
    const project = pluginProject('plugin-serial');
    writeYaml(project, 'trainer.yaml', pluginTrainerYaml(PLUGINS));
    // From the project itself, as the bug was first seen: the learners' data was loaded before the plugins.
    const result = await runCli(['run', '--config', 'trainer.yaml', '--mode', 'serial', '--num-clients', '2'], { cwd: project, timeoutMs: 180_000 });
    expectPluginRun(result, result.stderr);
  });

  it('launch mode, run from another directory: every child finds them through the generated configs', async () => {
    const project = pluginProject('plugin-launch');
    const config = writeYaml(project, 'trainer.yaml', pluginTrainerYaml(PLUGINS));
    const runDir = join(tempDir('plugin-launch-run'), 'run');
    const result = await runCli(['launch', '--config', config, '--num-clients', '2', '--run-dir', runDir], {
      cwd: tempDir('plugin-cwd'),
      timeoutMs: 240_000,
    });
    const logs = ['trainer', 'learner_0', 'learner_1'].map((n) => readFileSync(join(runDir, 'launch', `${n}.log`), 'utf8'));
    expectPluginRun(result, logs[0]!);
    for (const log of logs.slice(1)) expect(log).toContain('loaded plugin ./dataset-plugin.mjs');
  });

  it('separate processes run from another directory: a trainer and two learners, each from its own config', async () => {
    const project = pluginProject('plugin-procs');
    const port = await freeLoopbackPort();
    const trainerConfig = writeYaml(project, 'trainer.yaml', pluginTrainerYaml(PLUGINS, port));
    const cwd = tempDir('plugin-cwd');
    const trainer = collect(startCli(['run', '--config', trainerConfig], { cwd }), 240_000);
    const learners = [0, 1].map((i) =>
      collect(startCli(['run', '--config', writeYaml(project, `learner_${i}.yaml`, learnerYaml(i, port))], { cwd }), 240_000),
    );
    const [trainerResult, ...learnerResults] = await Promise.all([trainer, ...learners]);
    expectPluginRun(trainerResult!, trainerResult!.stderr);
    for (const learner of learnerResults) {
      expect(learner!.code, learner!.stderr.slice(-3000)).toBe(0);
      expect(learner!.stderr).toContain('loaded plugin ./model-plugin.mjs');
    }
  });

  it('partition-stats splits a plugin dataset', async () => {
    const project = pluginProject('plugin-pstats');
    const config = writeYaml(project, 'trainer.yaml', pluginTrainerYaml(PLUGINS));
    const result = await runCli(['partition-stats', config, '--out', join(project, 'x.html')], { cwd: tempDir('plugin-cwd'), timeoutMs: 60_000 });
    expect(result.code, result.stderr.slice(-3000)).toBe(0);
    expect(result.stdout).toContain('plugin_blobs / iid / 2 partitions');
    expect(histogramRows(result.stdout).all).toEqual({ total: 200, labels: 2 });
  });
});

describe('a plugin named by its package name', () => {
  it("is found in the config's project although the CLI runs from elsewhere", async () => {
    const project = pluginProject('plugin-bare');
    const config = writeYaml(project, 'trainer.yaml', pluginTrainerYaml(['oiafed-plugin-tiny', './dataset-plugin.mjs']));
    const result = await runCli(['run', '--config', config, '--mode', 'serial', '--num-clients', '2'], { cwd: tempDir('plugin-cwd'), timeoutMs: 180_000 });
    expect(result.code, result.stdout + result.stderr.slice(-3000)).toBe(0);
    expect(result.stdout).toMatch(/^done: 2 rounds/m);
    expect(result.stderr).toContain(`loaded plugin oiafed-plugin-tiny from ${join(realpathSync(project), 'node_modules/oiafed-plugin-tiny/index.mjs')}`);
  });

  it('exits 1 listing every place it looked when the package is not installed', async () => {
    const project = tempDir('plugin-none');
    const config = writeYaml(project, 'trainer.yaml', pluginTrainerYaml(['oiafed-plugin-not-installed']));
    const cwd = tempDir('plugin-cwd');
    const result = await runCli(['run', '--config', config], { cwd, timeoutMs: 60_000 });
    expect(result.code, result.stdout + result.stderr.slice(-3000)).toBe(1);
    expect(result.stderr).toContain('plugins[0]: cannot find plugin "oiafed-plugin-not-installed"; looked in:');
    expect(result.stderr).toContain(`node_modules from ${project} upward (the config file's directory)`);
    expect(result.stderr).toContain(`node_modules from ${cwd} upward (the working directory)`);
    expect(result.stderr).toContain("upward (the CLI's own location (@oiafed/core))");
    expect(result.stderr).toContain('npm install oiafed-plugin-not-installed');
  });
});

describe('oiafed partition-stats', () => {
  it('prints a per-partition label histogram of a Dirichlet split and writes an HTML chart', async () => {
    const dir = tempDir('pstats');
    const config = writeYaml(
      dir,
      'trainer.yaml',
      `exp_name: pstats
node_id: trainer
role: trainer
seed: 3
model: {type: mlp}
datasets:
  - type: synthetic
    args: {iid: true, samples_per_client: 200, num_clients: 10}
    partition: {strategy: dirichlet, config: {alpha: 0.1}}
`,
    );
    const out = join(dir, 'x.html');
    const result = await runCli(['partition-stats', config, '--num-partitions', '10', '--out', out], { cwd: dir, timeoutMs: 60_000 });
    expect(result.code, result.stderr.slice(-3000)).toBe(0);
    expect(result.stdout).toContain('dirichlet');
    const { rows, all } = histogramRows(result.stdout);
    expect(rows.map((r) => r.part)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(rows.reduce((sum, r) => sum + r.total, 0)).toBe(all.total);
    expect(all.labels).toBe(10);
    // Dir(0.1) leaves most partitions without some classes; an IID split would not.
    expect(rows.filter((r) => r.labels < 10).length).toBeGreaterThanOrEqual(5);
    expect(existsSync(out)).toBe(true);
    const html = readFileSync(out, 'utf8');
    expect(html).toContain('<svg');
    expect(html).toContain('</html>');
  });

  const fashion = '/usr/share/datasets/fashion-mnist/train-labels-idx1-ubyte.gz';
  it('splits the installed Fashion-MNIST into #C=2 label-skew partitions of exactly 2 labels each', async (ctx) => {
    if (!existsSync(fashion)) {
      ctx.skip(`Fashion-MNIST is not installed (${fashion} missing): apt-get install dataset-fashion-mnist`);
    }
    const dir = tempDir('pstats-fmnist');
    const config = writeYaml(
      dir,
      'trainer.yaml',
      `exp_name: pstats-fmnist
node_id: trainer
role: trainer
seed: 1
model: {type: lenet}
datasets:
  - type: fashion_mnist
    partition: {strategy: label_skew, config: {num_labels_per_client: 2}}
`,
    );
    const out = join(dir, 'x.html');
    const result = await runCli(['partition-stats', config, '--num-partitions', '10', '--out', out], { cwd: dir, timeoutMs: 90_000 });
    expect(result.code, result.stderr.slice(-3000)).toBe(0);
    expect(result.stdout).toContain('label_skew');
    const { rows, all } = histogramRows(result.stdout);
    expect(rows).toHaveLength(10);
    expect(rows.every((r) => r.labels === 2)).toBe(true);
    expect(all.total).toBe(60_000);
    expect(readFileSync(out, 'utf8')).toContain('<svg');
  });
});
