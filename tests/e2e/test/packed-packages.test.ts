/**
 * What a user gets from the registry (issue 11 §2, §5b): every publishable package packed with
 * `npm pack` and checked as shipped (LICENSE, every export target, source maps), then the README's
 * install line and program run in an empty project outside the repo, and its public types
 * type-checked. Runs after `npm run build` (builds first when a dist/ is missing).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { repoRoot, tempDir } from './helpers.js';

interface Manifest {
  name: string;
  private?: boolean;
  license?: string;
  main?: string;
  types?: string;
  bin?: Record<string, string>;
  exports?: unknown;
  engines?: { node?: string };
  repository?: { type?: string; url?: string; directory?: string };
  publishConfig?: { access?: string };
  dependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
}

interface Workspace {
  dir: string;
  manifest: Manifest;
}

const SECTION = '## Use the packages in your own project';
const NPM_FLAGS = ['--no-audit', '--no-fund', '--prefer-offline', '--silent'];

function workspaces(): Workspace[] {
  return ['packages', 'apps'].flatMap((group) =>
    readdirSync(join(repoRoot, group))
      .map((name) => `${group}/${name}`)
      .filter((dir) => existsSync(join(repoRoot, dir, 'package.json')))
      .map((dir) => ({ dir, manifest: JSON.parse(readFileSync(join(repoRoot, dir, 'package.json'), 'utf8')) as Manifest })),
  );
}

const publishable = () => workspaces().filter((w) => !w.manifest.private);

/** npm run by the test sees no npm_* variables of the npm that started vitest (its prefix, its workspace). */
function cleanEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([key]) => !/^npm_/i.test(key) && !key.startsWith('OIAFED_')));
}

/** Every string leaf of an `exports` map (conditions and subpaths alike). */
function exportTargets(exportsField: unknown): string[] {
  if (typeof exportsField === 'string') return [exportsField];
  if (exportsField && typeof exportsField === 'object') return Object.values(exportsField).flatMap(exportTargets);
  return [];
}

/** Files a package.json points at: export targets, main, types and bins. */
function manifestTargets(m: Manifest): string[] {
  return [...exportTargets(m.exports), m.main, m.types, ...Object.values(m.bin ?? {})].filter((t): t is string => !!t);
}

function filesUnder(dir: string, suffix: string): string[] {
  return readdirSync(dir).flatMap((entry) => {
    const path = join(dir, entry);
    if (statSync(path).isDirectory()) return entry === 'node_modules' ? [] : filesUnder(path, suffix);
    return path.endsWith(suffix) ? [path] : [];
  });
}

/** Source-map `sources` that do not exist next to the map (resolved against its sourceRoot). */
function unresolvedMapSources(packageDir: string): string[] {
  return filesUnder(packageDir, '.map').flatMap((map) => {
    const { sources = [], sourceRoot = '' } = JSON.parse(readFileSync(map, 'utf8')) as { sources?: string[]; sourceRoot?: string };
    return sources.map((source) => resolve(dirname(map), sourceRoot, source)).filter((path) => !existsSync(path));
  });
}

/** Directories of every installed copy of `name` in a project's node_modules tree. */
function installedCopies(nodeModules: string, name: string): string[] {
  if (!existsSync(nodeModules)) return [];
  const packageDirs = readdirSync(nodeModules).flatMap((entry) =>
    entry.startsWith('@') ? readdirSync(join(nodeModules, entry)).map((sub) => join(nodeModules, entry, sub)) : [join(nodeModules, entry)],
  );
  return packageDirs.flatMap((dir) => {
    const own = existsSync(join(dir, 'package.json')) && JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')).name === name ? [dir] : [];
    return [...own, ...installedCopies(join(dir, 'node_modules'), name)];
  });
}

/** The README section's install line (package names) and its JavaScript program. */
function readmeRecipe(): { packages: string[]; program: string } {
  const readme = readFileSync(join(repoRoot, 'README.md'), 'utf8');
  const start = readme.indexOf(SECTION);
  expect(start, `README.md has a "${SECTION}" section`).toBeGreaterThan(0);
  const section = readme.slice(start, readme.indexOf('\n## ', start + SECTION.length));
  const install = /```bash\nnpm install ([^\n]+)\n```/.exec(section);
  const program = /```js\n([\s\S]*?)```/.exec(section);
  expect(install && program, 'the section has an `npm install` line and a ```js program').toBeTruthy();
  return { packages: install![1]!.trim().split(/\s+/), program: program![1]! };
}

