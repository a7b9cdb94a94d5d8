/**
 * The accuracy cost of central differential privacy (issue 16 §2): serial FedAvg on real Fashion-MNIST
 * (Debian's dataset-fashion-mnist in /usr/share/datasets/fashion-mnist), 10 IID learners, the same
 * rounds, data and seeds, once without DP and once per target epsilon with central DP-FedAvg
 * (`differential_privacy: {mode: central, clip_norm, target_epsilon, delta: 1e-5}`: the noise
 * multiplier is the smallest that keeps max_rounds rounds at sampling rate 1 within the target).
 *
 *   npm run bench:dp -- [--json] [--rounds 10] [--learners 10] [--fraction 0.1] [--model logistic|mlp]
 *                       [--clip 1] [--lr 0.1] [--epsilons 1,4,8] [--threads 1] [--data-dir DIR]
 *
 * `--fraction F` trains on the first F of the 60,000 training images (the test set stays whole).
 * Prints one row per setting; with --json the last stdout line is {"rows": [...], "load_average": ...}.
 */
import { mkdtempSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolveConfig } from '@oiafed/config';
import { runSerial } from '@oiafed/core';
import { loadDataset, registerDataset, subset, type DatasetSpec } from '@oiafed/datasets';
import { noiseMultiplierFor } from '@oiafed/privacy';
import { POSITIVE, numberFlag, numberListFlag, readFlags } from '../args.js';

interface Options {
  rounds: number;
  learners: number;
  fraction: number;
  model: string;
  clip: number;
  lr: number;
  epsilons: number[];
  threads: number;
  dataDir: string;
  json: boolean;
}

interface Row {
  setting: string;
  target_epsilon: number | null;
  noise_multiplier: number | null;
  epsilon_spent: number | null;
  accuracy_by_round: number[];
  final_accuracy: number;
  best_accuracy: number;
  seconds: number;
}

const DELTA = 1e-5;

function parseOptions(argv: string[]): Options {
  const v = readFlags(
    argv,
    {
      rounds: { type: 'string', default: '10' },
      learners: { type: 'string', default: '10' },
      fraction: { type: 'string', default: '0.1' },
      model: { type: 'string', default: 'logistic' },
      clip: { type: 'string', default: '1' },
      lr: { type: 'string', default: '0.1' },
      epsilons: { type: 'string', default: '1,4,8' },
      threads: { type: 'string', default: '1' },
      'data-dir': { type: 'string', default: '/usr/share/datasets/fashion-mnist' },
      json: { type: 'boolean', default: false },
    },
    'bench/dp/run.ts',
  );
  return {
    rounds: numberFlag('--rounds', v.rounds, POSITIVE),
    learners: numberFlag('--learners', v.learners, POSITIVE),
    fraction: Math.min(1, numberFlag('--fraction', v.fraction, POSITIVE)),
    model: v.model,
    clip: numberFlag('--clip', v.clip, POSITIVE),
    lr: numberFlag('--lr', v.lr, POSITIVE),
    epsilons: numberListFlag('--epsilons', v.epsilons, POSITIVE),
    threads: numberFlag('--threads', v.threads, POSITIVE),
    dataDir: v['data-dir'],
    json: v.json,
  };
}

/** `fashion_mnist_head`: Fashion-MNIST with only the first `fraction` of its training images. */
function registerHeadDataset(): void {
  registerDataset(
    'fashion_mnist_head',
    async (spec: DatasetSpec, options) => {
      const { fraction = 1, ...rest } = (spec.args ?? {}) as Record<string, unknown>;
      const loaded = await loadDataset({ type: 'fashion_mnist', split: spec.split, args: rest }, options);
      const train = loaded.train;
      if (!train || Number(fraction) >= 1) return loaded;
      const keep = Array.from({ length: Math.max(1, Math.round(train.length * Number(fraction))) }, (_, i) => i);
      return { ...loaded, train: subset(train, keep, `${train.name}[:${keep.length}]`) };
    },
    { replace: true },
  );
}

