/**
 * Finds and imports the modules a config names in `plugins` and `aggregator.package`. A plugin
 * belongs to the user's project, not to wherever the CLI happens to be installed, so names are
 * looked up from the config's directory first, then the working directory, then the CLI's own
 * location; each module is imported and registered once per process.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { NodeConfig } from '@oiafed/config';
import type { Logger } from './logger.js';

/** One place a plugin is looked up from, with why it is on the list (for messages). */
export interface PluginSearchDir {
  dir: string;
  why: string;
}

/** A plugin a config names, resolved to the file that will be imported. */
export interface ResolvedPlugin {
  spec: string;
  /** Config key that named it: `plugins[0]`, `aggregator.package`. */
  key: string;
  path: string;
}

const LOADED_KEY = Symbol.for('@oiafed/core/loaded-plugins');

interface LoadedPlugins {
  /** Imports started, by file. */
  loading: Map<string, Promise<void>>;
  /** Files imported and registered. */
  done: Set<string>;
}

/** Plugin files imported in this process (shared by two copies of core, like the registries). */
function loadedPlugins(): LoadedPlugins {
  const g = globalThis as { [LOADED_KEY]?: LoadedPlugins };
  g[LOADED_KEY] ??= { loading: new Map(), done: new Set() };
  return g[LOADED_KEY];
}

/** Whether a resolved plugin has been imported and registered in this process. */
export function isPluginLoaded(plugin: ResolvedPlugin): boolean {
  return loadedPlugins().done.has(plugin.path);
}

/** config_dir (the config file's directory), the working directory, then @oiafed/core's own location; no repeats. */
export function pluginSearchDirs(config: Pick<NodeConfig, 'config_dir'>, cwd = process.cwd()): PluginSearchDir[] {
  const dirs: PluginSearchDir[] = [];
  const add = (dir: string | undefined, why: string) => {
    if (dir && !dirs.some((d) => d.dir === resolve(dir))) dirs.push({ dir: resolve(dir), why });
  };
  add(config.config_dir, "the config file's directory");
  add(cwd, 'the working directory');
  add(dirname(fileURLToPath(import.meta.url)), "the CLI's own location (@oiafed/core)");
  return dirs;
}

/** The conditions Node resolves `exports` with here: `import`, `node`, `default` and any `--conditions`. */
function activeConditions(): Set<string> {
  const conditions = new Set(['import', 'node', 'default']);
  const argv = [...process.execArgv, ...(process.env.NODE_OPTIONS ?? '').split(/\s+/)];
  argv.forEach((arg, i) => {
    const inline = /^(?:--conditions|-C)=(.+)$/.exec(arg);
    if (inline) conditions.add(inline[1]!);
    else if ((arg === '--conditions' || arg === '-C') && argv[i + 1]) conditions.add(argv[i + 1]!);
  });
  return conditions;
}

/** The target of an `exports` value under the active conditions (first matching key wins, as in Node). */
function exportTarget(value: unknown, conditions: Set<string>): string | undefined {
  if (typeof value === 'string') return value;
  if (Array.isArray(value)) return value.map((v) => exportTarget(v, conditions)).find(Boolean);
  if (value && typeof value === 'object') {
    for (const [key, nested] of Object.entries(value)) {
      if (conditions.has(key)) {
        const target = exportTarget(nested, conditions);
        if (target) return target;
      }
    }
  }
  return undefined;
}

/**
 * The entry file of an ESM-only package (`exports` with an `import` condition only), which
 * require.resolve refuses: `node_modules/<name>` searched upward from `dir`, its `exports["."]`.
 */
function esmEntry(spec: string, dir: string): string | undefined {
  const match = /^((?:@[^/]+\/)?[^/]+)$/.exec(spec);
  if (!match) return undefined;
  for (let at = dir; ; at = dirname(at)) {
    const pkgDir = join(at, 'node_modules', spec);
    if (existsSync(join(pkgDir, 'package.json'))) {
      const pkg = JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8')) as { exports?: unknown };
      const exports = pkg.exports && typeof pkg.exports === 'object' && '.' in pkg.exports ? (pkg.exports as Record<string, unknown>)['.'] : pkg.exports;
      const target = exportTarget(exports, activeConditions());
      return target ? resolve(pkgDir, target) : undefined;
    }
    if (dirname(at) === at) return undefined;
  }
}

/** The file a bare package name resolves to from `dir` (Node's own rules), or undefined. */
function resolveBareFrom(spec: string, dir: string): string | undefined {
  try {
    return createRequire(join(dir, '__oiafed_plugin_lookup__.js')).resolve(spec);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ERR_PACKAGE_PATH_NOT_EXPORTED') return esmEntry(spec, dir);
    if (code === 'MODULE_NOT_FOUND') return undefined;
    throw error;
  }
}

function isFile(path: string): boolean {
  return existsSync(path) && statSync(path).isFile();
}

/**
 * The file a plugin spec names: `./x.mjs` / `../x.mjs` from each search dir in turn, an absolute
 * path or file: URL as is, a package name through node_modules from each search dir in turn.
 * Throws, naming the config key and every place it looked, when nothing matches.
 */
export function resolvePlugin(spec: string, key: string, dirs: readonly PluginSearchDir[]): ResolvedPlugin {
  const asPath = spec.startsWith('file:') ? fileURLToPath(spec) : isAbsolute(spec) ? spec : undefined;
  if (asPath !== undefined) {
    if (isFile(asPath)) return { spec, key, path: asPath };
    throw new Error(`${key}: plugin "${spec}" not found: ${asPath} is not a file`);
  }
  const relative = spec.startsWith('./') || spec.startsWith('../') || spec === '.' || spec === '..';
  const looked: string[] = [];
  for (const { dir, why } of dirs) {
    const path = relative ? resolve(dir, spec) : resolveBareFrom(spec, dir);
    if (path !== undefined && isFile(path)) return { spec, key, path };
    looked.push(relative ? `${resolve(dir, spec)} (${why})` : `node_modules from ${dir} upward (${why})`);
  }
  const hint = relative ? 'check the path (relative to the config file)' : `install it in your project: npm install ${spec}`;
  throw new Error(`${key}: cannot find plugin "${spec}"; looked in: ${looked.join('; ')}. ${hint}`);
}

/** The plugins a config names: `plugins[i]`, then `aggregator.package`. */
export function pluginSpecs(config: Pick<NodeConfig, 'plugins' | 'aggregator'>): Array<{ spec: string; key: string }> {
  const entries = config.plugins.map((spec, i) => ({ spec, key: `plugins[${i}]` }));
  if (config.aggregator.package) entries.push({ spec: config.aggregator.package, key: 'aggregator.package' });
  return entries;
}

/**
 * Imports one resolved plugin and calls its `register()` export, once per file per process:
 * a second node in the same process (serial mode) or a second call is a no-op.
 */
export function importPlugin(plugin: ResolvedPlugin, logger: Logger): Promise<void> {
  const { loading: cache, done } = loadedPlugins();
  const known = cache.get(plugin.path);
  if (known) return known;
  const loading = (async () => {
    let module: { register?: () => unknown };
    try {
      module = (await import(pathToFileURL(plugin.path).href)) as { register?: () => unknown };
      await module.register?.();
    } catch (error) {
      cache.delete(plugin.path);
      throw new Error(`${plugin.key}: plugin "${plugin.spec}" (${plugin.path}) failed to load: ${(error as Error).message}`, { cause: error });
    }
    done.add(plugin.path);
    logger.info(`loaded plugin ${plugin.spec} from ${plugin.path}`);
  })();
  cache.set(plugin.path, loading);
  return loading;
}
