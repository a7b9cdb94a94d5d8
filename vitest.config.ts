import { readdirSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { defaultServerConditions } from 'vite';
import { defineConfig } from 'vitest/config';

/**
 * One vitest project per workspace package, named after the folder. Tests import sibling
 * packages through the `@oiafed/source` export condition, so they run against `src/`
 * without a build step.
 */
const conditions = ['@oiafed/source', ...defaultServerConditions];

const projectDirs = ['packages', 'apps', 'tests'].flatMap((group) =>
  existsSync(group)
    ? readdirSync(group, { withFileTypes: true })
        .filter((entry) => entry.isDirectory() && existsSync(join(group, entry.name, 'package.json')))
        .map((entry) => join(group, entry.name))
    : [],
);

export default defineConfig({
  test: {
    // vitest's default is cores - 1 workers, one on a 2-core CI machine: most test files wait on
    // child processes and sockets, not on the CPU, so two at a time nearly halves the wall time.
    maxWorkers: 2,
    projects: projectDirs.map((dir) => ({
      extends: false,
      resolve: { conditions },
      ssr: { resolve: { conditions } },
      test: {
        name: dir.split('/').pop(),
        root: dir,
        include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
        testTimeout: 60_000,
        hookTimeout: 60_000,
      },
    })),
  },
});
