/**
 * The hosts file of `oiafed launch --hosts`: which machine runs the trainer and which run the
 * learners, reached over ssh. Loaded like a node config (YAML positions, `${VAR:default}`,
 * ajv with `allErrors`), so its errors name file, key path and expectation the same way.
 */
import { resolve } from 'node:path';
import { Ajv } from 'ajv';
import type { ValidateFunction } from 'ajv';
import { ConfigError } from './errors.js';
import type { ConfigIssue } from './errors.js';
import { interpolateTree } from './interpolate.js';
import { NODE_ID_PATTERN } from './schema.js';
import { isPlainObject, readYamlFile, showPath } from './sources.js';
import type { Layer, NodeInfo } from './sources.js';
import { describe, schemaExpectsString } from './validate.js';

/** How to reach one host over ssh; omitted keys fall back to ssh's own defaults and ~/.ssh/config. */
export interface SshSettings {
  user?: string;
  port?: number;
  identity_file?: string;
  /** Extra ssh arguments, e.g. `[-o, ProxyJump=bastion]`; they come before the launcher's defaults, so they win. */
  options?: string[];
}

/** One node started on one host. */
export interface HostEntry {
  /** Node id used to prefix its output and in the report (default `trainer`, `learner_<i>`). */
  node_id: string;
  /** ssh destination (a name, an address or a ~/.ssh/config alias). */
  host: string;
  ssh: SshSettings;
  /** Directory on the host to `cd` into before starting the node (default: the login directory). */
  workdir?: string;
  /** Node config on the host, relative to `workdir`. */
  config: string;
  /** Program and arguments that start the CLI on the host: shell words as a string, or a list (each quoted). */
  command: string | string[];
  /** Environment for the node on the host. */
  env: Record<string, string>;
}

/** The trainer's entry, plus where the launcher checks that it accepts connections. */
export interface TrainerHostEntry extends HostEntry {
  /** Address the launcher dials to see that the trainer listens (default: `host`). */
  grpc_host: string;
  /** The trainer's gRPC port (its config's listen.port; default 50051). */
  grpc_port: number;
}

/** A loaded, validated hosts file with `defaults` applied to every entry. */
export interface HostsFile {
  file: string;
  trainer: TrainerHostEntry;
  learners: HostEntry[];
}

const stringList = { type: 'array', items: { type: 'string' } };
const entryProperties = {
  node_id: { type: 'string', pattern: NODE_ID_PATTERN, maxLength: 128 },
  host: { type: 'string', minLength: 1 },
  ssh: {
    type: 'object',
    additionalProperties: false,
    properties: {
      user: { type: 'string', minLength: 1 },
      port: { type: 'integer', minimum: 1, maximum: 65535 },
      identity_file: { type: 'string', minLength: 1 },
      options: stringList,
    },
  },
  workdir: { type: 'string', minLength: 1 },
  config: { type: 'string', minLength: 1 },
  command: { anyOf: [{ type: 'string', minLength: 1 }, { ...stringList, minItems: 1 }] },
  env: {
    type: 'object',
    propertyNames: { pattern: '^[A-Za-z_][A-Za-z0-9_]*$' },
    additionalProperties: { anyOf: [{ type: 'string' }, { type: 'number' }, { type: 'boolean' }] },
  },
};
const entry = (extra: Record<string, unknown> = {}) => ({
  type: 'object',
  additionalProperties: false,
  required: ['host', 'config'],
  properties: { ...entryProperties, ...extra },
});

/** JSON Schema of a hosts file. */
export const hostsFileSchema: Readonly<Record<string, unknown>> = {
  $schema: 'http://json-schema.org/draft-07/schema#',
  title: 'OiaFed hosts file',
  type: 'object',
  additionalProperties: false,
  required: ['trainer', 'learners'],
  properties: {
    defaults: {
      type: 'object',
      additionalProperties: false,
      properties: { ssh: entryProperties.ssh, workdir: entryProperties.workdir, command: entryProperties.command, env: entryProperties.env },
    },
    trainer: entry({
      grpc_host: { type: 'string', minLength: 1 },
      grpc_port: { type: 'integer', minimum: 1, maximum: 65535 },
    }),
    learners: { type: 'array', minItems: 1, items: entry() },
  },
};

