import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolveConfig } from '@oiafed/config';
import { afterAll, describe, expect, it } from 'vitest';
import { buildAggregator, prepareNode } from '../src/index.js';
import { pluginSearchDirs, resolvePlugin } from '../src/plugins.js';

const root = mkdtempSync(join(tmpdir(), 'oiafed-core-plugins-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** Counts imports and register() calls of a plugin module on globalThis under `name`. */
function countingPlugin(name: string): string {
  return `globalThis.${name} ??= { imports: 0, registers: 0 };
globalThis.${name}.imports++;
export function register() { globalThis.${name}.registers++; }
`;
}

function counts(name: string): { imports: number; registers: number } | undefined {
  return (globalThis as Record<string, unknown>)[name] as { imports: number; registers: number } | undefined;
}

function write(path: string, text: string): void {
  mkdirSync(join(path, '..'), { recursive: true });
  writeFileSync(path, text);
}

const config = (plugins: string[], configDir?: string) =>
  resolveConfig({ node_id: 't', role: 'trainer', plugins, ...(configDir ? { config_dir: configDir } : {}) }, { env: {} });

describe('plugin lookup', () => {
  it('searches config_dir, then the working directory, then core itself, without repeats', () => {
    const dirs = pluginSearchDirs({ config_dir: join(root, 'project') }, join(root, 'elsewhere'));
    expect(dirs.map((d) => d.dir).slice(0, 2)).toEqual([join(root, 'project'), join(root, 'elsewhere')]);
    expect(dirs[2]!.why).toContain("CLI's own location");
    expect(pluginSearchDirs({ config_dir: root }, root)).toHaveLength(2);
  });

  it('finds an ESM-only package (exports with only an import condition) in the project, not in the cwd', () => {
    const project = join(root, 'esm-project');
    write(join(project, 'node_modules/esm-only-plugin/package.json'), JSON.stringify({ name: 'esm-only-plugin', type: 'module', exports: { '.': { import: './main.mjs' } } }));
    write(join(project, 'node_modules/esm-only-plugin/main.mjs'), countingPlugin('__esmOnly'));
    const found = resolvePlugin('esm-only-plugin', 'plugins[0]', pluginSearchDirs({ config_dir: project }, join(root, 'elsewhere')));
    expect(found.path).toBe(join(project, 'node_modules/esm-only-plugin/main.mjs'));
  });

  it('prefers the config directory over the working directory for a relative path', () => {
    write(join(root, 'a/p.mjs'), '');
    write(join(root, 'b/p.mjs'), '');
    const found = resolvePlugin('./p.mjs', 'plugins[0]', pluginSearchDirs({ config_dir: join(root, 'a') }, join(root, 'b')));
    expect(found.path).toBe(join(root, 'a/p.mjs'));
    expect(resolvePlugin('./p.mjs', 'plugins[0]', pluginSearchDirs({}, join(root, 'b'))).path).toBe(join(root, 'b/p.mjs'));
  });

  it('says every place it looked when a plugin is missing', () => {
    const dirs = pluginSearchDirs({ config_dir: join(root, 'project') }, join(root, 'elsewhere'));
    expect(() => resolvePlugin('oiafed-plugin-nowhere', 'plugins[1]', dirs)).toThrow(
      new RegExp(
        `^plugins\\[1\\]: cannot find plugin "oiafed-plugin-nowhere"; looked in: node_modules from ${join(root, 'project')} upward \\(the config file's directory\\); ` +
          `node_modules from ${join(root, 'elsewhere')} upward \\(the working directory\\); node_modules from .*core.* upward \\(the CLI's own location \\(@oiafed/core\\)\\)\\. ` +
          'install it in your project: npm install oiafed-plugin-nowhere$',
      ),
    );
    expect(() => resolvePlugin('./gone.mjs', 'plugins[0]', dirs)).toThrow(
      `looked in: ${join(root, 'project/gone.mjs')} (the config file's directory); ${join(root, 'elsewhere/gone.mjs')} (the working directory)`,
    );
  });
});

describe('prepareNode', () => {
  it('imports and registers each plugin once per process, however often it is called', async () => {
    const project = join(root, 'once');
    write(join(project, 'counted.mjs'), countingPlugin('__countedOnce'));
    const node = config(['./counted.mjs'], project);
    await prepareNode(node);
    await Promise.all([prepareNode(node), prepareNode({ ...node, node_id: 'learner_0' })]);
    expect(counts('__countedOnce')).toEqual({ imports: 1, registers: 1 });
  });

  it('a sync builder refuses a config whose plugins were not imported, naming prepareNode', () => {
    const project = join(root, 'unprepared');
    write(join(project, 'agg.mjs'), countingPlugin('__unprepared'));
    const node = resolveConfig(
      { node_id: 't', role: 'trainer', config_dir: project, aggregator: { type: 'fedavg', package: './agg.mjs' } },
      { env: {} },
    );
    expect(() => buildAggregator(node)).toThrow('aggregator fedavg: aggregator.package "./agg.mjs" not imported yet; call `await prepareNode(config)` first');
    expect(counts('__unprepared')).toBeUndefined();
  });

  it('names the plugin and its file when importing it fails', async () => {
    const project = join(root, 'broken');
    write(join(project, 'broken.mjs'), 'export function register() { throw new Error("no GPU here"); }\n');
    await expect(prepareNode(config(['./broken.mjs'], project))).rejects.toThrow(
      `plugins[0]: plugin "./broken.mjs" (${join(project, 'broken.mjs')}) failed to load: no GPU here`,
    );
  });
});
