/**
 * bench:pfl (issue 15 §2): FedAvg against every personalized-FL method registered as a learner
 * algorithm, on Fashion-MNIST split over 20 learners with Dirichlet(0.1) label skew (and #C=2 on
 * request). Each learner holds out a quarter of its partition as its own test split
 * (`partition.test_fraction`, stratified per label); the table gives the global model's accuracy on
 * (a share of) the Fashion-MNIST test set and the personalized accuracy: the learners' personalized
 * models on their own splits, weighted by test samples, with the spread across learners.
 *
 *   npm run bench:pfl -- [--partitions dir0.1,c2] [--methods fedavg,fedper,...] [--rounds 10] [--epochs 1]
 *                        [--clients 20] [--fraction 0.05] [--test-fraction 0.25] [--global-test 0.1]
 *                        [--hidden 100] [--eval-every <rounds>] [--seed 1] [--no-write] [--json]
 *   npm run bench:pfl -- --from-json saved.json     (re-renders the docs section of a saved --json run)
 *
 * Methods are discovered: every registered learner algorithm that keeps tensors local or has its
 * own personalized model, plus MOON and FedDyn (global-model methods of the same family), each with
 * its own aggregator when one is registered under its name, else plain averaging. The setting is
 * reduced so the whole table runs in minutes on a loaded CPU (see `describe`); every cell is a real
 * federation through core's `runSerial`, the same path as `oiafed run --mode serial`.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { hasAggregator, registerBuiltins as registerBuiltinAggregators } from '@oiafed/aggregators';
import { resolveConfig } from '@oiafed/config';
import { createLearnerAlgorithm, listLearnerAlgorithms, registerBuiltinLearnerAlgorithms, runSerial, type TrainingSummary } from '@oiafed/core';
import { createRng, loadDataset, registerDataset, subset, type ArrayDataset, type DatasetSpec } from '@oiafed/datasets';
import { COUNT, FRACTION, INTEGER, listFlag, numberFlag, numberListFlag, readFlags } from '../args.js';
import { writeDocsSection } from '../docs-section.js';

/** Global-model methods of the issue's family, benchmarked beside the personalized ones. */
const GLOBAL_FAMILY = ['moon', 'feddyn'];
/** Why a method is not expected to beat FedAvg's personalized accuracy here, said beside the table when it does not. */
const WHY_NOT: Record<string, string> = {
  fedbn: 'FedBN keeps only normalization layers local and this MLP has none, so it is FedAvg here (identical numbers by construction)',
  moon: "MOON trains one global model (its personalized model is that model), so it can only gain what a better global model gains on each learner's split",
  feddyn: "FedDyn trains one global model (its personalized model is that model), so it can only gain what a better global model gains on each learner's split",
};
/** Algorithm args the bench sets (each method's defaults otherwise). */
const METHOD_ARGS: Record<string, Record<string, unknown>> = {
  // FedRep's paper trains the head for 10 epochs per round; 2 keep the reduced run short.
  fedrep: { head_epochs: 2 },
  // FedBABU fine-tunes before each personalized evaluation (its paper: 5 epochs of the whole model).
  fedbabu: { finetune_epochs: 5 },
};

/**
 * Personalized accuracy % reported by PFLlib's benchmark (pfllib.com/benchmark.html, Zhang et al.,
 * "PFLlib", JMLR 2025) on Fashion-MNIST with 20 clients, each client's data split 75/25 train/test:
 * pathological label skew (2 classes per client) and practical Dirichlet(0.1). Only the rows read
 * from that page are here; other methods report no Fashion-MNIST figure in a comparable setting.
 */
const REFERENCE: Record<string, Record<string, number>> = {
  fedavg: { c2: 80.41, 'dir0.1': 85.85 },
  ditto: { c2: 99.44, 'dir0.1': 97.47 },
};

interface PartitionDef {
  label: string;
  strategy: 'dirichlet' | 'label_skew';
  config: Record<string, number>;
}