/** The named packages plus the @oiafed packages they depend on: what the registry would install. */
function withInternalDependencies(names: string[], byName: Map<string, Manifest>): string[] {
  const seen = new Set<string>();
  const visit = (name: string) => {
    if (seen.has(name)) return;
    const manifest = byName.get(name);
    expect(manifest, `${name} is a publishable workspace package`).toBeDefined();
    seen.add(name);
    for (const dep of Object.keys(manifest!.dependencies ?? {})) if (dep.startsWith('@oiafed/')) visit(dep);
  };
  names.forEach(visit);
  return [...seen];
}

function ensureBuilt(packages: Workspace[]): void {
  const missing = packages.filter((w) => manifestTargets(w.manifest).some((t) => t.startsWith('./dist/') && !existsSync(join(repoRoot, w.dir, t))));
  if (missing.length > 0) execFileSync('npm', ['run', 'build'], { cwd: repoRoot, stdio: 'pipe', env: cleanEnv() });
}

/** Packs every publishable package into `dest`; returns tarball paths by package name. */
function packAll(packages: Workspace[], dest: string): Map<string, string> {
  const args = ['pack', ...packages.flatMap((w) => ['-w', w.manifest.name]), '--pack-destination', dest, '--json'];
  const packed = JSON.parse(execFileSync('npm', args, { cwd: repoRoot, encoding: 'utf8', env: cleanEnv() })) as Array<{ name: string; filename: string }>;
  return new Map(packed.map((p) => [p.name, join(dest, p.filename)]));
}

describe('publishable packages', () => {
  it('declare license, engines, repository, public access and ^ ranges; the example aggregator is private', () => {
    const example = workspaces().find((w) => w.dir === 'packages/aggregator-example');
    expect(example?.manifest.private).toBe(true);
    for (const { dir, manifest } of publishable()) {
      expect(manifest.license, dir).toBe('Apache-2.0');
      expect(manifest.engines?.node, dir).toBe('>=20');
      expect(manifest.repository?.directory, dir).toBe(dir);
      expect(manifest.publishConfig?.access, dir).toBe('public');
      const internal = Object.entries(manifest.dependencies ?? {}).filter(([name]) => name.startsWith('@oiafed/'));
      for (const [name, range] of internal) expect(range, `${dir}: ${name}`).toBe('^0.1.0');
      const tfjsPeers = Object.entries(manifest.peerDependencies ?? {}).filter(([name]) => name.startsWith('@tensorflow/'));
      for (const [name, range] of tfjsPeers) expect(range, `${dir}: peer ${name}`).toBe('~4.22.0');
    }
  });
});

