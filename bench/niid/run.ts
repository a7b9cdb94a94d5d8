/**
 * NIID-Bench (Li et al., ICDE 2022) on Fashion-MNIST: FedAvg, FedProx, SCAFFOLD and FedNova over
 * IID, Dir(0.5), #C=1, #C=2 and #C=3 partitions of 10 parties, all sampled every round, with the
 * paper's CNN (`lenet`), batch 64, SGD lr 0.01 momentum 0.9, weight decay 1e-5.
 *
 *   npm run bench:niid -- [--rounds 50] [--epochs 10] [--fraction 1] [--algorithms fedavg,fedprox,scaffold,fednova]
 *                         [--partitions iid,dir0.5,c1,c2,c3] [--eval-every N] [--test-fraction 1] [--seed 1]
 *                         [--no-write] [--json]
 *
 * The defaults are the paper's full setting (50 rounds x 10 local epochs on all 60,000 images);
 * `--fraction` trains on a seeded random share of the training set and `--epochs`/`--rounds` shrink
 * the schedule for machines that cannot afford it. Each (algorithm, partition) cell runs one
 * federation in this process through core's `runSerial` with a config built by `resolveConfig`,
 * so the bench exercises the same path as `oiafed run --mode serial`. The table is printed next
 * to an independent reproduction's numbers and written to docs/benchmarks.md under `## bench:niid`.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir, cpus } from 'node:os';
import { join } from 'node:path';
import { resolveConfig } from '@oiafed/config';
import { runSerial, type TrainingSummary } from '@oiafed/core';
import { createRng, loadDataset, registerDataset, subset, type ArrayDataset, type DatasetSpec } from '@oiafed/datasets';
import { COUNT, FRACTION, INTEGER, listFlag, numberFlag, readFlags } from '../args.js';
import { writeDocsSection } from '../docs-section.js';

const ALGORITHMS: Record<string, { type: string; args: Record<string, unknown>; label: string }> = {
  fedavg: { type: 'fedavg', args: {}, label: 'FedAvg' },
  fedprox: { type: 'fedprox', args: { mu: 0.01 }, label: 'FedProx' },
  scaffold: { type: 'scaffold', args: {}, label: 'SCAFFOLD' },
  fednova: { type: 'fednova', args: {}, label: 'FedNova' },
};

interface PartitionDef {
  label: string;
  strategy: 'iid' | 'dirichlet' | 'label_skew';
  config: Record<string, number>;
}

function partitionDef(key: string): PartitionDef {
  if (key === 'iid') return { label: 'IID', strategy: 'iid', config: {} };
  const dir = /^dir([0-9.]+)$/.exec(key);
  if (dir) return { label: `Dir(${dir[1]})`, strategy: 'dirichlet', config: { alpha: Number(dir[1]) } };
  const c = /^c([0-9]+)$/.exec(key);
  if (c) return { label: `#C=${c[1]}`, strategy: 'label_skew', config: { num_labels_per_client: Number(c[1]) } };
  throw new Error(`--partitions: unknown partition "${key}"; expected iid, dir<alpha> (e.g. dir0.5) or c<k> (e.g. c2)`);
}

/** Test accuracy % of an independent NIID-Bench reproduction (50 rounds, one seed). */
const REFERENCE: Record<string, Record<string, number>> = {
  fedavg: { iid: 89.0, 'dir0.5': 88.4, c1: 10.0, c2: 81.0, c3: 83.2 },
  scaffold: { iid: 89.5, 'dir0.5': 88.4, c1: 10.0, c2: 10.0, c3: 84.2 },
  fedprox: { iid: 89.5, 'dir0.5': 88.6, c1: 38.0, c2: 78.8, c3: 82.5 },
  fednova: { iid: 89.3, 'dir0.5': 88.1, c1: 11.1, c2: 70.5, c3: 83.2 },
};
const REFERENCE_PARTITIONS = ['iid', 'dir0.5', 'c1', 'c2', 'c3'];

interface Options {
  rounds: number;
  epochs: number;
  fraction: number;
  testFraction: number;
  evalEvery: number;
  seed: number;
  algorithms: string[];
  partitions: string[];
  json: boolean;
  write: boolean;
  dataDir?: string;
}