function partitionDef(key: string): PartitionDef {
  const dir = /^dir([0-9.]+)$/.exec(key);
  if (dir) return { label: `Dir(${dir[1]})`, strategy: 'dirichlet', config: { alpha: Number(dir[1]), min_size: 10 } };
  const c = /^c([0-9]+)$/.exec(key);
  if (c) return { label: `#C=${c[1]}`, strategy: 'label_skew', config: { num_labels_per_client: Number(c[1]) } };
  throw new Error(`--partitions: unknown partition "${key}"; expected dir<alpha> (e.g. dir0.1) or c<k> (e.g. c2)`);
}

interface Options {
  rounds: number;
  epochs: number;
  clients: number;
  fraction: number;
  testFraction: number;
  globalTest: number;
  hidden: number[];
  evalEvery: number;
  seed: number;
  methods: string[];
  partitions: string[];
  json: boolean;
  write: boolean;
  /** Re-render the docs section from a saved `--json` output instead of running. */
  fromJson?: string;
}

/** fedavg, then the registered personalized methods, then MOON and FedDyn when registered. */
function discoverMethods(): string[] {
  registerBuiltinLearnerAlgorithms();
  const personalized = listLearnerAlgorithms().filter((type) => {
    try {
      const instance = createLearnerAlgorithm({ type, args: METHOD_ARGS[type] });
      return typeof instance.keepsLocal === 'function' || typeof instance.personalizedWeights === 'function';
    } catch {
      return false;
    }
  });
  const global = GLOBAL_FAMILY.filter((type) => listLearnerAlgorithms().includes(type));
  return ['fedavg', ...personalized.sort(), ...global];
}

function parseOptions(argv: string[]): Options {
  const v = readFlags(
    argv,
    {
      rounds: { type: 'string', default: '10' },
      epochs: { type: 'string', default: '1' },
      clients: { type: 'string', default: '20' },
      fraction: { type: 'string', default: '0.05' },
      'test-fraction': { type: 'string', default: '0.25' },
      'global-test': { type: 'string', default: '0.1' },
      hidden: { type: 'string', default: '100' },
      'eval-every': { type: 'string' },
      seed: { type: 'string', default: '1' },
      methods: { type: 'string', default: '' },
      partitions: { type: 'string', default: 'dir0.1' },
      json: { type: 'boolean', default: false },
      'no-write': { type: 'boolean', default: false },
      'from-json': { type: 'string' },
    },
    'bench/pfl/run.ts',
  );
  const partitions = listFlag(v.partitions);
  partitions.forEach(partitionDef);
  const known = discoverMethods();
  const methods = v.methods === '' ? known : listFlag(v.methods);
  for (const m of methods) {
    if (m !== 'fedavg' && !listLearnerAlgorithms().includes(m)) throw new Error(`--methods: "${m}" is no registered learner algorithm; known: ${known.join(',')}`);
  }
  const rounds = numberFlag('--rounds', v.rounds, COUNT);
  return {
    rounds,
    epochs: numberFlag('--epochs', v.epochs, COUNT),
    clients: numberFlag('--clients', v.clients, { test: (n) => COUNT.test(n) && n >= 2, expected: 'an integer >= 2' }),
    fraction: numberFlag('--fraction', v.fraction, FRACTION),
    testFraction: numberFlag('--test-fraction', v['test-fraction'], { test: (n) => n > 0 && n <= 0.5, expected: 'a number in (0, 0.5]' }),
    globalTest: numberFlag('--global-test', v['global-test'], FRACTION),
    hidden: numberListFlag('--hidden', v.hidden, COUNT),
    evalEvery: v['eval-every'] === undefined ? rounds : numberFlag('--eval-every', v['eval-every'], COUNT),
    seed: numberFlag('--seed', v.seed, INTEGER),
    methods,
    partitions,
    json: v.json,
    write: !v['no-write'],
    ...(v['from-json'] === undefined ? {} : { fromJson: v['from-json'] }),
  };
}