describe('packed packages', () => {
  let tarballs = new Map<string, string>();
  let extracted = '';
  // The consumer project alone holds about 130 MB of node_modules: nothing stays behind in /tmp.
  const made: string[] = [];
  const scratch = (prefix: string) => {
    const dir = tempDir(prefix);
    made.push(dir);
    return dir;
  };
  afterAll(() => made.forEach((dir) => rmSync(dir, { recursive: true, force: true })));

  beforeAll(() => {
    const packages = publishable();
    ensureBuilt(packages);
    tarballs = packAll(packages, scratch('pack'));
    expect([...tarballs.keys()].sort()).toEqual(packages.map((w) => w.manifest.name).sort());
    extracted = scratch('unpacked');
    for (const [name, tarball] of tarballs) {
      const into = join(extracted, name);
      mkdirSync(into, { recursive: true });
      execFileSync('tar', ['-xzf', tarball, '-C', into]);
    }
  }, 300_000);

  it('ship the root LICENSE, every file their package.json points at, and the sources their maps name', () => {
    const license = readFileSync(join(repoRoot, 'LICENSE'), 'utf8');
    expect(license).toContain('Apache License');
    for (const name of tarballs.keys()) {
      const dir = join(extracted, name, 'package');
      const manifest = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as Manifest;
      expect(readFileSync(join(dir, 'LICENSE'), 'utf8'), `${name} LICENSE`).toBe(license);
      const missing = manifestTargets(manifest).filter((target) => !existsSync(join(dir, target)));
      expect(missing, `${name}: package.json targets missing from the tarball`).toEqual([]);
      expect(filesUnder(dir, '.map').length, `${name} ships source maps`).toBeGreaterThan(0);
      expect(unresolvedMapSources(dir), `${name}: source-map sources missing from the tarball`).toEqual([]);
      expect(filesUnder(dir, '.test.ts'), `${name} ships no tests`).toEqual([]);
    }
  });

  it("install with the README's line into an empty project, run its program for 2 rounds, type-check the public types", () => {
    const recipe = readmeRecipe();
    const byName = new Map(publishable().map((w) => [w.manifest.name, w.manifest]));
    // The tarballs stand in for the registry: the named packages and the @oiafed ones they pull in.
    const installed = withInternalDependencies(recipe.packages, byName);
    const project = scratch('consumer');
    writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'consumer', version: '1.0.0', type: 'module', private: true }));
    execFileSync('npm', ['install', ...installed.map((name) => tarballs.get(name)!), ...NPM_FLAGS], { cwd: project, stdio: 'pipe', env: cleanEnv() });

    const nodeModules = join(project, 'node_modules');
    expect(installedCopies(nodeModules, '@tensorflow/tfjs-core'), 'one tfjs-core copy').toHaveLength(1);
    expect(installedCopies(nodeModules, '@tensorflow/tfjs-backend-wasm')).toHaveLength(1);
    for (const name of installed) {
      const manifest = JSON.parse(readFileSync(join(nodeModules, name, 'package.json'), 'utf8')) as Manifest;
      const missing = exportTargets(manifest.exports).filter((target) => !existsSync(join(nodeModules, name, target)));
      expect(missing, `${name}: installed export targets`).toEqual([]);
    }

    writeFileSync(join(project, 'federation.mjs'), recipe.program);
    const output = execFileSync(process.execPath, ['federation.mjs'], { cwd: project, encoding: 'utf8', env: cleanEnv() });
    expect(output).toMatch(/^round\s+2\/2\b/m);
    const result = JSON.parse(output.trim().split('\n').at(-1)!) as { rounds: number; accuracy: number };
    expect(result.rounds).toBe(2);
    expect(Number.isFinite(result.accuracy)).toBe(true);

    // The config package's other door: the JSON Schema, and a YAML file loaded from disk.
    writeFileSync(join(project, 'trainer.yaml'), 'node_id: trainer\nrole: trainer\nmodel: {type: mlp}\n');
    const check = [
      "import { loadConfig } from '@oiafed/config';",
      "const schema = (await import('@oiafed/config/schema.json', { with: { type: 'json' } })).default;",
      "const c = loadConfig('trainer.yaml');",
      'console.log(JSON.stringify({ port: c.listen.port, rounds: c.trainer.args.max_rounds, schema: typeof schema.properties }));',
    ].join('\n');
    writeFileSync(join(project, 'check.mjs'), check);
    const loaded = execFileSync(process.execPath, ['check.mjs'], { cwd: project, encoding: 'utf8', env: cleanEnv() });
    expect(JSON.parse(loaded)).toEqual({ port: 50051, rounds: 10, schema: 'object' });

    writeFileSync(join(project, 'federation.ts'), recipe.program);
    writeConsumerTypes(project);
    const tsc = join(repoRoot, 'node_modules/typescript/bin/tsc');
    const checked = spawnSync(process.execPath, [tsc, '-p', join(project, 'tsconfig.json')], { cwd: project, encoding: 'utf8' });
    const errors = checked.stdout.split('\n').filter((line) => /error TS\d+/.test(line));
    // tfjs-layers 4.22's own declarations fail `strict` (most projects hide that with skipLibCheck);
    // every other file, the consumer's and @oiafed's declarations included, must check clean.
    expect(errors.filter((line) => !line.startsWith('node_modules/@tensorflow/tfjs-layers/'))).toEqual([]);
    expect(checked.status === 0 || errors.length > 0, checked.stderr).toBe(true);
  }, 240_000);
});

/** A TypeScript file against the installed declarations (the README program plus explicit public types). */
function writeConsumerTypes(project: string): void {
  const config = {
    compilerOptions: {
      target: 'ES2022',
      module: 'NodeNext',
      moduleResolution: 'NodeNext',
      strict: true,
      noEmit: true,
      skipLibCheck: false,
      // The consumer's own @types/node; the repo's copy keeps the test from a second download.
      types: ['node'],
      typeRoots: [join(repoRoot, 'node_modules/@types')],
    },
    files: ['types.ts', 'federation.ts'],
  };
  writeFileSync(join(project, 'tsconfig.json'), JSON.stringify(config));
  const source = [
    "import { loadConfig, resolveConfig, type NodeConfig } from '@oiafed/config';",
    "import { runSerial, type RoundRecord, type TrainingSummary } from '@oiafed/core';",
    '',
    'export async function accuracies(file?: string): Promise<number[]> {',
    "  const config: NodeConfig = file ? loadConfig(file) : resolveConfig({ node_id: 'trainer', role: 'trainer' });",
    '  const summary: TrainingSummary = await runSerial(config, { numClients: 2 });',
    '  return summary.rounds.map((round: RoundRecord) => round.accuracy ?? Number.NaN);',
    '}',
    '',
    '// The declarations are real types, not `any`: a missing required option is an error.',
    '// @ts-expect-error numClients is required',
    "void runSerial(resolveConfig({ node_id: 'trainer', role: 'trainer' }), {});",
  ].join('\n');
  writeFileSync(join(project, 'types.ts'), source);
}
