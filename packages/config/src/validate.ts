import { Ajv } from 'ajv';
import type { ErrorObject, ValidateFunction } from 'ajv';
import { closestKey, showKey, showValue } from './errors.js';
import type { ConfigIssue } from './errors.js';
import { checkPeerAddress } from './peer-address.js';
import { DEVICE_PATTERN, NODE_ID_PATTERN, PEER_ADDRESS_PATTERN, ROTATION_PATTERN, nodeConfigSchema } from './schema.js';
import { isPlainObject, joinPath, showPath } from './sources.js';
import type { NodeInfo } from './sources.js';

const PATTERN_HINTS: Record<string, string> = {
  [NODE_ID_PATTERN]: 'an id of letters, digits, "_", "." or "-"',
  [DEVICE_PATTERN]: 'auto, cpu, cuda or cuda:N',
  [ROTATION_PATTERN]: 'a size such as "100 MB" or "10 KB"',
};

let compiled: ValidateFunction | undefined;

function validator(): ValidateFunction {
  compiled ??= new Ajv({ allErrors: true, useDefaults: true, verbose: true, strict: true }).compile(nodeConfigSchema);
  return compiled;
}

/** Converts ajv's JSON pointer (`/datasets/0/type`) to a dotted key path (`datasets[0].type`). */
function pointerToPath(pointer: string): string {
  let path = '';
  for (const raw of pointer.split('/').slice(1)) {
    const segment = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    path = /^[0-9]+$/.test(segment) ? joinPath(path, Number(segment)) : joinPath(path, segment);
  }
  return path;
}

/** One ajv error as a key path, the path whose position to report, and a message; undefined when another check reports it. */
export function describe(error: ErrorObject): { path: string; at: string; message: string } | undefined {
  const path = pointerToPath(error.instancePath);
  const got = ` (got ${showValue(error.data)})`;
  const params = error.params as Record<string, unknown>;
  // A failed key of a map (auth_tokens): name the key, never show the map (its values are secrets).
  if (error.keyword === 'propertyNames') return undefined;
  if (error.propertyName !== undefined) {
    const key = showValue(error.propertyName.length > 40 ? `${error.propertyName.slice(0, 40)}...` : error.propertyName);
    const rule = error.keyword === 'pattern' ? `must be ${PATTERN_HINTS[String(params.pattern)] ?? `a string matching ${String(params.pattern)}`}` : (error.message ?? 'is invalid');
    return { path, at: path, message: `key ${key} ${rule}` };
  }
  switch (error.keyword) {
    case 'required': {
      const key = joinPath(path, String(params.missingProperty));
      return { path: key, at: path, message: 'required key is missing' };
    }
    case 'additionalProperties': {
      const key = String(params.additionalProperty);
      const allowed = Object.keys((error.parentSchema?.properties as object | undefined) ?? {});
      const guess = closestKey(key, allowed);
      const hint = guess ? `; did you mean "${guess}"?` : '';
      return { path, at: joinPath(path, key), message: `unknown key ${showKey(key)} (allowed: ${allowed.join(', ')})${hint}` };
    }
    case 'type':
      return { path, at: path, message: `must be ${String(params.type)}${got}` };
    case 'enum':
      return { path, at: path, message: `must be one of: ${(params.allowedValues as unknown[]).join(', ')}${got}` };
    case 'pattern': {
      if (params.pattern === PEER_ADDRESS_PATTERN) return undefined; // checkPeerAddress says why, below
      const hint = PATTERN_HINTS[String(params.pattern)] ?? `a string matching ${String(params.pattern)}`;
      return { path, at: path, message: `must be ${hint}${got}` };
    }
    case 'minLength':
      return { path, at: path, message: params.limit === 1 ? `must not be empty${got}` : `must have at least ${String(params.limit)} characters${got}` };
    case 'maxLength':
      // Never echo the value: it may be huge.
      return { path, at: path, message: `must have at most ${String(params.limit)} characters (got ${String((error.data as string).length)})` };
    case 'minimum':
    case 'maximum':
    case 'exclusiveMinimum':
    case 'exclusiveMaximum':
      return { path, at: path, message: `must be ${String(params.comparison)} ${String(params.limit)}${got}` };
    default:
      return { path, at: path, message: `${error.message ?? 'is invalid'}${got}` };
  }
}