/** A seeded random share of a split, so a reduced run keeps the class balance in expectation. */
function share(ds: ArrayDataset | undefined, fraction: number, seed: number): ArrayDataset | undefined {
  if (!ds || fraction >= 1) return ds;
  const order = Int32Array.from({ length: ds.length }, (_, i) => i);
  const rng = createRng(seed);
  for (let i = order.length - 1; i > 0; i--) {
    const j = rng.nextInt(i + 1);
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  const keep = Array.from(order.subarray(0, Math.max(1, Math.round(ds.length * fraction)))).sort((a, b) => a - b);
  return subset(ds, keep, `${ds.name}[${fraction}]`);
}

/** `fashion_mnist_share`: Fashion-MNIST with seeded shares of its train and test splits. */
function registerShareDataset(): void {
  registerDataset(
    'fashion_mnist_share',
    async (spec: DatasetSpec, options) => {
      const { fraction = 1, test_share: testShare = 1, share_seed: seed = 1, ...rest } = (spec.args ?? {}) as Record<string, unknown>;
      const loaded = await loadDataset({ type: 'fashion_mnist', split: spec.split, args: rest }, options);
      return { train: share(loaded.train, Number(fraction), Number(seed)), test: share(loaded.test, Number(testShare), Number(seed) + 1) };
    },
    { replace: true },
  );
}

function aggregatorFor(method: string): string {
  return method !== 'fedavg' && hasAggregator(method) ? method : 'fedavg';
}

function trainerConfig(o: Options, method: string, partition: string, runDir: string): ReturnType<typeof resolveConfig> {
  const part = partitionDef(partition);
  return resolveConfig(
    {
      exp_name: `pfl-${method}-${partition}`,
      node_id: 'trainer',
      role: 'trainer',
      seed: o.seed,
      transport: { mode: 'memory' },
      trainer: {
        type: 'default',
        args: { max_rounds: o.rounds, local_epochs: o.epochs, client_fraction: 1, min_clients: o.clients, eval_every: o.evalEvery, round_timeout: 86400 },
      },
      learner: {
        type: method === 'fedavg' ? 'default' : method,
        // One thread: the learners take turns on a loaded machine, where worker threads only add overhead.
        args: { batch_size: 32, lr: 0.05, optimizer: 'sgd', momentum: 0.5, device: 'cpu', threads: 1, ...METHOD_ARGS[method] },
      },
      aggregator: { type: aggregatorFor(method) },
      model: { type: 'mlp', args: { hidden: o.hidden } },
      datasets: [
        {
          type: 'fashion_mnist_share',
          args: { fraction: o.fraction, test_share: o.globalTest, share_seed: o.seed },
          partition: { strategy: part.strategy, num_partitions: o.clients, config: { ...part.config, seed: o.seed }, test_fraction: o.testFraction },
        },
      ],
      heartbeat: { enabled: false },
      tracker: { backends: [{ type: 'console', level: 'warn' }], run_dir: runDir },
    },
    { file: `<bench:pfl ${method}/${partition}>`, env: {} },
  );
}

interface Cell {
  method: string;
  partition: string;
  aggregator: string;
  global: number | null;
  personalized: number | null;
  std: number | null;
  min: number | null;
  max: number | null;
  seconds: number;
  error?: string;
}

const pct = (v: number | null | undefined): string => (v === null || v === undefined ? '-' : (v * 100).toFixed(1));

async function runCell(o: Options, method: string, partition: string, runRoot: string, log: (line: string) => void): Promise<Cell> {
  const t0 = Date.now();
  const cell: Cell = { method, partition, aggregator: aggregatorFor(method), global: null, personalized: null, std: null, min: null, max: null, seconds: 0 };
  try {
    const config = trainerConfig(o, method, partition, join(runRoot, `${method}-${partition}`));
    const summary: TrainingSummary = await runSerial(config, { numClients: o.clients, report: (line) => log(`  [${method}/${partition}] ${line}`) });
    const last = [...summary.rounds].reverse().find((r) => typeof r.personalized_accuracy === 'number');
    cell.global = summary.finalAccuracy ?? null;
    cell.personalized = last?.personalized_accuracy ?? null;
    cell.std = last?.personalized_accuracy_std ?? null;
    cell.min = last?.personalized_accuracy_min ?? null;
    cell.max = last?.personalized_accuracy_max ?? null;
  } catch (error) {
    cell.error = error instanceof Error ? error.message : String(error);
    log(`  [${method}/${partition}] failed: ${cell.error}`);
  }
  cell.seconds = (Date.now() - t0) / 1000;
  return cell;
}

function verdict(cell: Cell, fedavg: Cell | undefined): string {
  if (cell.method === 'fedavg') return 'baseline';
  if (cell.error) return 'error';
  if (cell.personalized === null || !fedavg || fedavg.personalized === null) return '-';
  const gain = (cell.personalized - fedavg.personalized) * 100;
  return `${gain >= 0 ? '+' : ''}${gain.toFixed(1)} ${gain > 0 ? 'beats' : 'does not beat'} FedAvg`;
}

function table(o: Options, cells: Cell[]): string {
  const head = '| partition | method | aggregator | global acc % | personalized acc % (sd, min-max) | paper (personalized %) | vs FedAvg personalized | time |';
  const sep = '|---|---|---|---|---|---|---|---|';
  const rows = cells.map((c) => {
    const fedavg = cells.find((x) => x.method === 'fedavg' && x.partition === c.partition);
    const ref = REFERENCE[c.method]?.[c.partition];
    const spread = c.personalized === null ? '' : ` (${pct(c.std)}, ${pct(c.min)}-${pct(c.max)})`;
    const personalized = c.error ? `error: ${c.error.slice(0, 80)}` : `${pct(c.personalized)}${spread}`;
    return `| ${partitionDef(c.partition).label} | ${c.method} | ${c.aggregator} | ${pct(c.global)} | ${personalized} | ${ref === undefined ? '-' : ref.toFixed(2)} | ${verdict(c, fedavg)} | ${c.seconds.toFixed(0)} s |`;
  });
  return [head, sep, ...rows].join('\n');
}

function describe(o: Options): string {
  return (
    `Reduced setting: Fashion-MNIST, a seeded ${o.fraction} share of the 60,000 training images split over ${o.clients} learners ` +
    `(all sampled every round); each learner holds out ${o.testFraction} of its partition as its own test split (stratified per label). ` +
    `MLP 784-${o.hidden.join('-')}-10 (PFLlib's DNN for Fashion-MNIST is 784-100-10), SGD lr 0.05 momentum 0.5, batch 32, ` +
    `${o.rounds} rounds x ${o.epochs} local epoch(s), seed ${o.seed}. ` +
    `Global accuracy: the final global model on a ${o.globalTest} share of the 10,000 test images; personalized accuracy: each learner's ` +
    `personalized model (global model with what the method keeps local, or the method's own) on its own split, weighted by test samples, ` +
    `at the last round (sd, min-max across learners). Method args: ${JSON.stringify(METHOD_ARGS)}, otherwise each method's defaults. ` +
    `FedBN keeps normalization layers local and this MLP has none: it runs as FedAvg here.`
  );
}

const REF_NOTE =
  'Paper column: PFLlib benchmark (pfllib.com/benchmark.html), Fashion-MNIST, 20 clients, a 4-layer CNN trained for far more rounds ' +
  'on all 70,000 images, each client\'s data split 75/25 train/test; "c2" is its pathological label skew (a few classes per client, ' +
  '2 by the library\'s default) and "dir0.1" its practical Dirichlet(0.1); ours are NIID-Bench\'s #C=2 and Dir(0.1) partitioners. ' +
  'Its FedAvg figure is the global model on the clients\' test splits, as our FedAvg ' +
  'personalized column. The other methods\' papers report no Fashion-MNIST figure in a comparable setting ("-"). Our run is ' +
  'much shorter, on a twentieth of the data and with an MLP, so absolute numbers are lower; the comparison that matters is each ' +
  'method against FedAvg on the same split.';

/** The command line of this run, as the docs show it. */
const COMMAND = `npm run bench:pfl -- ${process.argv.slice(2).join(' ')}`.trim();

function sectionMarkdown(o: Options, cells: Cell[], seconds: number, done: boolean, load: number[], command = COMMAND): string {
  const losers = cells.filter((c) => c.method !== 'fedavg' && verdict(c, cells.find((x) => x.method === 'fedavg' && x.partition === c.partition)).includes('does not beat'));
  return [
    '## bench:pfl',
    '',
    describe(o),
    '',
    `Command: \`${command}\` (${done ? '' : 'in progress, '}${seconds.toFixed(0)} s${done ? '' : ' so far'} on ${cpus().length} CPU cores ` +
      `shared with other jobs; load average at the start ${load.map((l) => l.toFixed(1)).join(', ')})` +
      (o.partitions.length > 1 ? `; the default \`npm run bench:pfl -- --json\` runs Dir(0.1) only, about 1/${o.partitions.length} of this.` : '.'),
    '',
    table(o, cells),
    '',
    REF_NOTE,
    '',
    losers.length === 0
      ? 'Every method run beats FedAvg\'s personalized accuracy on these splits.'
      : `Not above FedAvg's personalized accuracy here: ${losers.map((c) => `${c.method} (${partitionDef(c.partition).label})`).join(', ')}.`,
    '',
    ...[...new Set(losers.map((c) => c.method))].filter((m) => WHY_NOT[m]).map((m) => `- ${m}: ${WHY_NOT[m]}.`),
    '',
    'FedProto and FedDistill keep the whole model local (their servers average per-label prototypes or logits only), so the global ' +
      "weights never change and their global accuracy is the initial model's; FedPer, FedRep and FedRoD average a head no learner " +
      "uses as its own, so their global accuracy is not what they optimize; Ditto sends the plain local models, so its global model " +
      "is FedAvg's (same global accuracy) and only its personal models differ; FedBABU's head stays at its initialization in training.",
    '',
  ].join('\n');
}

/** Writes the docs section of a saved `--json` run (after the notes or the table's wording changed). */
function renderSaved(file: string): void {
  const saved = JSON.parse(readFileSync(file, 'utf8')) as { setting: Options; seconds: number; loadAverage: number[]; cells: Cell[]; command?: string };
  const command = saved.command ?? `npm run bench:pfl -- --partitions ${saved.setting.partitions.join(',')}`;
  process.stdout.write(`wrote ${writeDocsSection('## bench:pfl', sectionMarkdown(saved.setting, saved.cells, saved.seconds, true, saved.loadAverage, command))}\n`);
}

async function main(): Promise<void> {
  registerBuiltinAggregators();
  const o = parseOptions(process.argv.slice(2));
  if (o.fromJson) return renderSaved(o.fromJson);
  registerShareDataset();
  const log = (line: string): void => {
    (o.json ? process.stderr : process.stdout).write(`${line}\n`);
  };
  const load = loadavg();
  log(describe(o));
  log(`methods: ${o.methods.join(', ')}; load average ${load.map((l) => l.toFixed(1)).join(', ')}`);
  const runRoot = mkdtempSync(join(tmpdir(), 'oiafed-pfl-'));
  const cells: Cell[] = [];
  const started = Date.now();
  try {
    for (const partition of o.partitions) {
      for (const method of o.methods) {
        const cell = await runCell(o, method, partition, runRoot, log);
        cells.push(cell);
        log(`${method} ${partitionDef(partition).label}: global ${pct(cell.global)}%, personalized ${pct(cell.personalized)}% in ${cell.seconds.toFixed(0)}s`);
        if (o.write) writeDocsSection('## bench:pfl', sectionMarkdown(o, cells, (Date.now() - started) / 1000, false, load));
      }
    }
  } finally {
    rmSync(runRoot, { recursive: true, force: true });
  }
  const totalS = (Date.now() - started) / 1000;
  log('');
  log(table(o, cells));
  if (o.write) log(`wrote ${writeDocsSection('## bench:pfl', sectionMarkdown(o, cells, totalS, true, load))}`);
  if (o.json) {
    process.stdout.write(`${JSON.stringify({ command: COMMAND, setting: { ...o }, seconds: totalS, loadAverage: load, cells, reference: REFERENCE })}\n`);
  }
}

main().catch((error) => {
  process.stderr.write(`bench:pfl failed: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
