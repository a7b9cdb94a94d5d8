/**
 * The `oiafed` verbs. Each one parses its own flags and hands off to a package; the apps hold
 * no federated-learning logic of their own.
 */
import { existsSync, statSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { ConfigError, loadConfig, stringifyConfig, type NodeConfig } from '@oiafed/config';
import { launchLocal, runLearnerNode, runSerial, runTrainerNode } from '@oiafed/core';
import { labelHistogram, loadDataset, partitionIndices, renderPartitionStats } from '@oiafed/datasets';
import { renderReport } from '@oiafed/tracker';

export interface CommandIo {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  env: NodeJS.ProcessEnv;
  signal: AbortSignal;
  /** argv prefix that starts this CLI again (for launch's child processes). */
  selfCommand: string[];
}

/** A user mistake: printed without a stack trace, exit status 2. */
export class UsageError extends Error {}

export const HELP = `oiafed: federated learning nodes from YAML configs

Usage:
  oiafed run --config <file.yaml> [--mode serial --num-clients N]
  oiafed launch --config <trainer.yaml> --num-clients N [--learner-config <learner.yaml>] [--run-dir DIR]
  oiafed validate <file.yaml> [more files...]
  oiafed show-config <file.yaml>
  oiafed partition-stats <config.yaml> [--num-partitions N] [--out stats.html]
  oiafed report <run dir> [--out report.html]

Run "oiafed <command> --help" for a command's options.
Exit status: 0 success, 1 runtime failure, 2 invalid config or usage.`;

const COMMAND_HELP: Record<string, string> = {
  run: `oiafed run --config <file.yaml> [options]

Runs the node the config's "role" names: a trainer (prints one line per round and a summary)
or a learner (trains when the trainer asks, exits when the trainer ends the federation).

Options:
  --config <file>       node config (required)
  --mode <mode>         "process" (default: this one node) or "serial" (the trainer config plus
                        --num-clients learners in this process over the memory transport)
  --num-clients <N>     learners in serial mode
  --resume              trainer: continue from the newest checkpoint in checkpoint.dir
  -h, --help            this help`,
  launch: `oiafed launch --config <trainer.yaml | dir> --num-clients N [options]

Starts the trainer and N learners as child processes on this machine (parallel mode). The
trainer gets a free 127.0.0.1 port; each learner gets node id learner_<i> and partition <i>.
Resolved configs and one log per node go to <run dir>/launch/. Ctrl-C is forwarded to every
node; the exit status is the trainer's.

Options:
  --config <file|dir>      trainer config, or a directory holding trainer.yaml
  --num-clients <N>        number of learners (required)
  --learner-config <file>  learner template; env NODE_ID, PARTITION_ID, NUM_PARTITIONS,
                           TRAINER_HOST, TRAINER_PORT are set for each learner
                           (default: learner.yaml beside the trainer config if present,
                           else learners are derived from the trainer config)
  --run-dir <dir>          where history, report and logs go (default runs/<exp_name>)
  --quiet-logs             do not echo the trainer's log lines on stderr`,
  validate: `oiafed validate <file.yaml> [more files...]

Loads each config (extend, \${VAR}, schema) and reports every problem with file, key path and
what was expected. Exit status 0 when all are valid, 2 otherwise.`,
  'show-config': `oiafed show-config <file.yaml>

Prints the fully resolved config (extend chains merged, variables substituted, defaults filled)
as YAML.`,
  'partition-stats': `oiafed partition-stats <config.yaml> [--num-partitions N] [--out stats.html]

Prints the label histogram of every partition the config's first dataset produces and writes
an HTML chart (default: partition-stats.html).`,
  report: `oiafed report <run dir> [--out report.html]

Draws accuracy, loss, participants and round durations from <run dir>/history.jsonl into a
self-contained HTML page.`,
};

function wantsHelp(args: string[]): boolean {
  return args.includes('--help') || args.includes('-h');
}

type OptionsConfig = NonNullable<ParseArgsConfig['options']>;

function parse<T extends OptionsConfig>(args: string[], options: T) {
  try {
    return parseArgs<{ args: string[]; options: T; allowPositionals: true; strict: true }>({
      args,
      options,
      allowPositionals: true,
      strict: true,
    });
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
}

function positiveInt(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new UsageError(`${flag} must be an integer >= 1, got "${value}"`);
  return n;
}

function requireConfigFlag(value: string | undefined, command: string): string {
  if (!value) throw new UsageError(`${command}: --config <file.yaml> is required (see oiafed ${command} --help)`);
  return value;
}

function line(stream: NodeJS.WritableStream, text: string): void {
  stream.write(`${text}\n`);
}

export async function runCommand(
  argv: string[],
  io: CommandIo,
  options: { expectRole?: 'trainer' | 'learner' } = {},
): Promise<number> {
  const [command, ...args] = argv;
  if (!command || command === 'help' || command === '--help' || command === '-h') {
    line(io.stdout, HELP);
    return 0;
  }
  const help = COMMAND_HELP[command];
  if (!help) throw new UsageError(`unknown command "${command}"\n\n${HELP}`);
  if (wantsHelp(args)) {
    line(io.stdout, help);
    return 0;
  }
  switch (command) {
    case 'run':
      return run(args, io, options.expectRole);
    case 'launch':
      return launch(args, io);
    case 'validate':
      return validate(args, io);
    case 'show-config':
      return showConfig(args, io);
    case 'partition-stats':
      return partitionStats(args, io);
    case 'report':
      return report(args, io);
    default:
      throw new UsageError(`unknown command "${command}"`);
  }
}

async function run(args: string[], io: CommandIo, expectRole?: 'trainer' | 'learner'): Promise<number> {
  const { values } = parse(args, {
    config: { type: 'string', short: 'c' },
    mode: { type: 'string' },
    'num-clients': { type: 'string', short: 'n' },
    resume: { type: 'boolean' },
  });
  const config = loadConfig(requireConfigFlag(values.config, 'run'), { env: io.env });
  if (expectRole && config.role !== expectRole) {
    throw new UsageError(`${values.config}: this executable runs ${expectRole}s, the config has role "${config.role}"`);
  }
  const mode = values.mode ?? 'process';
  const report = (text: string) => line(io.stdout, text);
  if (mode === 'serial') {
    const numClients = positiveInt(values['num-clients'], '--num-clients');
    if (numClients === undefined) throw new UsageError('run --mode serial needs --num-clients N');
    await runSerial(config, { numClients, report, signal: io.signal, resume: values.resume });
    return 0;
  }
  if (mode !== 'process') throw new UsageError(`--mode must be "process" or "serial", got "${mode}"`);
  if (config.role === 'trainer') {
    await runTrainerNode(config, { report, signal: io.signal, resume: values.resume });
    return 0;
  }
  const result = await runLearnerNode(config, { signal: io.signal });
  return result.reason.startsWith('lost the trainer') ? 1 : 0;
}

async function launch(args: string[], io: CommandIo): Promise<number> {
  const { values } = parse(args, {
    config: { type: 'string', short: 'c' },
    'num-clients': { type: 'string', short: 'n' },
    'learner-config': { type: 'string' },
    'run-dir': { type: 'string' },
    'quiet-logs': { type: 'boolean' },
  });
  const numClients = positiveInt(values['num-clients'], '--num-clients');
  if (numClients === undefined) throw new UsageError('launch needs --num-clients N');
  const { trainerConfig, learnerConfig } = resolveLaunchConfigs(requireConfigFlag(values.config, 'launch'), values['learner-config']);
  const result = await launchLocal({
    trainerConfig,
    learnerConfig,
    numClients,
    nodeCommand: io.selfCommand,
    runDir: values['run-dir'],
    env: io.env,
    stdout: io.stdout,
    stderr: io.stderr,
    echoTrainerLogs: !values['quiet-logs'],
    signal: io.signal,
  });
  line(io.stderr, `logs and configs: ${result.runDir}/launch/`);
  return result.exitCode;
}

function resolveLaunchConfigs(configPath: string, learnerFlag: string | undefined) {
  const isDir = existsSync(configPath) && statSync(configPath).isDirectory();
  const trainerConfig = isDir ? resolve(configPath, 'trainer.yaml') : configPath;
  const besideLearner = resolve(trainerConfig, '..', 'learner.yaml');
  const learnerConfig = learnerFlag ?? (existsSync(besideLearner) ? besideLearner : undefined);
  return { trainerConfig, learnerConfig };
}

function validate(args: string[], io: CommandIo): number {
  const { positionals } = parse(args, {});
  if (positionals.length === 0) throw new UsageError('validate needs at least one config file');
  let failures = 0;
  for (const file of positionals) {
    try {
      const config = loadConfig(file, { env: io.env });
      line(io.stdout, `ok: ${file} (${config.role} "${config.node_id}")`);
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error;
      failures += 1;
      line(io.stderr, error.message);
    }
  }
  return failures > 0 ? 2 : 0;
}

function showConfig(args: string[], io: CommandIo): number {
  const { positionals } = parse(args, {});
  if (positionals.length !== 1) throw new UsageError('show-config needs exactly one config file');
  io.stdout.write(stringifyConfig(loadConfig(positionals[0]!, { env: io.env })));
  return 0;
}

async function partitionStats(args: string[], io: CommandIo): Promise<number> {
  const { values, positionals } = parse(args, {
    'num-partitions': { type: 'string' },
    out: { type: 'string' },
  });
  if (positionals.length !== 1) throw new UsageError('partition-stats needs exactly one config file');
  const config: NodeConfig = loadConfig(positionals[0]!, { env: io.env });
  const spec = config.datasets[0];
  if (!spec) throw new UsageError(`${positionals[0]}: no datasets[] entry to partition`);
  const numPartitions =
    positiveInt(values['num-partitions'], '--num-partitions') ?? spec.partition?.num_partitions ?? undefined;
  if (numPartitions === undefined) {
    throw new UsageError('the number of partitions is unknown: set datasets[0].partition.num_partitions or --num-partitions');
  }
  const { train } = await loadDataset({ ...spec, split: 'train' }, { seed: config.seed });
  if (!train) throw new Error(`dataset ${spec.type} has no train split`);
  const partition = spec.partition;
  const parts = partitionIndices(train.labels, train.numClasses, {
    strategy: partition?.strategy ?? 'iid',
    numPartitions,
    seed: partition?.config?.seed ?? config.seed,
    alpha: partition?.config?.alpha,
    numLabelsPerClient: partition?.config?.num_labels_per_client,
    imbalanceRatio: partition?.config?.imbalance_ratio,
    minSize: partition?.config?.min_size,
  });
  const histogram = labelHistogram(train.labels, train.numClasses, parts);
  const title = `${spec.type} / ${partition?.strategy ?? 'iid'} / ${numPartitions} partitions`;
  const rendered = renderPartitionStats(histogram, { title });
  io.stdout.write(`${rendered.text}\n`);
  const out = values.out ?? 'partition-stats.html';
  writeFileSync(out, rendered.html);
  line(io.stderr, `chart written to ${out}`);
  return 0;
}

function report(args: string[], io: CommandIo): number {
  const { values, positionals } = parse(args, { out: { type: 'string' } });
  if (positionals.length !== 1) throw new UsageError('report needs exactly one run directory');
  const file = renderReport(positionals[0]!, { out: values.out });
  line(io.stdout, `report written to ${file}`);
  return 0;
}