function trainerConfig(o: Options, targetEpsilon: number | undefined): ReturnType<typeof resolveConfig> {
  return resolveConfig(
    {
      exp_name: 'bench-dp',
      node_id: 'trainer',
      role: 'trainer',
      seed: 1,
      transport: { mode: 'memory' },
      trainer: {
        type: 'default',
        args: { max_rounds: o.rounds, local_epochs: 1, client_fraction: 1, min_clients: o.learners, eval_every: 1, round_timeout: 86400 },
      },
      learner: { type: 'default', args: { batch_size: 32, lr: o.lr, optimizer: 'sgd', device: 'cpu', threads: o.threads } },
      aggregator: { type: 'fedavg' },
      model: { type: o.model },
      ...(targetEpsilon === undefined ? {} : { differential_privacy: { mode: 'central', clip_norm: o.clip, target_epsilon: targetEpsilon, delta: DELTA } }),
      datasets: [
        {
          type: 'fashion_mnist_head',
          args: { fraction: o.fraction, data_dir: o.dataDir },
          partition: { strategy: 'iid', num_partitions: o.learners, config: { seed: 1 } },
        },
      ],
      heartbeat: { enabled: false },
      tracker: { backends: [{ type: 'console', level: 'warn' }], run_dir: mkdtempSync(join(tmpdir(), 'oiafed-bench-dp-')) },
    },
    { file: '<bench:dp>', env: {} },
  );
}

async function runSetting(o: Options, targetEpsilon: number | undefined): Promise<Row> {
  const started = performance.now();
  const summary = await runSerial(trainerConfig(o, targetEpsilon), { numClients: o.learners });
  const acc = summary.rounds.map((r) => r.accuracy ?? NaN);
  const spent = summary.rounds.at(-1)?.dp_epsilon;
  return {
    setting: targetEpsilon === undefined ? 'no DP' : `central DP, epsilon ${targetEpsilon}`,
    target_epsilon: targetEpsilon ?? null,
    noise_multiplier: targetEpsilon === undefined ? null : noiseMultiplierFor(targetEpsilon, 1, o.rounds, DELTA),
    epsilon_spent: typeof spent === 'number' ? spent : null,
    accuracy_by_round: acc,
    final_accuracy: acc.at(-1) ?? NaN,
    best_accuracy: Math.max(...acc.filter(Number.isFinite)),
    seconds: (performance.now() - started) / 1000,
  };
}

const pct = (v: number) => `${(100 * v).toFixed(2)}%`;

async function main(): Promise<void> {
  const o = parseOptions(process.argv.slice(2));
  const log = (s: string): void => void process.stdout.write(`${s}\n`);
  const loadStart = loadavg();
  log(
    `bench:dp: Fashion-MNIST (first ${Math.round(60000 * o.fraction)} training images, full test set), ${o.model}, ${o.learners} IID learners, ` +
      `${o.rounds} rounds x 1 epoch, batch 32, SGD lr ${o.lr}, every learner every round (q = 1), clip ${o.clip}, delta ${DELTA}; ` +
      `load average at start ${loadStart.map((l) => l.toFixed(2)).join(' ')}`,
  );
  registerHeadDataset();
  const rows: Row[] = [];
  for (const eps of [undefined, ...o.epsilons]) {
    const row = await runSetting(o, eps);
    rows.push(row);
    log(
      `${row.setting.padEnd(24)} z=${row.noise_multiplier === null ? '-' : row.noise_multiplier.toFixed(3)}  eps spent ${row.epsilon_spent === null ? '-' : row.epsilon_spent.toFixed(3)}  ` +
        `final ${pct(row.final_accuracy)}  best ${pct(row.best_accuracy)}  ${row.seconds.toFixed(1)}s`,
    );
  }
  const loadEnd = loadavg();
  log(`load average at end ${loadEnd.map((l) => l.toFixed(2)).join(' ')}`);
  if (o.json) log(JSON.stringify({ options: o, rows, load_average: { start: loadStart, end: loadEnd } }));
}

main().catch((e: unknown) => {
  process.stderr.write(`bench:dp: ${(e as Error).stack ?? String(e)}\n`);
  process.exit(1);
});
