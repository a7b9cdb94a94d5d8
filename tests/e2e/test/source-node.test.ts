/**
 * Child processes that run the TypeScript sources find tsx from inside the clone whatever their
 * cwd (issue 11 §1): `--import tsx` by bare name resolved from the child's cwd, so children with a
 * temp-dir cwd failed in a fresh clone with ERR_MODULE_NOT_FOUND.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { sourceNodeFlags, tsxLoaderUrl } from '../../source-node.js';
import { cliArgv, repoRoot, tempDir } from './helpers.js';

/** True when some folder above `dir` holds node_modules/tsx (then a bare `--import tsx` would work there). */
function tsxAbove(dir: string): boolean {
  for (let d = dir; ; d = dirname(d)) {
    if (existsSync(join(d, 'node_modules', 'tsx'))) return true;
    if (dirname(d) === d) return false;
  }
}

function tsFiles(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir).flatMap((entry) => {
    const path = join(dir, entry);
    if (entry === 'node_modules' || entry === 'dist') return [];
    if (statSync(path).isDirectory()) return tsFiles(path);
    return entry.endsWith('.ts') ? [path] : [];
  });
}

describe('node children run the sources from any cwd', () => {
  it('gives tsx as an absolute file URL inside the clone', () => {
    expect(tsxLoaderUrl).toMatch(/^file:\/\/\//);
    const file = fileURLToPath(tsxLoaderUrl);
    expect(relative(repoRoot, file).startsWith('node_modules')).toBe(true);
    expect(existsSync(file)).toBe(true);
    expect(cliArgv()).toContain(tsxLoaderUrl);
  });

  it('runs a .ts file whose cwd is a temp dir with no node_modules above it', () => {
    const dir = tempDir('source-node');
    writeFileSync(join(dir, 'probe.ts'), 'const flags: string[] = process.execArgv;\nconsole.log(JSON.stringify(flags));\n');
    const output = execFileSync(process.execPath, [...sourceNodeFlags(), 'probe.ts'], { cwd: dir, encoding: 'utf8' });
    expect(JSON.parse(output)).toContain(tsxLoaderUrl);
    if (!tsxAbove(dir)) {
      // The old way, for contrast: it only worked where a parent folder happened to hold tsx.
      const byName = 'tsx';
      const bare = spawnSync(process.execPath, ['--import', byName, 'probe.ts'], { cwd: dir, encoding: 'utf8' });
      expect(bare.status).not.toBe(0);
      expect(bare.stderr).toContain("Cannot find package 'tsx'");
    }
  });

  it('no test, benchmark or app passes a bare `tsx` to --import or resolves tsx on its own', () => {
    const roots = ['tests', 'bench', 'apps', 'packages', 'examples'].map((d) => join(repoRoot, d));
    const files = roots.flatMap(tsFiles).filter((file) => relative(repoRoot, file) !== 'tests/source-node.ts');
    const bare = /['"]--import['"],\s*['"]tsx['"]|['"]--import=tsx['"]/;
    const ownResolution = /resolve\(\s*['"]tsx['"]\s*\)/;
    const hits = files.filter((file) => bare.test(readFileSync(file, 'utf8'))).map((file) => relative(repoRoot, file));
    expect(hits).toEqual([]);
    const copies = files.filter((file) => ownResolution.test(readFileSync(file, 'utf8'))).map((file) => relative(repoRoot, file));
    expect(copies, 'use sourceNodeFlags() from tests/source-node.ts').toEqual([]);
  });
});
