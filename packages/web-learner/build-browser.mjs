#!/usr/bin/env node
// Bundles the /join page (src/page.ts) for the browser into dist/browser with esbuild, next to
// join.html and the tfjs wasm binaries. The bundle must not carry node-only code: the generated
// wire codecs import @grpc/grpc-js only for the service client the browser never uses, and
// @oiafed/models reaches node:* only inside Node-only functions (worker threads, file paths), so
// those imports resolve to small stubs that throw if ever called.
import { copyFileSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const here = dirname(fileURLToPath(import.meta.url));
const out = join(here, 'dist', 'browser');
const nodeOnly = (what) => `throw new Error('${what} is not available in the browser')`;
const STUBS = {
  '@grpc/grpc-js': `export class Client {} export function makeGenericClientConstructor() { return class {}; }`,
  'node:fs': `export function readFileSync() { ${nodeOnly('node:fs')} }`,
  'node:module': `export function createRequire() { ${nodeOnly('node:module')} }`,
  'node:path': `export function dirname() { ${nodeOnly('node:path')} } export function join() { ${nodeOnly('node:path')} }`,
  'node:url': `export function pathToFileURL() { ${nodeOnly('node:url')} }`,
  'node:worker_threads': `export class Worker { constructor() { ${nodeOnly('node:worker_threads')} } } export const parentPort = null; export const workerData = undefined; export const isMainThread = true;`,
};

const stubPlugin = {
  name: 'node-only-stubs',
  setup(b) {
    b.onResolve({ filter: /^(@grpc\/grpc-js|node:.*)$/ }, (args) => {
      if (!(args.path in STUBS)) return { errors: [{ text: `${args.path} (imported by ${args.importer}) has no browser stub` }] };
      return { path: args.path, namespace: 'stub' };
    });
    b.onLoad({ filter: /.*/, namespace: 'stub' }, (args) => ({ contents: STUBS[args.path], loader: 'js' }));
  },
};

/**
 * Bundles `entry` for the browser into `outfile` (ESM, minified), node-only imports stubbed;
 * throws if grpc-js or ws code got in anyway. Also used by bench/web-learner.
 */
export async function bundleForBrowser(entry, outfile) {
  const result = await build({
    entryPoints: [entry],
    outfile,
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    minify: true,
    conditions: ['@oiafed/source'],
    define: { 'process.env.NODE_ENV': '"production"' },
    plugins: [stubPlugin],
    logLevel: 'warning',
    metafile: true,
  });
  const leaked = Object.keys(result.metafile.inputs).filter((p) => /node_modules\/(@grpc|ws)\//.test(p));
  if (leaked.length > 0) throw new Error(`web-learner: node-only modules in the browser bundle: ${leaked.join(', ')}`);
}

/** The tfjs wasm binaries, copied into `dir`. */
export function copyWasmBinaries(dir) {
  mkdirSync(dir, { recursive: true });
  const wasmDir = dirname(createRequire(import.meta.url).resolve('@tensorflow/tfjs-backend-wasm/package.json'));
  for (const f of ['tfjs-backend-wasm.wasm', 'tfjs-backend-wasm-simd.wasm', 'tfjs-backend-wasm-threaded-simd.wasm'])
    copyFileSync(join(wasmDir, 'dist', f), join(dir, f));
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  rmSync(out, { recursive: true, force: true });
  await bundleForBrowser(join(here, 'src', 'page.ts'), join(out, 'join.js'));
  copyFileSync(join(here, 'assets', 'join.html'), join(out, 'join.html'));
  copyWasmBinaries(join(out, 'assets'));
  const size = readFileSync(join(out, 'join.js')).byteLength;
  console.log(`web-learner: dist/browser/join.js ${(size / 1024).toFixed(0)} KiB`);
}
