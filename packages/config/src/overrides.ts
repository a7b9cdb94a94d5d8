/**
 * `--set key.path=value` overrides, as Flower's `--run-config`: applied to the merged and
 * interpolated tree, before schema validation, so a bad override gets the usual error (naming
 * `--set` and the key path) and the resolved config holds the overridden value.
 */
import { parse as parseYaml } from 'yaml';
import { ConfigError, showValue } from './errors.js';
import { isPlainObject, joinPath, showPath } from './sources.js';
import type { NodeInfo } from './sources.js';
import { schemaExpectsString } from './validate.js';

/** One parsed override: where it points and the value it puts there. */
export interface ConfigOverride {
  /** Key path segments; a number indexes a list (`datasets.0.type` -> `['datasets', 0, 'type']`). */
  keys: Array<string | number>;
  /** The value, parsed as a YAML scalar or flow collection (`3`, `true`, `[a, b]`, `{mu: 0.1}`). */
  value: unknown;
  /** The text as given (`trainer.args.max_rounds=3`), for messages and for recording what ran. */
  text: string;
}

/** The `file` that issues about an override name: `--set <key path>`. */
export const OVERRIDE_SOURCE = '--set';

function fail(text: string, message: string): never {
  throw new ConfigError([{ file: OVERRIDE_SOURCE, path: '', message: `${showValue(text)}: ${message}` }]);
}

/** Splits `a.b[0].c` or `a.b.0.c` into segments; all-digit segments become list indices. */
function splitKeyPath(path: string, text: string): Array<string | number> {
  const keys: Array<string | number> = [];
  for (const part of path.split('.')) {
    const match = /^([^[\]]*)((?:\[[0-9]+\])*)$/.exec(part);
    if (!match || (match[1] === '' && match[2] === '')) fail(text, `"${path}" is not a key path such as trainer.args.max_rounds or datasets.0.type`);
    if (match[1] !== '') keys.push(/^[0-9]+$/.test(match[1]) ? Number(match[1]) : match[1]);
    for (const index of match[2].matchAll(/\[([0-9]+)\]/g)) keys.push(Number(index[1]));
  }
  return keys;
}

/** The dotted path `validate` and messages use (`datasets[0].type`). */
function showKeys(keys: ReadonlyArray<string | number>): string {
  return keys.reduce<string>((path, key) => joinPath(path, key), '');
}

/**
 * Parses `key.path=value`. The value is YAML (a scalar or a flow list/map); where the schema
 * declares a string, a scalar stays the text as typed (`--set exp_name=2024` is the string "2024").
 *
 * @throws ConfigError naming `--set` when the text has no `=`, an empty key path or bad YAML.
 */
export function parseOverride(text: string): ConfigOverride {
  const eq = text.indexOf('=');
  if (eq <= 0) fail(text, 'expected key.path=value, e.g. trainer.args.max_rounds=3');
  const keys = splitKeyPath(text.slice(0, eq).trim(), text);
  const raw = text.slice(eq + 1);
  let value: unknown;
  try {
    value = parseYaml(raw);
  } catch (error) {
    fail(text, `the value is not valid YAML: ${(error as Error).message.split('\n')[0]}`);
  }
  const isScalar = value === null || ['number', 'boolean'].includes(typeof value);
  if (isScalar && raw.trim() !== '' && schemaExpectsString(showKeys(keys))) value = raw.trim();
  return { keys, value: value ?? null, text };
}

function childOf(node: unknown, key: string | number, at: string, text: string): unknown {
  if (Array.isArray(node)) {
    if (typeof key !== 'number') fail(text, `${showPath(at)} is a list; index it with a number (e.g. ${joinPath(at, 0)})`);
    return node[key];
  }
  if (isPlainObject(node)) return node[String(key)];
  return fail(text, `${showPath(at)} is ${showValue(node)}, not a map or list, so it has no key "${key}"`);
}

function assign(node: unknown, key: string | number, value: unknown, at: string, text: string): void {
  if (Array.isArray(node)) {
    if (typeof key !== 'number') fail(text, `${showPath(at)} is a list; index it with a number (e.g. ${joinPath(at, 0)})`);
    if (key > node.length) {
      fail(text, `${showPath(at)} has ${node.length} entries; an index may be at most ${node.length} (to append)`);
    }
    node[key] = value;
    return;
  }
  if (!isPlainObject(node)) fail(text, `${showPath(at)} is ${showValue(node)}, not a map or list, so it has no key "${key}"`);
  node[String(key)] = value;
}

/** Marks `path` and everything under it as coming from `--set`, dropping the file positions it replaced. */
function recordSource(meta: Map<string, NodeInfo>, path: string, value: unknown): void {
  for (const key of [...meta.keys()]) {
    if (key === path || key.startsWith(`${path}.`) || key.startsWith(`${path}[`)) meta.delete(key);
  }
  const walk = (node: unknown, at: string): void => {
    meta.set(at, { file: OVERRIDE_SOURCE });
    if (Array.isArray(node)) node.forEach((item, i) => walk(item, joinPath(at, i)));
    else if (isPlainObject(node)) for (const [k, v] of Object.entries(node)) walk(v, joinPath(at, k));
  };
  walk(value, path);
}

/**
 * Sets each override in `tree` (in order; a later one wins). Missing maps on the way are
 * created; a list index may point one past the end to append. `meta`, when given, records
 * `--set` as the source of each overridden path so validation errors name it.
 *
 * @throws ConfigError naming `--set` when a path runs through a scalar or past a list's end.
 */
export function applyOverrides(
  tree: Record<string, unknown>,
  overrides: ReadonlyArray<ConfigOverride | string>,
  meta?: Map<string, NodeInfo>,
): void {
  for (const entry of overrides) {
    const override = typeof entry === 'string' ? parseOverride(entry) : entry;
    const { keys, text } = override;
    let node: unknown = tree;
    let at = '';
    keys.slice(0, -1).forEach((key, i) => {
      let next = childOf(node, key, at, text);
      if (next === undefined || next === null) {
        next = typeof keys[i + 1] === 'number' ? [] : {};
        assign(node, key, next, at, text);
      }
      node = next;
      at = joinPath(at, key);
    });
    const last = keys[keys.length - 1]!;
    const value = structuredClone(override.value);
    assign(node, last, value, at, text);
    if (meta) recordSource(meta, joinPath(at, last), value);
  }
}
