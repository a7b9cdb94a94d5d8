/**
 * File downloads that never leave a half-written file: bytes go to a uniquely named temp file
 * beside the destination, are checked (length, md5/sha256), synced and only then renamed.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, rename, unlink } from 'node:fs/promises';
import * as http from 'node:http';
import * as https from 'node:https';
import { basename, dirname } from 'node:path';
import { silentLogger, type Logger } from './types.js';

/** Options of {@link downloadFile}. */
export interface DownloadOptions {
  /** Expected SHA-256 (hex) of the whole file. */
  sha256?: string;
  /** Expected MD5 (hex) of the whole file. */
  md5?: string;
  logger?: Logger;
  /** Called as bytes arrive; `total` is the Content-Length when the server sent one. */
  onProgress?: (received: number, total?: number) => void;
  signal?: AbortSignal;
  /** Further attempts after a network error or 5xx / 408 / 429 answer. Default 0. */
  retries?: number;
  /** Wait before retry n is `retryDelayMs * n`. Default 500. */
  retryDelayMs?: number;
  /** Socket idle time after which an attempt fails. Default 60 s. */
  timeoutMs?: number;
  /** Draw a progress bar on stderr. Default: when stderr is a TTY; otherwise log lines every 10%. */
  progressBar?: boolean;
}

/** An answer other than 200 (after redirects). */
export class DownloadHttpError extends Error {
  constructor(
    readonly url: string,
    readonly status: number,
  ) {
    super(`download ${url}: server answered HTTP ${status}`);
    this.name = 'DownloadHttpError';
  }
  /** Whether another attempt may succeed. */
  get retryable(): boolean {
    return this.status >= 500 || this.status === 408 || this.status === 429;
  }
}

/** The downloaded bytes did not match the expected checksum. */
export class ChecksumMismatchError extends Error {
  constructor(
    readonly url: string,
    readonly algorithm: string,
    readonly expected: string,
    readonly actual: string,
  ) {
    super(`download ${url}: ${algorithm} mismatch, expected ${expected}, got ${actual}; the partial file was deleted`);
    this.name = 'ChecksumMismatchError';
  }
}

/** A file already on disk did not match the checksum it must have. */
export class FileChecksumError extends Error {
  constructor(
    readonly path: string,
    readonly algorithm: string,
    readonly expected: string,
    readonly actual: string,
  ) {
    super(
      `${path}: ${algorithm} mismatch, expected ${expected}, got ${actual}; ` +
        'the file is corrupt or not the one expected: delete it to download it again (or set checksums: false to trust it)',
    );
    this.name = 'FileChecksumError';
  }
}

/**
 * Checks a file already on disk against the md5/sha256 a download of it would have to match
 * (a pre-placed or left-over archive gets the same check as a fresh download).
 */
export async function verifyFileChecksum(path: string, expected: { md5?: string; sha256?: string }): Promise<void> {
  const wanted = (['md5', 'sha256'] as const).filter((a) => expected[a]);
  if (wanted.length === 0) return;
  const hashes = wanted.map((a) => createHash(a));
  for await (const chunk of createReadStream(path) as AsyncIterable<Buffer>) for (const h of hashes) h.update(chunk);
  wanted.forEach((algorithm, i) => {
    const actual = hashes[i]!.digest('hex');
    if (actual !== expected[algorithm]!.toLowerCase()) throw new FileChecksumError(path, algorithm, expected[algorithm]!, actual);
  });
}

const MAX_REDIRECTS = 5;

/**
 * Downloads `url` to `dest` (http or https, redirects followed). On any failure the temp file is
 * deleted and `dest` is untouched; a checksum mismatch or a 4xx answer is not retried.
 */
export async function downloadFile(url: string, dest: string, options: DownloadOptions = {}): Promise<void> {
  const logger = options.logger ?? silentLogger;
  const retries = options.retries ?? 0;
  if (!Number.isInteger(retries) || retries < 0) {
    throw new RangeError(`downloadFile: retries must be a non-negative integer, got ${String(options.retries)}`);
  }
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new Error(`downloadFile: invalid URL ${JSON.stringify(url)}`);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw new Error(`downloadFile: unsupported protocol ${parsed.protocol} in ${url}; expected http: or https:`);
  }
  await mkdir(dirname(dest), { recursive: true });
  for (let attempt = 0; ; attempt++) {
    options.signal?.throwIfAborted();
    try {
      await attemptDownload(parsed, dest, options, logger);
      return;
    } catch (err) {
      const retryable =
        !(err instanceof ChecksumMismatchError) &&
        !(err instanceof DownloadHttpError && !err.retryable) &&
        !options.signal?.aborted;
      if (!retryable || attempt >= retries) {
        if (err instanceof DownloadHttpError || err instanceof ChecksumMismatchError) throw err;
        const reason = err instanceof Error ? err.message : String(err);
        throw new Error(`download ${url} failed after ${attempt + 1} attempt(s): ${reason}`, { cause: err });
      }
      const delay = (options.retryDelayMs ?? 500) * (attempt + 1);
      logger.warn(`download ${url} failed (attempt ${attempt + 1} of ${retries + 1}); retrying in ${delay} ms`, {
        error: err instanceof Error ? err.message : String(err),
      });
      await sleep(delay, options.signal);
    }
  }
}