/** Whether the schema declares a string at `path` (a dotted key path; open `args` maps declare nothing). */
export function schemaExpectsString(path: string, root: Readonly<Record<string, unknown>> = nodeConfigSchema): boolean {
  let schema: Readonly<Record<string, unknown>> | undefined = root;
  for (const match of path.matchAll(/([^.[\]]+)|\[([0-9]+)\]/g)) {
    if (schema === undefined) return false;
    schema = (match[2] === undefined
      ? (schema.properties as Record<string, Record<string, unknown>> | undefined)?.[match[1]]
      : schema.items) as Record<string, unknown> | undefined;
  }
  return schema?.type === 'string';
}

function get(tree: unknown, ...keys: string[]): unknown {
  let node = tree;
  for (const key of keys) node = isPlainObject(node) ? node[key] : undefined;
  return node;
}

/**
 * Validates (and fills defaults into) `tree` in place, then runs the checks that span fields.
 * Issues name the file each offending value came from, via `meta`.
 */
export function validateTree(tree: Record<string, unknown>, meta: Map<string, NodeInfo>, rootFile: string, issues: ConfigIssue[]): void {
  const where = (path: string): NodeInfo => {
    for (let p = path; ; ) {
      const info = meta.get(p);
      if (info) return info;
      if (p === '') return { file: rootFile };
      const parent = p.replace(/(\.[^.[\]]+|\[[0-9]+\])$/, '');
      p = parent === p ? '' : parent;
    }
  };
  const add = (path: string, message: string, at = path): void => {
    const info = where(at);
    issues.push({ file: info.file, path: showPath(path), message, line: info.line, col: info.col });
  };

  const validate = validator();
  if (!validate(tree)) {
    for (const error of validate.errors ?? []) {
      const described = describe(error);
      if (described) add(described.path, described.message, described.at);
    }
  }

  const connectTo = tree.connect_to;
  if (Array.isArray(connectTo)) {
    connectTo.forEach((entry, i) => {
      if (typeof entry !== 'string') return;
      const parsed = checkPeerAddress(entry);
      if ('error' in parsed) add(joinPath('connect_to', i), parsed.error);
    });
  }

  if (tree.role === 'learner' && get(tree, 'transport', 'mode') === 'grpc' && Array.isArray(connectTo) && connectTo.length === 0) {
    add('connect_to', 'a learner with transport.mode grpc needs at least one peer to dial (id@host:port, e.g. trainer@127.0.0.1:50051)', 'transport.mode');
  }

  if (tree.role === 'trainer' && get(tree, 'transport', 'web', 'enabled') === true) {
    if (get(tree, 'dashboard', 'enabled') !== true) add('transport.web.enabled', "needs dashboard.enabled: browser learners join over WebSocket on the dashboard's HTTP server");
    if (get(tree, 'transport', 'mode') === 'memory') add('transport.web.enabled', 'needs the gRPC transport (transport.mode grpc or auto), not memory');
  }

  const interval = get(tree, 'heartbeat', 'interval');
  const timeout = get(tree, 'heartbeat', 'timeout');
  if (get(tree, 'heartbeat', 'enabled') === true && typeof interval === 'number' && typeof timeout === 'number' && timeout <= interval) {
    add('heartbeat.timeout', `must be greater than heartbeat.interval (${interval})${` (got ${timeout})`}`);
  }

  const initialDelay = get(tree, 'retry', 'initial_delay');
  const maxDelay = get(tree, 'retry', 'max_delay');
  if (typeof initialDelay === 'number' && typeof maxDelay === 'number' && maxDelay < initialDelay) {
    add('retry.max_delay', `must be >= retry.initial_delay (${initialDelay}) (got ${maxDelay})`);
  }

  const tls = get(tree, 'transport', 'grpc', 'tls');
  if (isPlainObject(tls) && (tls.cert === undefined) !== (tls.key === undefined)) {
    add('transport.grpc.tls', 'cert and key must be given together');
  }

  const datasets = tree.datasets;
  if (Array.isArray(datasets)) {
    datasets.forEach((dataset, i) => {
      const id = get(dataset, 'partition', 'partition_id');
      const count = get(dataset, 'partition', 'num_partitions');
      if (typeof id === 'number' && typeof count === 'number' && id >= count) {
        add(`datasets[${i}].partition.partition_id`, `must be less than num_partitions (${count}) (got ${id})`);
      }
    });
  }

  // The default port depends on the role, which plain JSON Schema defaults cannot express.
  const listen = tree.listen;
  if (isPlainObject(listen) && listen.port === undefined) listen.port = tree.role === 'trainer' ? 50051 : 0;
}