function parseOptions(argv: string[]): Options {
  const v = readFlags(
    argv,
    {
      rounds: { type: 'string', default: '50' },
      epochs: { type: 'string', default: '10' },
      fraction: { type: 'string', default: '1' },
      'test-fraction': { type: 'string', default: '1' },
      'eval-every': { type: 'string' },
      seed: { type: 'string', default: '1' },
      'data-dir': { type: 'string' },
      algorithms: { type: 'string', default: Object.keys(ALGORITHMS).join(',') },
      partitions: { type: 'string', default: REFERENCE_PARTITIONS.join(',') },
      json: { type: 'boolean', default: false },
      'no-write': { type: 'boolean', default: false },
    },
    'bench/niid/run.ts',
  );
  const algorithms = listFlag(v.algorithms);
  for (const a of algorithms) {
    if (!ALGORITHMS[a]) throw new Error(`--algorithms: unknown "${a}"; expected some of ${Object.keys(ALGORITHMS).join(',')}`);
  }
  const partitions = listFlag(v.partitions);
  partitions.forEach(partitionDef);
  const rounds = numberFlag('--rounds', v.rounds, COUNT);
  return {
    rounds,
    epochs: numberFlag('--epochs', v.epochs, COUNT),
    fraction: numberFlag('--fraction', v.fraction, FRACTION),
    testFraction: numberFlag('--test-fraction', v['test-fraction'], FRACTION),
    evalEvery: v['eval-every'] === undefined ? rounds : numberFlag('--eval-every', v['eval-every'], COUNT),
    seed: numberFlag('--seed', v.seed, INTEGER),
    algorithms,
    partitions,
    json: v.json,
    write: !v['no-write'],
    ...(v['data-dir'] === undefined ? {} : { dataDir: v['data-dir'] }),
  };
}

/**
 * `fashion_mnist_fraction`: Fashion-MNIST with a seeded random share of each split, so a reduced
 * run keeps the class balance of the full set in expectation and the same images for every cell.
 */
function registerFractionDataset(): void {
  const split = (ds: ArrayDataset | undefined, fraction: number, seed: number): ArrayDataset | undefined => {
    if (!ds || fraction >= 1) return ds;
    const rng = createRng(seed);
    const order = Array.from({ length: ds.length }, (_, i) => i);
    for (let i = order.length - 1; i > 0; i--) {
      const j = Math.floor(rng.next() * (i + 1));
      [order[i], order[j]] = [order[j]!, order[i]!];
    }
    const keep = order.slice(0, Math.max(1, Math.round(ds.length * fraction))).sort((a, b) => a - b);
    return subset(ds, keep, `${ds.name}[${fraction}]`);
  };
  registerDataset('fashion_mnist_fraction', async (spec: DatasetSpec, options) => {
    const { fraction = 1, test_fraction: testFraction = 1, subset_seed: subsetSeed = 1, ...rest } = (spec.args ?? {}) as Record<string, unknown>;
    const loaded = await loadDataset({ type: 'fashion_mnist', split: spec.split, args: rest }, options);
    return {
      train: split(loaded.train, Number(fraction), Number(subsetSeed)),
      test: split(loaded.test, Number(testFraction), Number(subsetSeed) + 1),
    };
  });
}

function trainerConfig(o: Options, algorithm: string, partition: string, runDir: string): ReturnType<typeof resolveConfig> {
  const alg = ALGORITHMS[algorithm]!;
  const part = partitionDef(partition);
  return resolveConfig(
    {
      exp_name: `niid-${algorithm}-${partition}`,
      node_id: 'trainer',
      role: 'trainer',
      seed: o.seed,
      transport: { mode: 'memory' },
      trainer: {
        type: 'default',
        args: { max_rounds: o.rounds, local_epochs: o.epochs, client_fraction: 1, min_clients: 10, eval_every: o.evalEvery, round_timeout: 86400 },
      },
      learner: { type: 'default', args: { batch_size: 64, lr: 0.01, optimizer: 'sgd', momentum: 0.9, weight_decay: 1e-5, device: 'cpu' } },
      aggregator: { type: alg.type, args: alg.args },
      model: { type: 'lenet' },
      datasets: [
        {
          type: 'fashion_mnist_fraction',
          args: {
            fraction: o.fraction,
            test_fraction: o.testFraction,
            subset_seed: o.seed,
            ...(o.dataDir ? { data_dir: o.dataDir } : {}),
          },
          partition: { strategy: part.strategy, num_partitions: 10, config: { ...part.config, seed: o.seed } },
        },
      ],
      heartbeat: { enabled: false },
      tracker: { backends: [{ type: 'console', level: 'warn' }], run_dir: runDir },
    },
    { file: `<bench:niid ${algorithm}/${partition}>`, env: {} },
  );
}

interface Cell {
  algorithm: string;
  partition: string;
  accuracy: number | null;
  curve: Array<{ round: number; accuracy: number }>;
  seconds: number;
  error?: string;
}

const pct = (v: number | null | undefined): string => (v === null || v === undefined ? '-' : (v * 100).toFixed(1));

function table(o: Options, cells: Cell[]): string {
  const parts = o.partitions;
  const head = `| algorithm | ${parts.map((p) => `${partitionDef(p).label} ours / ref`).join(' | ')} |`;
  const sep = `|---|${parts.map(() => '---').join('|')}|`;
  const rows = o.algorithms.map((a) => {
    const entries = parts.map((p) => {
      const cell = cells.find((c) => c.algorithm === a && c.partition === p);
      const ref = REFERENCE[a]?.[p];
      return `${cell ? (cell.error ? 'error' : pct(cell.accuracy)) : 'not run'} / ${ref === undefined ? '-' : ref.toFixed(1)}`;
    });
    return `| ${ALGORITHMS[a]!.label} | ${entries.join(' | ')} |`;
  });
  return [head, sep, ...rows].join('\n');
}

