import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { repoRoot } from './helpers.js';

/** Source files of every workspace package and app, generated code and tests left out. */
function sourceFiles(): string[] {
  const files: string[] = [];
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir)) {
      const path = join(dir, entry);
      if (statSync(path).isDirectory()) {
        if (entry !== 'generated' && entry !== 'testing' && entry !== 'node_modules') walk(path);
      } else if (entry.endsWith('.ts') && !entry.endsWith('.test.ts')) {
        files.push(path);
      }
    }
  };
  for (const group of ['packages', 'apps']) {
    for (const pkg of readdirSync(join(repoRoot, group))) walk(join(repoRoot, group, pkg, 'src'));
  }
  return files;
}

function offenders(pattern: RegExp): string[] {
  return sourceFiles().flatMap((file) =>
    readFileSync(file, 'utf8')
      .split('\n')
      .map((line, i) => (pattern.test(line) ? `${relative(repoRoot, file)}:${i + 1}: ${line.trim()}` : undefined))
      .filter((hit): hit is string => hit !== undefined),
  );
}

describe('repository conventions (CONVENTIONS.md)', () => {
  it('has no default exports', () => {
    expect(offenders(/^\s*export default\b/)).toEqual([]);
  });

  it('has no console output inside packages (a logger per module instead)', () => {
    const hits = offenders(/\bconsole\.(log|info|warn|error|debug)\(/).filter((hit) => hit.startsWith('packages/'));
    expect(hits).toEqual([]);
  });

  it('never imports another package by path (src/ or dist/)', () => {
    expect(offenders(/from '(@oiafed\/[a-z-]+\/(src|dist)|(\.\.\/)+(packages|apps)\/)/)).toEqual([]);
  });

  it('lists each public API export by name (no `export *`)', () => {
    expect(offenders(/^\s*export \* from/)).toEqual([]);
  });
});
