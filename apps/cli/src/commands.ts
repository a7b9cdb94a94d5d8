/**
 * The `oiafed` verbs. Each one parses its own flags and hands off to a package; the apps hold
 * no federated-learning logic of their own.
 */
import { existsSync, statSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { ConfigError, closestKey, loadConfig, loadHostsFile, stringifyConfig, type NodeConfig } from '@oiafed/config';
import type { LaunchResult } from '@oiafed/core';
import { labelHistogram, loadDataset, partitionIndices, renderPartitionStats } from '@oiafed/datasets';
import { SUMMARY_FILE, readRunSummary, renderReport, writeAboveLiveLine } from '@oiafed/tracker';
import { UsageError, cliVersion, flagError, type OptionsConfig } from './args.js';

export { UsageError };

export interface CommandIo {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  env: NodeJS.ProcessEnv;
  signal: AbortSignal;
  /** argv prefix that starts this CLI again (for launch's child processes). */
  selfCommand: string[];
}

export const HELP = `oiafed: federated learning nodes from YAML configs

Usage:
  oiafed run --config <file.yaml> [--mode serial --num-clients N]
  oiafed launch --config <trainer.yaml> --num-clients N [--learner-config <learner.yaml>] [--run-dir DIR]
  oiafed launch --hosts <hosts.yaml>
  oiafed validate <file.yaml> [more files...]
  oiafed show-config <file.yaml>
  oiafed partition-stats <config.yaml> [--num-partitions N] [--out stats.html]
  oiafed report <run dir> [--out report.html]
  oiafed --version

run, launch, validate and show-config take --set key.path=value (repeatable) to override the
config; run, launch, validate, show-config and partition-stats take --json for scripts.
Run "oiafed <command> --help" for a command's options.
Colors: off when NO_COLOR is set or output is not a terminal; FORCE_COLOR=1 forces them.
Exit status: 0 success, 1 runtime failure, 2 invalid config or usage.`;

const SET_HELP = `  --set <key.path=value>   override one config value after extend and \${VAR}, before
                           validation (repeatable; YAML value: --set trainer.args.max_rounds=3,
                           --set datasets.0.partition.partition_id=2, --set 'connect_to=[a@h:1]')`;

const COMMAND_HELP: Record<string, string> = {
  run: `oiafed run --config <file.yaml> [options]

Runs the node the config's "role" names: a trainer (prints one line per round and a summary)
or a learner (trains when the trainer asks, exits when the trainer ends the federation).

Options:
  --config <file>       node config (required)
  --mode <mode>         "process" (default: this one node) or "serial" (the trainer config plus
                        --num-clients learners in this process over the memory transport)
  --num-clients <N>     learners in serial mode
  --learner-pool <N>    serial mode: train N learners at a time on worker threads, one thread
                        each, instead of one after another using every core (same aggregate,
                        bit for bit, as the sequential run with learner.args.threads=1)
  --resume              trainer: continue from the newest checkpoint in checkpoint.dir
  --json                round lines go to stderr; stdout gets one JSON summary line at the end
${SET_HELP}
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
  --quiet-logs             do not echo the trainer's log lines on stderr
  --json                   round lines go to stderr; stdout gets one JSON summary line at the end
${SET_HELP}

oiafed launch --hosts <hosts.yaml> [--json]

Starts the trainer on its host over ssh, waits until it accepts connections, then each learner
on its host; every output line is prefixed by the node id. Ctrl-C stops every remote node.
Ends with one line per host; exit status 1 if any host failed (docs/deployment.md).`,
  validate: `oiafed validate <file.yaml> [more files...] [--json] [--set key.path=value]

Loads each config (extend, \${VAR}, schema) and reports every problem with file, key path and
what was expected. Exit status 0 when all are valid, 2 otherwise.

Options:
  --json                   one JSON document on stdout: {valid, files: [{file, valid, role,
                           node_id, issues: [{file, path, message, line, col}]}]}
${SET_HELP}`,
  'show-config': `oiafed show-config <file.yaml> [--json] [--set key.path=value]

Prints the fully resolved config (extend chains merged, variables substituted, --set applied,
defaults filled) as YAML.

Options:
  --json                   print it as one JSON document instead
${SET_HELP}`,
  'partition-stats': `oiafed partition-stats <config.yaml> [--num-partitions N] [--out stats.html] [--json]

Prints the label histogram of every partition the config's first dataset produces and writes
an HTML chart (default: partition-stats.html).

Options:
  --json                   the histogram as one JSON document on stdout instead of the table`,
  report: `oiafed report <run dir> [--out report.html]

Draws accuracy, loss, participants and round durations from <run dir>/history.jsonl into a
self-contained HTML page.`,
};

function wantsHelp(args: string[]): boolean {
  return args.includes('--help') || args.includes('-h');
}

/** Parses one verb's flags; unknown or malformed flags get the verb's usage line. */
function parse<T extends OptionsConfig>(command: string, args: string[], options: T) {
  try {
    return parseArgs<{ args: string[]; options: T; allowPositionals: true; strict: true }>({
      args,
      options,
      allowPositionals: true,
      strict: true,
    });
  } catch (error) {
    const usage = (COMMAND_HELP[command] ?? command).split('\n')[0]!;
    throw flagError(args, options, { command, usage }, error as Error);
  }
}

/** `--set` and `--json`, shared by the verbs that load a config. */
const CONFIG_FLAGS = {
  set: { type: 'string', multiple: true },
  json: { type: 'boolean' },
} as const satisfies OptionsConfig;

/** @oiafed/core brings tfjs: only the verbs that train load it, so --version and validate start fast. */
function loadCore() {
  return import('@oiafed/core');
}

/** Writes whole lines to stdout or stderr without splitting a progress bar on the terminal. */
function line(stream: NodeJS.WritableStream, text: string): void {
  writeAboveLiveLine(stream, `${text}\n`);
}

function printJson(io: CommandIo, value: unknown): void {
  io.stdout.write(`${JSON.stringify(value)}\n`);
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
  if (command === '--version' || command === '-V' || command === 'version') {
    line(io.stdout, `oiafed ${cliVersion()}`);
    return 0;
  }
  const help = COMMAND_HELP[command];
  if (!help) {
    const guess = closestKey(command, Object.keys(COMMAND_HELP));
    throw new UsageError(`unknown command "${command}"${guess ? `; did you mean "${guess}"?` : ''}\n\n${HELP}`);
  }
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
  const { values } = parse('run', args, {
    config: { type: 'string', short: 'c' },
    mode: { type: 'string' },
    'num-clients': { type: 'string', short: 'n' },
    'learner-pool': { type: 'string' },
    resume: { type: 'boolean' },
    ...CONFIG_FLAGS,
  });
  const config = loadConfig(requireConfigFlag(values.config, 'run'), { env: io.env, overrides: values.set });
  if (expectRole && config.role !== expectRole) {
    throw new UsageError(`${values.config}: this executable runs ${expectRole}s, the config has role "${config.role}"`);
  }
  const mode = values.mode ?? 'process';
  const { defaultRunDir, runLearnerNode, runSerial, runTrainerNode } = await loadCore();
  // With --json, stdout carries only the summary document; round lines move to stderr.
  const report = (text: string) => line(values.json ? io.stderr : io.stdout, text);
  const trainerDone = () => {
    if (values.json) printJson(io, trainerSummaryJson(resolve(defaultRunDir(config)), mode));
    return 0;
  };
  if (mode === 'serial') {
    const numClients = positiveInt(values['num-clients'], '--num-clients');
    if (numClients === undefined) throw new UsageError('run --mode serial needs --num-clients N');
    const learnerPool = positiveInt(values['learner-pool'], '--learner-pool');
    await runSerial(config, { numClients, learnerPool, report, signal: io.signal, resume: values.resume });
    return trainerDone();
  }
  if (mode !== 'process') throw new UsageError(`--mode must be "process" or "serial", got "${mode}"`);
  if (values['learner-pool'] !== undefined) throw new UsageError('--learner-pool needs --mode serial');
  if (config.role === 'trainer') {
    await runTrainerNode(config, { report, signal: io.signal, resume: values.resume });
    return trainerDone();
  }
  const result = await runLearnerNode(config, { signal: io.signal });
  const failed = result.reason.startsWith('lost the trainer');
  if (values.json) printJson(io, { role: 'learner', node_id: result.nodeId, rounds: result.rounds, reason: result.reason, ok: !failed });
  return failed ? 1 : 0;
}

/** The trainer's summary as written to `<run dir>/summary.json`, plus where that is. */
function trainerSummaryJson(runDir: string, mode: string): Record<string, unknown> {
  return { role: 'trainer', mode, ...readRunSummary(runDir), run_dir: runDir };
}

async function launch(args: string[], io: CommandIo): Promise<number> {
  const { values } = parse('launch', args, {
    config: { type: 'string', short: 'c' },
    'num-clients': { type: 'string', short: 'n' },
    'learner-config': { type: 'string' },
    'run-dir': { type: 'string' },
    'quiet-logs': { type: 'boolean' },
    hosts: { type: 'string' },
    ...CONFIG_FLAGS,
  });
  if (values.hosts !== undefined) return launchHosts(values.hosts, values, io);
  const numClients = positiveInt(values['num-clients'], '--num-clients');
  if (numClients === undefined) throw new UsageError('launch needs --num-clients N');
  const { trainerConfig, learnerConfig } = resolveLaunchConfigs(requireConfigFlag(values.config, 'launch'), values['learner-config']);
  // Whole milliseconds: file mtimes are rounded to what the file system keeps.
  const started = Math.floor(Date.now() / 1000) * 1000;
  const { launchLocal } = await loadCore();
  const result = await launchLocal({
    trainerConfig,
    learnerConfig,
    numClients,
    nodeCommand: io.selfCommand,
    runDir: values['run-dir'],
    env: io.env,
    stdout: values.json ? io.stderr : io.stdout,
    stderr: io.stderr,
    echoTrainerLogs: !values['quiet-logs'],
    signal: io.signal,
    overrides: values.set,
  });
  line(io.stderr, `logs and configs: ${result.runDir}/launch/`);
  if (values.json) printJson(io, launchSummaryJson(result, started));
  return result.exitCode;
}

/** launch --hosts: trainer and learners on other machines over ssh, configs already on each host. */
async function launchHosts(file: string, values: { json?: boolean; config?: string; set?: string[] }, io: CommandIo): Promise<number> {
  if (values.config !== undefined || values.set !== undefined) {
    throw new UsageError('launch --hosts: each host names its own config in the hosts file; drop --config and --set');
  }
  const hosts = loadHostsFile(file, { env: io.env });
  const { launchOverSsh } = await loadCore();
  const result = await launchOverSsh({ hosts, env: io.env, stdout: values.json ? io.stderr : io.stdout, stderr: io.stderr, signal: io.signal });
  if (values.json) printJson(io, { mode: 'launch-ssh', exit_code: result.exitCode, hosts: result.hosts });
  return result.exitCode;
}

/** The trainer's summary.json (only if this launch wrote it) with every node's exit status. */
function launchSummaryJson(result: LaunchResult, startedMs: number): Record<string, unknown> {
  const summaryFile = resolve(result.runDir, SUMMARY_FILE);
  const fresh = existsSync(summaryFile) && statSync(summaryFile).mtimeMs >= startedMs;
  return {
    role: 'trainer',
    mode: 'launch',
    ...(fresh ? readRunSummary(result.runDir) : { summary: null }),
    run_dir: result.runDir,
    exit_code: result.exitCode,
    learner_exit_codes: result.learnerExitCodes,
  };
}

function resolveLaunchConfigs(configPath: string, learnerFlag: string | undefined) {
  const isDir = existsSync(configPath) && statSync(configPath).isDirectory();
  const trainerConfig = isDir ? resolve(configPath, 'trainer.yaml') : configPath;
  const besideLearner = resolve(trainerConfig, '..', 'learner.yaml');
  const learnerConfig = learnerFlag ?? (existsSync(besideLearner) ? besideLearner : undefined);
  return { trainerConfig, learnerConfig };
}

async function validate(args: string[], io: CommandIo): Promise<number> {
  const { values, positionals } = parse('validate', args, CONFIG_FLAGS);
  if (positionals.length === 0) throw new UsageError('validate needs at least one config file');
  const results = [];
  for (const file of positionals) {
    let config: NodeConfig;
    try {
      config = loadConfig(file, { env: io.env, overrides: values.set });
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error;
      if (!values.json) line(io.stderr, error.message);
      results.push({ file, valid: false, issues: error.issues });
      continue;
    }
    const issues = (await componentIssues(config)).map((problem) => ({ file, ...problem }));
    if (!values.json) {
      for (const issue of issues) line(io.stderr, `${file}: ${issue.path}: ${issue.message}`);
      if (issues.length === 0) line(io.stdout, `ok: ${file} (${config.role} "${config.node_id}")`);
    }
    results.push({ file, valid: issues.length === 0, role: config.role, node_id: config.node_id, issues });
  }
  const valid = results.every((r) => r.valid);
  if (values.json) printJson(io, { valid, files: results });
  return valid ? 0 : 2;
}

/**
 * Unknown aggregator or learner types and args their own schemas refuse. The check loads no
 * tfjs; only a config naming plugins imports core (and tfjs) to register them first.
 */
async function componentIssues(config: NodeConfig): Promise<Array<{ path: string; message: string }>> {
  if (config.plugins.length > 0 || config.aggregator.package) {
    try {
      await (await loadCore()).prepareNode(config);
    } catch (error) {
      return [{ path: 'plugins', message: error instanceof Error ? error.message : String(error) }];
    }
  }
  const { componentProblems } = await import('@oiafed/core/component-check');
  return componentProblems(config);
}

function showConfig(args: string[], io: CommandIo): number {
  const { values, positionals } = parse('show-config', args, CONFIG_FLAGS);
  if (positionals.length !== 1) throw new UsageError('show-config needs exactly one config file');
  const config = loadConfig(positionals[0]!, { env: io.env, overrides: values.set });
  if (values.json) {
    io.stdout.write(`${JSON.stringify(config, null, 2)}\n`);
    return 0;
  }
  // The YAML records what was overridden, so a saved copy says how it came about.
  const applied = (values.set ?? []).map((text) => `# --set ${text.replaceAll('\n', ' ')}\n`).join('');
  io.stdout.write(`${applied}${stringifyConfig(config)}`);
  return 0;
}

async function partitionStats(args: string[], io: CommandIo): Promise<number> {
  const { values, positionals } = parse('partition-stats', args, {
    'num-partitions': { type: 'string' },
    out: { type: 'string' },
    json: { type: 'boolean' },
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
  // The dataset type may come from a plugin; core (and tfjs) is loaded only then.
  if (config.plugins.length > 0) await (await loadCore()).prepareNode(config);
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
  if (values.json) {
    const partitions = histogram.map((counts, id) => ({ partition_id: id, size: counts.reduce((a, b) => a + b, 0), label_counts: counts }));
    printJson(io, { title, dataset: spec.type, num_partitions: numPartitions, num_classes: train.numClasses, partitions });
  } else {
    io.stdout.write(`${rendered.text}\n`);
  }
  const out = values.out ?? 'partition-stats.html';
  writeFileSync(out, rendered.html);
  line(io.stderr, `chart written to ${out}`);
  return 0;
}

function report(args: string[], io: CommandIo): number {
  const { values, positionals } = parse('report', args, { out: { type: 'string' } });
  if (positionals.length !== 1) throw new UsageError('report needs exactly one run directory');
  const file = renderReport(positionals[0]!, { out: values.out });
  line(io.stdout, `report written to ${file}`);
  return 0;
}
