/**
 * Learners in a browser tab (issue 17 §2), in a real headless Chromium: a real trainer process,
 * two Node learner processes over gRPC and one Chromium tab that opens the trainer's /join page,
 * takes the partition the trainer serves (dashboard.serve_partitions) and trains over WebSocket
 * (transport.web). The tab's updates count in every round; a tab killed mid-round is a lost learner
 * like any other, and the run goes on.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, Page } from 'puppeteer-core';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { freeLoopbackPort } from '@oiafed/core';
import { Federation, killAll, repoRoot, type Proc } from '../../faults/test/helpers.js';
import { chromiumMissing, launchChromium, pageErrors, saveScreenshot } from './chromium.js';

interface PageState {
  status: string;
  backend?: string;
  detail?: string;
  trained: Array<{ round: number; accuracy: number; samplesPerSecond: number }>;
  global: Array<{ round: number; accuracy: number }>;
}

interface HistoryRecord {
  round: number;
  participants: number;
  selected: number;
  accuracy?: number;
  failed: Array<{ learner: string; reason: string }>;
}

let fed: Federation | undefined;
const browsers: Browser[] = [];

beforeAll(() => {
  if (chromiumMissing) return;
  // The page bundle is built by the package build; rebuild it so the test sees this source.
  const built = spawnSync(process.execPath, [join(repoRoot, 'packages/web-learner/build-browser.mjs')], { encoding: 'utf8' });
  if (built.status !== 0) throw new Error(`web-learner bundle build failed:\n${built.stderr}`);
}, 120_000);
afterEach(async () => {
  for (const b of browsers.splice(0)) await b.close().catch(() => undefined);
  await killAll();
  fed?.cleanup();
  fed = undefined;
});

/** A federation of 3 partitions with the dashboard, transport.web and served partitions on. */
async function startFederation(
  name: string,
  o: { rounds: number; minClients: number; localEpochs: number; authToken?: string; dashboardToken?: string },
): Promise<{ trainer: Proc; url: string }> {
  fed = new Federation(name, {
    numLearners: 3,
    rounds: o.rounds,
    minClients: o.minClients,
    port: await freeLoopbackPort(),
    localEpochs: o.localEpochs,
    roundTimeoutS: 60,
    heartbeat: { interval: 0.5, timeout: 5 },
    extra: {
      transport: { mode: 'grpc', grpc: { timeout: 30, ...(o.authToken ? { auth_token: o.authToken } : {}) }, web: { enabled: true, path: '/learn' } },
      dashboard: { enabled: true, host: '127.0.0.1', port: 0, serve_partitions: true, ...(o.dashboardToken ? { auth_token: o.dashboardToken } : {}) },
    },
  });
  const trainer = fed.startTrainer();
  fed.startLearner(0);
  fed.startLearner(1);
  const url = (await trainer.waitFor(/dashboard on (http:\/\/127\.0\.0\.1:\d+\/)/, 120_000, 'stderr'))[1]!;
  return { trainer, url };
}

