import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { roundAccuracies, runCli, tempDir, writeYaml } from './helpers.js';

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