async function attemptDownload(url: URL, dest: string, options: DownloadOptions, logger: Logger): Promise<void> {
  const tmp = `${dest}.${randomBytes(6).toString('hex')}.part`;
  const md5 = options.md5 ? createHash('md5') : undefined;
  const sha256 = options.sha256 ? createHash('sha256') : undefined;
  const file = await open(tmp, 'wx');
  let closed = false;
  try {
    const res = await request(url, options, MAX_REDIRECTS);
    const header = res.headers['content-length'];
    const total = header !== undefined && /^\d+$/.test(header) ? Number(header) : undefined;
    const progress = createProgress(url.href, basename(dest), total, options, logger);
    let received = 0;
    for await (const chunk of res as AsyncIterable<Buffer>) {
      await file.write(chunk);
      md5?.update(chunk);
      sha256?.update(chunk);
      received += chunk.length;
      progress(received);
    }
    progress(received, true);
    if (total !== undefined && received !== total) {
      throw new Error(`connection closed after ${received} of ${total} bytes`);
    }
    checkDigest(url.href, 'md5', options.md5, md5);
    checkDigest(url.href, 'sha256', options.sha256, sha256);
    await file.sync();
    await file.close();
    closed = true;
    await rename(tmp, dest);
    logger.info(`downloaded ${url.href} -> ${dest} (${received} bytes)`);
  } catch (err) {
    if (!closed) await file.close().catch(() => undefined);
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
}

function checkDigest(url: string, algorithm: string, expected: string | undefined, hash: ReturnType<typeof createHash> | undefined): void {
  if (!expected || !hash) return;
  const actual = hash.digest('hex');
  if (actual.toLowerCase() !== expected.toLowerCase()) throw new ChecksumMismatchError(url, algorithm, expected, actual);
}

function request(url: URL, options: DownloadOptions, redirectsLeft: number): Promise<http.IncomingMessage> {
  return new Promise((resolve, reject) => {
    const mod = url.protocol === 'https:' ? https : http;
    const req = mod.get(
      url,
      { agent: false, signal: options.signal, headers: { 'user-agent': 'oiafed-datasets', 'accept-encoding': 'identity' } },
      (res) => {
        const status = res.statusCode ?? 0;
        if (status >= 300 && status < 400 && res.headers.location) {
          res.resume();
          if (redirectsLeft <= 0) {
            reject(new Error(`too many redirects at ${url.href}`));
            return;
          }
          const next = new URL(res.headers.location, url);
          resolve(request(next, options, redirectsLeft - 1));
          return;
        }
        if (status !== 200) {
          res.resume();
          reject(new DownloadHttpError(url.href, status));
          return;
        }
        res.setTimeout(options.timeoutMs ?? 60_000, () => res.destroy(new Error(`no data for ${options.timeoutMs ?? 60_000} ms`)));
        resolve(res);
      },
    );
    req.setTimeout(options.timeoutMs ?? 60_000, () => req.destroy(new Error(`no answer for ${options.timeoutMs ?? 60_000} ms`)));
    req.on('error', reject);
  });
}

function createProgress(
  url: string,
  name: string,
  total: number | undefined,
  options: DownloadOptions,
  logger: Logger,
): (received: number, done?: boolean) => void {
  const bar = options.progressBar ?? Boolean(process.stderr.isTTY);
  let lastDecile = -1;
  let lastDraw = 0;
  logger.info(`downloading ${url}${total !== undefined ? ` (${formatBytes(total)})` : ''}`);
  return (received, done = false) => {
    options.onProgress?.(received, total);
    if (bar) {
      const now = Date.now();
      if (!done && now - lastDraw < 100) return;
      lastDraw = now;
      const frac = total ? Math.min(1, received / total) : 0;
      const width = 30;
      const filled = Math.round(frac * width);
      const pct = total ? `${(frac * 100).toFixed(0).padStart(3)}%` : '';
      process.stderr.write(
        `\r${name} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${pct} ${formatBytes(received)}${total ? `/${formatBytes(total)}` : ''}${done ? '\n' : ''}`,
      );
      return;
    }
    if (total) {
      const decile = Math.floor((received / total) * 10);
      if (decile > lastDecile && !done) {
        lastDecile = decile;
        logger.info(`${name}: ${decile * 10}% (${formatBytes(received)} of ${formatBytes(total)})`);
      }
    }
  };
}

function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / (1024 * 1024)).toFixed(1)} MiB`;
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal?.reason ?? new Error('aborted'));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
