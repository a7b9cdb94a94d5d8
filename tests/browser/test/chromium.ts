/**
 * Headless Chromium for the browser tests: Debian's apt `chromium` driven by puppeteer-core
 * (npm's browser downloads do not work offline). Shared by the dashboard and browser-learner tests.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';

/** The browser binary; OIAFED_CHROMIUM overrides it. */
export const CHROMIUM_PATH = process.env.OIAFED_CHROMIUM ?? '/usr/bin/chromium';

/** Undefined when Chromium can run here; otherwise why the browser tests skip. */
export const chromiumMissing: string | undefined = existsSync(CHROMIUM_PATH)
  ? undefined
  : `${CHROMIUM_PATH} not found: install Debian's chromium (apt-get install chromium; .ci/run does) to run the browser tests`;

/** tests/browser/artifacts/ (gitignored): screenshots and logs a run leaves for people to look at. */
export const ARTIFACTS_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '../artifacts');

/** Options of {@link launchChromium}. */
export interface LaunchOptions {
  /** Extra command-line switches. */
  args?: string[];
  /** Default 1280x800. */
  viewport?: { width: number; height: number };
}

/** Starts headless Chromium (no sandbox: CI runs as root). Close it with `browser.close()`. */
export async function launchChromium(options: LaunchOptions = {}): Promise<Browser> {
  return puppeteer.launch({
    executablePath: CHROMIUM_PATH,
    headless: true,
    args: ['--no-sandbox', '--headless=new', '--disable-dev-shm-usage', '--disable-gpu', ...(options.args ?? [])],
    defaultViewport: options.viewport ?? { width: 1280, height: 800 },
    timeout: 60_000,
  });
}

/** Collects the page's console errors and uncaught exceptions (tests assert there are none). */
export function pageErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on('pageerror', (err) => errors.push(`pageerror: ${err instanceof Error ? err.message : String(err)}`));
  page.on('console', (msg) => {
    if (msg.type() === 'error') errors.push(`console: ${msg.text()}`);
  });
  return errors;
}

/** Saves a full-page PNG under {@link ARTIFACTS_DIR} and returns its path. */
export async function saveScreenshot(page: Page, name: string): Promise<string> {
  mkdirSync(ARTIFACTS_DIR, { recursive: true });
  const file = join(ARTIFACTS_DIR, `${name}.png`);
  await page.screenshot({ path: file as `${string}.png`, fullPage: true });
  return file;
}