function describe(o: Options): string {
  const full = o.rounds === 50 && o.epochs === 10 && o.fraction === 1 && o.testFraction === 1;
  return (
    `${full ? 'Full NIID-Bench setting' : 'Reduced setting'}: Fashion-MNIST, ${o.fraction === 1 ? 'all 60,000' : `a seeded ${o.fraction} share of the 60,000`} training images ` +
    `split over 10 parties (all sampled every round), ${o.rounds} rounds x ${o.epochs} local epochs, lenet, batch 64, ` +
    `SGD lr 0.01 momentum 0.9 weight decay 1e-5, FedProx mu 0.01, seed ${o.seed}; test accuracy % on ` +
    `${o.testFraction === 1 ? 'the full 10,000-image test set' : `a ${o.testFraction} share of the test set`} after the last round.`
  );
}

const REF_NOTE =
  'Reference: an independent NIID-Bench reproduction on Fashion-MNIST (50 rounds x 10 local epochs, full data, one seed), ' +
  'test accuracy %. Cells read "ours / reference"; "not run" means the cell was not (or not yet) part of this run.';

function sectionMarkdown(o: Options, cells: Cell[], seconds: number, done: boolean): string {
  const command = `npm run bench:niid -- ${process.argv.slice(2).join(' ')}`.trim();
  const curves = cells
    .filter((c) => c.curve.length > 0)
    .map((c) => `- ${ALGORITHMS[c.algorithm]!.label} ${partitionDef(c.partition).label}: ${c.curve.map((p) => `r${p.round} ${pct(p.accuracy)}`).join(', ')}`);
  return [
    '## bench:niid',
    '',
    describe(o),
    '',
    `Command: \`${command}\` (${done ? '' : 'in progress, '}${seconds.toFixed(0)} s${done ? '' : ' so far'} on ${cpus().length} CPU cores shared with other jobs).`,
    '',
    table(o, cells),
    '',
    REF_NOTE,
    '',
    'Test accuracy % by round:',
    '',
    ...curves,
    '',
  ].join('\n');
}

async function main(): Promise<void> {
  const o = parseOptions(process.argv.slice(2));
  registerFractionDataset();
  const log = (line: string): void => {
    if (!o.json) process.stdout.write(`${line}\n`);
    else process.stderr.write(`${line}\n`);
  };
  log(describe(o));
  const runRoot = mkdtempSync(join(tmpdir(), 'oiafed-niid-'));
  const cells: Cell[] = [];
  const started = Date.now();
  try {
    // partitions outermost: a run cut short still has every algorithm on the first partitions
    for (const partition of o.partitions) {
      for (const algorithm of o.algorithms) {
        const config = trainerConfig(o, algorithm, partition, join(runRoot, `${algorithm}-${partition}`));
        const t0 = Date.now();
        const cell: Cell = { algorithm, partition, accuracy: null, curve: [], seconds: 0 };
        try {
          const summary: TrainingSummary = await runSerial(config, {
            numClients: 10,
            report: (line) => log(`  [${algorithm}/${partition}] ${line}`),
          });
          cell.accuracy = summary.finalAccuracy ?? null;
          cell.curve = summary.rounds
            .filter((r) => typeof r.accuracy === 'number')
            .map((r) => ({ round: r.round, accuracy: r.accuracy! }));
        } catch (error) {
          cell.error = error instanceof Error ? error.message : String(error);
          log(`  [${algorithm}/${partition}] failed: ${cell.error}`);
        }
        cell.seconds = (Date.now() - t0) / 1000;
        cells.push(cell);
        log(`${ALGORITHMS[algorithm]!.label} ${partitionDef(partition).label}: ${pct(cell.accuracy)}% in ${cell.seconds.toFixed(0)}s`);
        // after every cell, so a run stopped early still leaves what it finished in the docs
        if (o.write) writeDocsSection('## bench:niid', sectionMarkdown(o, cells, (Date.now() - started) / 1000, false));
      }
    }
  } finally {
    rmSync(runRoot, { recursive: true, force: true });
  }
  const totalS = (Date.now() - started) / 1000;
  log('');
  log(table(o, cells));
  log(REF_NOTE);
  if (o.write) log(`wrote ${writeDocsSection('## bench:niid', sectionMarkdown(o, cells, totalS, true))}`);
  if (o.json) {
    process.stdout.write(
      `${JSON.stringify({ setting: { ...o }, seconds: totalS, cells, reference: REFERENCE })}\n`,
    );
  }
}

main().catch((error) => {
  process.stderr.write(`bench:niid failed: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