let compiled: ValidateFunction | undefined;

function issuesOf(layer: Layer, tree: Record<string, unknown>): ConfigIssue[] {
  compiled ??= new Ajv({ allErrors: true, verbose: true, strict: true }).compile(hostsFileSchema);
  const issues: ConfigIssue[] = [];
  const where = (path: string): NodeInfo => layer.meta.get(path) ?? { file: layer.file };
  if (!compiled(tree)) {
    for (const error of compiled.errors ?? []) {
      const described = describe(error);
      if (!described) continue;
      const info = where(described.at);
      issues.push({ file: info.file, path: showPath(described.path), message: described.message, line: info.line, col: info.col });
    }
  }
  return issues;
}

type RawEntry = Record<string, unknown> & { host: string; config: string };

function withDefaults(raw: RawEntry, defaults: Record<string, unknown>, nodeId: string): HostEntry {
  const ssh = { ...(defaults.ssh as SshSettings | undefined), ...(raw.ssh as SshSettings | undefined) };
  const env = { ...(defaults.env as object | undefined), ...(raw.env as object | undefined) };
  return {
    node_id: (raw.node_id as string | undefined) ?? nodeId,
    host: raw.host,
    ssh,
    workdir: (raw.workdir ?? defaults.workdir) as string | undefined,
    config: raw.config,
    command: (raw.command ?? defaults.command ?? 'oiafed') as string | string[],
    env: Object.fromEntries(Object.entries(env).map(([k, v]) => [k, String(v)])),
  };
}

function duplicateIds(file: string, entries: HostEntry[]): ConfigIssue[] {
  const seen = new Map<string, number>();
  const issues: ConfigIssue[] = [];
  entries.forEach((e, i) => {
    const first = seen.get(e.node_id);
    const path = i === 0 ? 'trainer.node_id' : `learners[${i - 1}].node_id`;
    if (first === undefined) seen.set(e.node_id, i);
    else issues.push({ file, path, message: `node id "${e.node_id}" is used twice; give each entry its own node_id` });
  });
  return issues;
}

/**
 * Loads a hosts file: YAML, `${VAR}` / `${VAR:default}` from `env`, schema validation, then
 * `defaults` merged under each entry (`ssh` and `env` merge key by key). Throws ConfigError
 * listing every problem.
 */
export function loadHostsFile(file: string, options: { env?: Record<string, string | undefined> } = {}): HostsFile {
  const layer = readYamlFile(resolve(file), file);
  const issues: ConfigIssue[] = [];
  const tree = interpolateTree(layer.value, options.env ?? process.env, layer.meta, layer.file, issues, (path) =>
    schemaExpectsString(path, hostsFileSchema),
  );
  issues.push(...(issues.length === 0 ? issuesOf(layer, tree) : []));
  if (issues.length > 0) throw new ConfigError(issues);
  const defaults = isPlainObject(tree.defaults) ? tree.defaults : {};
  const rawTrainer = tree.trainer as RawEntry;
  const trainer: TrainerHostEntry = {
    ...withDefaults(rawTrainer, defaults, 'trainer'),
    grpc_host: (rawTrainer.grpc_host as string | undefined) ?? rawTrainer.host,
    grpc_port: (rawTrainer.grpc_port as number | undefined) ?? 50051,
  };
  const learners = (tree.learners as RawEntry[]).map((raw, i) => withDefaults(raw, defaults, `learner_${i}`));
  const duplicates = duplicateIds(file, [trainer, ...learners]);
  if (duplicates.length > 0) throw new ConfigError(duplicates);
  return { file, trainer, learners };
}
