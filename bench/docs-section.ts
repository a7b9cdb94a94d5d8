/**
 * Writes one bench's section of docs/benchmarks.md: the `## <heading>` block up to the next `## `
 * is replaced (or appended when absent). The file is re-read right before writing, since other
 * benches own other sections of it.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** docs/benchmarks.md of this checkout. */
export const BENCHMARKS_FILE = resolve(dirname(fileURLToPath(import.meta.url)), '..', 'docs', 'benchmarks.md');

/** Replaces the section that starts with `heading` (e.g. `## bench:pfl`) by `markdown`; returns the file's path. */
export function writeDocsSection(heading: string, markdown: string, file = BENCHMARKS_FILE): string {
  mkdirSync(dirname(file), { recursive: true });
  const current = existsSync(file) ? readFileSync(file, 'utf8') : '# Benchmarks\n';
  const start = current.indexOf(`${heading}\n`);
  let next: string;
  if (start < 0) {
    next = `${current.replace(/\n*$/, '')}\n\n${markdown}\n`;
  } else {
    const after = current.indexOf('\n## ', start + heading.length);
    next = current.slice(0, start) + markdown + (after < 0 ? '\n' : `\n${current.slice(after + 1)}`);
  }
  writeFileSync(file, next);
  return file;
}
