import { realpathSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { ConfigError, showValue } from './errors.js';
import type { ConfigIssue } from './errors.js';
import { expandString, interpolateTree, normaliseCallbacks } from './interpolate.js';
import type { Env } from './interpolate.js';
import { applyOverrides } from './overrides.js';
import type { ConfigOverride } from './overrides.js';
import { applyExtends, inlineLayer, isPlainObject, joinPath, readYamlFile, showPath } from './sources.js';
import type { ExpandString, Layer } from './sources.js';
import type { NodeConfig } from './types.js';
import { schemaExpectsString, validateTree } from './validate.js';

/** Options of {@link loadConfig}. */
export interface LoadConfigOptions {
  /** Variables for `${VAR}` interpolation; defaults to `process.env`. */
  env?: Record<string, string | undefined>;
  /**
   * `key.path=value` overrides (the CLI's `--set`), applied after `extend` and interpolation and
   * before validation; errors about them name `--set`. See {@link parseOverride}.
   */
  overrides?: ReadonlyArray<ConfigOverride | string>;
}

/** Options of {@link resolveConfig}. */
export interface ResolveConfigOptions extends LoadConfigOptions {
  /** Name used in messages and base directory of a relative `extend`; default `<inline>` (cwd). */
  file?: string;
}

function expanderFor(env: Env): ExpandString {
  return (text, info, path) =>
    expandString(text, env, (message) => {
      throw new ConfigError([{ file: info.file, path, message, line: info.line, col: info.col }]);
    }).text;
}

/** Records where the config came from (`config_dir`), unless it says so itself; a relative value is taken from there. */
function recordConfigDir(tree: Record<string, unknown>, fileDir: string | undefined): void {
  const given = tree.config_dir;
  if (given === undefined) {
    if (fileDir !== undefined) tree.config_dir = fileDir;
  } else if (typeof given === 'string' && given !== '') {
    tree.config_dir = resolve(fileDir ?? '.', given);
  }
}

function finish(layer: Layer, env: Env, overrides: LoadConfigOptions['overrides'] = [], fileDir?: string): NodeConfig {
  const issues: ConfigIssue[] = [];
  const tree = interpolateTree(layer.value, env, layer.meta, layer.file, issues, schemaExpectsString);
  if (issues.length > 0) throw new ConfigError(issues);
  applyOverrides(tree, overrides, layer.meta);
  recordConfigDir(tree, fileDir);
  normaliseCallbacks(tree, layer.meta, layer.file, issues);
  validateTree(tree, layer.meta, layer.file, issues);
  if (issues.length > 0) throw new ConfigError(issues);
  return tree as unknown as NodeConfig;
}

/**
 * Loads a node config from a YAML file: follows `extend` chains (relative to the including file;
 * maps merge, lists and scalars replace), expands `${VAR}` / `${VAR:default}`, validates against
 * {@link nodeConfigSchema} and fills in defaults. Throws {@link ConfigError} listing every problem.
 */
export function loadConfig(file: string, options: LoadConfigOptions = {}): NodeConfig {
  const env = options.env ?? process.env;
  const abs = resolve(file);
  const layer = readYamlFile(abs, file);
  const real = realpathSync(abs);
  return finish(applyExtends(layer, dirname(real), [{ abs: real, display: file }], expanderFor(env)), env, options.overrides, dirname(abs));
}

function clonePlain(value: unknown, path: string, file: string): unknown {
  if (value === null || ['string', 'number', 'boolean'].includes(typeof value)) return value;
  if (Array.isArray(value)) return value.map((item, i) => clonePlain(item, joinPath(path, i), file));
  if (isPlainObject(value)) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      if (v !== undefined) out[k] = clonePlain(v, joinPath(path, k), file);
    }
    return out;
  }
  throw new ConfigError([
    { file, path: showPath(path), message: `must be plain data (string, number, boolean, null, list or map) (got ${showValue(value)})` },
  ]);
}

/**
 * Resolves a config built in code, exactly as {@link loadConfig} treats a parsed file
 * (`extend`, interpolation, validation, defaults). `raw` is not modified.
 */
export function resolveConfig(raw: unknown, options: ResolveConfigOptions = {}): NodeConfig {
  const file = options.file ?? '<inline>';
  const env = options.env ?? process.env;
  if (!isPlainObject(raw)) {
    throw new ConfigError([{ file, path: '(root)', message: `a config must be a mapping of keys to values (got ${showValue(raw)})` }]);
  }
  const tree = clonePlain(raw, '', file) as Record<string, unknown>;
  const named = options.file !== undefined;
  const abs = resolve(named ? file : '.');
  let chain: Array<{ abs: string; display: string }> = [];
  if (named) {
    try {
      chain = [{ abs: realpathSync(abs), display: file }];
    } catch {
      // A name that is not a file on disk only labels messages.
    }
  }
  const baseDir = named ? dirname(abs) : abs;
  return finish(applyExtends(inlineLayer(tree, file), baseDir, chain, expanderFor(env)), env, options.overrides, named ? baseDir : undefined);
}
