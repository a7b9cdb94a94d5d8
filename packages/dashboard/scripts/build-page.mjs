// Bundles the dashboard's page script (src/page/main.ts, with the chart module of @oiafed/tracker)
// into dist/dashboard.js: one browser file, no framework, served by the dashboard at /dashboard.js.
import { build } from 'esbuild';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
await build({
  absWorkingDir: root,
  entryPoints: ['src/page/main.ts'],
  outfile: 'dist/dashboard.js',
  bundle: true,
  format: 'iife',
  platform: 'browser',
  target: ['es2020'],
  // Bundle tracker's chart source, so the page does not depend on the build order of packages.
  conditions: ['@oiafed/source'],
  minify: true,
  legalComments: 'none',
  logLevel: 'warning',
});
