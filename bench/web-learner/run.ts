/**
 * bench:web (issue 17 §2): training throughput of a browser learner against a Node learner on
 * the same model, data and settings (FedModel.train, SGD, batch 32, one warm-up epoch first).
 * Node: the learner's default engine here (patched wasm; 1 thread, and every core as learners
 * use by default). Browser: headless Chromium (/usr/bin/chromium, or OIAFED_CHROMIUM) with the
 * page's backends webgl (software GL without a GPU), wasm (one thread) and cpu.
 *
 *   npm run bench:web -- [--model mlp|lenet] [--samples N] [--epochs N] [--backends webgl,wasm,cpu]
 *   (or: npx tsx --conditions=@oiafed/source bench/web-learner/run.ts ...)
 *
 * The Node rows and the browser rows run one after the other on the same machine; on a loaded
 * machine, compare rows of one run, not numbers across runs.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import puppeteer from 'puppeteer-core';
import { selectBackend } from '@oiafed/models';
import { COUNT, numberFlag, readFlags } from '../args.js';
import { runWorkload, WORKLOADS, type Workload } from './workload.js';

const here = dirname(fileURLToPath(import.meta.url));
const values = readFlags(
  process.argv.slice(2),
  {
    model: { type: 'string', default: 'lenet' },
    samples: { type: 'string', default: '1024' },
    epochs: { type: 'string', default: '2' },
    backends: { type: 'string', default: 'webgl,wasm,cpu' },
  },
  'bench/web-learner/run.ts',
);
const base = WORKLOADS[values.model];
if (!base) throw new Error(`--model: one of ${Object.keys(WORKLOADS).join(', ')}`);
const workload: Workload = { ...base, samples: numberFlag('--samples', values.samples, COUNT), epochs: numberFlag('--epochs', values.epochs, COUNT) };

async function nodeRows(): Promise<Array<[string, number]>> {
  const info = await selectBackend('cpu');
  const rows: Array<[string, number]> = [[`node ${info.backend}, 1 thread`, (await runWorkload(workload, 1)).samplesPerSecond]];
  const cores = availableParallelism();
  if (cores > 1) rows.push([`node ${info.backend}, ${cores} threads`, (await runWorkload(workload, cores)).samplesPerSecond]);
  return rows;
}

/** Serves the bench page, its bundle and the wasm binaries on 127.0.0.1. */
async function servePage(dir: string): Promise<{ url: string; close(): void }> {
  const files: Record<string, [string, string]> = {
    '/': ['text/html', '<!doctype html><script type="module" src="/bench.js"></script>'],
    '/bench.js': ['text/javascript', join(dir, 'bench.js')],
  };
  const server = createServer((req, res) => {
    const path = req.url ?? '/';
    if (path.startsWith('/assets/')) return res.writeHead(200, { 'content-type': 'application/wasm' }).end(readFileSync(join(dir, 'assets', path.slice(8))));
    const f = files[path];
    if (!f) return res.writeHead(404).end();
    res.writeHead(200, { 'content-type': f[0] }).end(path === '/' ? f[1] : readFileSync(f[1]));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`, close: () => server.close() };
}

async function browserRows(): Promise<Array<[string, number]>> {
  const dir = mkdtempSync(join(tmpdir(), 'oiafed-bench-web-'));
  const { bundleForBrowser, copyWasmBinaries } = (await import(join(here, '../../packages/web-learner/build-browser.mjs'))) as {
    bundleForBrowser(entry: string, out: string): Promise<void>;
    copyWasmBinaries(dir: string): void;
  };
  await bundleForBrowser(join(here, 'page.ts'), join(dir, 'bench.js'));
  copyWasmBinaries(join(dir, 'assets'));
  const page = await servePage(dir);
  const browser = await puppeteer.launch({
    executablePath: process.env.OIAFED_CHROMIUM ?? '/usr/bin/chromium',
    args: ['--no-sandbox', '--headless=new', '--disable-dev-shm-usage'],
  });
  const rows: Array<[string, number]> = [];
  try {
    for (const backend of values.backends!.split(',')) {
      const tab = await browser.newPage();
      await tab.goto(page.url, { waitUntil: 'load' });
      await tab.waitForFunction(() => 'benchTrain' in globalThis);
      const r = await tab.evaluate(
        (b, w) => (globalThis as unknown as { benchTrain(b: string, w: unknown): Promise<{ backend: string; samplesPerSecond: number }> }).benchTrain(b, w),
        backend,
        workload,
      );
      rows.push([`chromium ${r.backend}`, r.samplesPerSecond]);
      await tab.close();
    }
  } finally {
    await browser.close();
    page.close();
    rmSync(dir, { recursive: true, force: true });
  }
  return rows;
}

const load = loadavg()[0]!.toFixed(2);
const rows = [...(await nodeRows()), ...(await browserRows())];
const ref = rows[0]![1];
console.log(`bench:web  model ${values.model}, ${workload.samples} samples x ${workload.epochs} epochs, batch ${workload.batchSize}, SGD; load average ${load} at start`);
for (const [name, sps] of rows) console.log(`${name.padEnd(28)} ${sps.toFixed(0).padStart(8)} samples/s   ${(sps / ref).toFixed(2)}x node 1 thread`);
