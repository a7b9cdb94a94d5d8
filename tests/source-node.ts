/**
 * How tests and benchmarks start Node on this repo's TypeScript sources: the `@oiafed/source`
 * export condition plus tsx's loader given by absolute file URL.
 *
 * A bare `--import tsx` is resolved from the child's cwd, not from the repo: a child whose cwd is
 * a temp dir finds tsx only where some parent folder of that dir happens to hold a node_modules,
 * so it passes on one machine and fails in a fresh clone. Resolving once, here, from this file's
 * location keeps every child inside the clone whatever its cwd.
 */
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';

/** file:// URL of the module `--import tsx` loads (tsx's "." export: dist/loader.mjs). */
export const tsxLoaderUrl: string = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;

/** Node flags that run `.ts` sources of this repo from any cwd: `node ...sourceNodeFlags() file.ts`. */
export function sourceNodeFlags(): string[] {
  return ['--conditions=@oiafed/source', '--import', tsxLoaderUrl];
}