function history(): HistoryRecord[] {
  return readFileSync(join(fed!.dir, 'run', 'history.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as HistoryRecord);
}

async function openJoinPage(url: string, nodeId: string, query = 'auto=1&partition=2'): Promise<{ browser: Browser; page: Page; errors: string[] }> {
  const browser = await launchChromium({ viewport: { width: 1100, height: 900 } });
  browsers.push(browser);
  const page = await browser.newPage();
  const errors = pageErrors(page);
  await page.goto(`${url}join?${query}&node_id=${nodeId}`, { waitUntil: 'load' });
  return { browser, page, errors };
}

const finished = (page: Page) =>
  page.waitForFunction(() => ['finished', 'failed'].includes((globalThis as unknown as { oiafedJoin: PageState }).oiafedJoin.status), { timeout: 240_000 });

const pageState = (page: Page) => page.evaluate(() => (globalThis as unknown as { oiafedJoin: PageState }).oiafedJoin);

describe.skipIf(chromiumMissing)('a browser tab as a learner (headless Chromium)', () => {
  it('trains with two gRPC learners to the end: its update counts in every round and accuracy rises', async () => {
    const { trainer, url } = await startFederation('web-learner', { rounds: 5, minClients: 3, localEpochs: 2 });
    const { page, errors } = await openJoinPage(url, 'browser_0');
    // While it trains, the dashboard lists the tab as a learner with the backend it registered.
    await page.waitForFunction(() => (globalThis as unknown as { oiafedJoin: PageState }).oiafedJoin.status === 'joined', { timeout: 120_000 });
    const snapshot = (await (await fetch(`${url}state`)).json()) as { learners: Array<{ id: string; backend?: string; samples?: number }> };
    expect(snapshot.learners.find((l) => l.id === 'browser_0')).toMatchObject({ backend: (await pageState(page)).backend, samples: 160 });
    await page.waitForFunction(() => ['finished', 'failed'].includes((globalThis as unknown as { oiafedJoin: PageState }).oiafedJoin.status), { timeout: 240_000 });
    const state = await pageState(page);
    await saveScreenshot(page, 'web-learner-join');
    expect(state.status, state.detail).toBe('finished');
    // --disable-gpu: webgl, if offered, is software GL, which the automatic choice passes over for wasm.
    expect(['webgl', 'wasm']).toContain(state.backend);
    console.info(`browser learner backend: ${state.backend}; samples/s by round: ${state.trained.map((t) => t.samplesPerSecond.toFixed(0)).join(', ')}`);
    expect(state.trained.map((t) => t.round)).toEqual([1, 2, 3, 4, 5]);
    const exit = await trainer.exited;
    expect(exit.code, trainer.tail()).toBe(0);
    const rounds = history();
    expect(rounds).toHaveLength(5);
    // Three learners selected and aggregated each round: the tab is one of them.
    expect(rounds.map((r) => [r.selected, r.participants])).toEqual(Array(5).fill([3, 3]));
    expect(rounds.flatMap((r) => r.failed)).toEqual([]);
    expect(rounds.at(-1)!.accuracy!).toBeGreaterThan(rounds[0]!.accuracy! + 0.05);
    // The page follows the dashboard's round events (the global curve).
    expect(state.global.length).toBeGreaterThan(0);
    expect(trainer.tail(200_000)).toMatch(/peer joined.*browser_0.*websocket/);
    expect(errors).toEqual([]);
  }, 300_000);

  it("trains on a CSV the user picks, with the trainer's auth token typed into the page and the dashboard's in its URL", async () => {
    const { trainer, url } = await startFederation('web-learner-csv', { rounds: 2, minClients: 3, localEpochs: 1, authToken: 'learner-secret', dashboardToken: 'dash secret' });
    // The dashboard's token guards the page and its files; the page passes it on to each of them.
    expect((await fetch(`${url}join/config.json`)).status).toBe(401);
    // 120 rows of the synthetic task's shape: 60 numeric features and a label column.
    const rows = Array.from({ length: 120 }, (_, r) => [...Array.from({ length: 60 }, (_, c) => ((r * 7 + c * 13) % 17) / 17), r % 10].join(','));
    const csv = join(fed!.dir, 'mine.csv');
    writeFileSync(csv, `${[...Array.from({ length: 60 }, (_, c) => `f${c}`), 'label'].join(',')}\n${rows.join('\n')}\n`);
    const { page, errors } = await openJoinPage(url, 'browser_csv', 'learner_token=learner-secret&token=dash%20secret');
    await page.select('#source', 'csv');
    const input = await page.$('input#csv');
    await input!.uploadFile(csv);
    await page.click('#join');
    await finished(page);
    const state = await pageState(page);
    expect(state.status, state.detail).toBe('finished');
    expect(state.trained.map((t) => t.round)).toEqual([1, 2]);
    expect((await trainer.exited).code, trainer.tail()).toBe(0);
    expect(history().map((r) => r.participants)).toEqual([3, 3]);
    expect(errors).toEqual([]);
  }, 300_000);

  it('a tab killed mid-round is lost like any learner: the round records it failed and the run goes on', async () => {
    const { trainer, url } = await startFederation('web-learner-kill', { rounds: 6, minClients: 2, localEpochs: 40 });
    const { browser, page } = await openJoinPage(url, 'browser_k');
    // In round 2's local training (after one full round): kill the whole browser process.
    await page.waitForFunction(() => /^round 2: epoch ([1-9]|[12]\d)\//.test(document.getElementById('progress')?.textContent ?? ''), { timeout: 240_000, polling: 5 });
    browser.process()!.kill('SIGKILL');
    const exit = await trainer.exited;
    expect(exit.code, trainer.tail()).toBe(0);
    const rounds = history();
    expect(rounds).toHaveLength(6);
    expect(rounds[0]!.participants).toBe(3);
    expect(rounds[1]!.failed.map((f) => f.learner)).toContain('browser_k');
    expect(rounds.slice(2).every((r) => r.participants === 2)).toBe(true);
  }, 300_000);
});
