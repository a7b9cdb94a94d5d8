import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ChecksumMismatchError, DownloadHttpError, downloadFile, encodeIdxUint8, loadDataset, type Logger } from '../src/index.js';
import { makeTar, mnistLike, tempDir, writeCifarFiles } from './helpers.js';

const payload = Buffer.from(Array.from({ length: 200_000 }, (_, i) => (i * 31) % 251));
const md5 = (b: Buffer): string => createHash('md5').update(b).digest('hex');
const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/** Files the server hands out under /files/<name>. */
const files = new Map<string, Buffer>();
const hits: string[] = [];
let flakyFailuresLeft = 0;
let server: Server;
let base: string;

beforeAll(async () => {
  server = createServer((req, res) => {
    const url = req.url ?? '/';
    hits.push(url);
    const sendHalfThenDrop = (): void => {
      res.writeHead(200, { 'content-length': payload.length });
      res.write(payload.subarray(0, payload.length / 2), () => setTimeout(() => req.socket.destroy(), 20));
    };
    if (url === '/ok.bin') {
      res.writeHead(200, { 'content-length': payload.length });
      res.end(payload);
    } else if (url === '/chunked.bin') {
      res.writeHead(200);
      res.write(payload.subarray(0, 1000));
      res.end(payload.subarray(1000));
    } else if (url === '/redirect') {
      res.writeHead(302, { location: '/ok.bin' });
      res.end();
    } else if (url === '/broken.bin') {
      sendHalfThenDrop();
    } else if (url === '/flaky.bin') {
      if (flakyFailuresLeft-- > 0) sendHalfThenDrop();
      else {
        res.writeHead(200, { 'content-length': payload.length });
        res.end(payload);
      }
    } else if (url === '/error500') {
      res.writeHead(500);
      res.end('boom');
    } else if (url.startsWith('/files/') && files.has(url.slice(7))) {
      const body = files.get(url.slice(7))!;
      res.writeHead(200, { 'content-length': body.length });
      res.end(body);
    } else {
      res.writeHead(404);
      res.end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  hits.length = 0;
  while (cleanups.length) await cleanups.pop()!();
});
async function dir(): Promise<string> {
  const t = await tempDir();
  cleanups.push(t.cleanup);
  return t.dir;
}

function recordingLogger(): Logger & { lines: string[] } {
  const lines: string[] = [];
  const log = (m: string): void => void lines.push(m);
  return { lines, debug: log, info: log, warn: log, error: log };
}

describe('downloadFile', () => {
  it('downloads, verifies md5 and sha256, reports progress and leaves no temp file', async () => {
    const d = await dir();
    const dest = join(d, 'sub', 'ok.bin');
    const progress: Array<[number, number | undefined]> = [];
    const logger = recordingLogger();
    await downloadFile(`${base}/ok.bin`, dest, {
      md5: md5(payload),
      sha256: sha256(payload),
      logger,
      progressBar: false,
      onProgress: (r, t) => progress.push([r, t]),
    });
    expect((await readFile(dest)).equals(payload)).toBe(true);
    expect(await readdir(join(d, 'sub'))).toEqual(['ok.bin']);
    expect(progress.at(-1)).toEqual([payload.length, payload.length]);
    expect(progress.every(([, t]) => t === payload.length)).toBe(true);
    expect(logger.lines.some((l) => /ok.bin: \d+% /.test(l))).toBe(true);
    expect(logger.lines.at(-1)).toMatch(/downloaded .*ok.bin .*200000 bytes/);
  });

  it('follows redirects and handles chunked answers without a length', async () => {
    const d = await dir();
    await downloadFile(`${base}/redirect`, join(d, 'a.bin'), { md5: md5(payload) });
    await downloadFile(`${base}/chunked.bin`, join(d, 'b.bin'), { sha256: sha256(payload) });
    expect((await readFile(join(d, 'b.bin'))).equals(payload)).toBe(true);
  });

  it('deletes the file on a checksum mismatch and says so', async () => {
    const d = await dir();
    const err = await downloadFile(`${base}/ok.bin`, join(d, 'x.bin'), { md5: '0'.repeat(32), retries: 2 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ChecksumMismatchError);
    expect((err as Error).message).toMatch(/md5 mismatch, expected 0{32}, got [0-9a-f]{32}; the partial file was deleted/);
    expect(await readdir(d)).toEqual([]);
    expect(hits).toEqual(['/ok.bin']);
  });

  it('leaves no file when the connection drops halfway', async () => {
    const d = await dir();
    await expect(downloadFile(`${base}/broken.bin`, join(d, 'x.bin'), { retries: 1, retryDelayMs: 10 })).rejects.toThrow(
      /download .*broken.bin failed after 2 attempt\(s\)/,
    );
    expect(await readdir(d)).toEqual([]);
    expect(hits).toEqual(['/broken.bin', '/broken.bin']);
  });

  it('succeeds on retry after a dropped connection', async () => {
    const d = await dir();
    flakyFailuresLeft = 1;
    const logger = recordingLogger();
    await downloadFile(`${base}/flaky.bin`, join(d, 'x.bin'), { md5: md5(payload), retries: 2, retryDelayMs: 10, logger });
    expect((await readFile(join(d, 'x.bin'))).equals(payload)).toBe(true);
    expect(await readdir(d)).toEqual(['x.bin']);
    expect(hits).toEqual(['/flaky.bin', '/flaky.bin']);
    expect(logger.lines.some((l) => /failed \(attempt 1 of 3\); retrying/.test(l))).toBe(true);
  });

  it('retries 5xx but not 404, and names the status', async () => {
    const d = await dir();
    await expect(downloadFile(`${base}/error500`, join(d, 'x'), { retries: 1, retryDelayMs: 10 })).rejects.toThrow(/server answered HTTP 500/);
    expect(hits).toEqual(['/error500', '/error500']);
    hits.length = 0;
    const err = await downloadFile(`${base}/missing`, join(d, 'x'), { retries: 3 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DownloadHttpError);
    expect(hits).toEqual(['/missing']);
    expect(await readdir(d)).toEqual([]);
    await expect(downloadFile('ftp://127.0.0.1/x', join(d, 'x'))).rejects.toThrow(/unsupported protocol ftp:/);
  });
});

describe('dataset downloads', () => {
  it('downloads missing MNIST files from base_url, checks them, then reuses them without a request', async () => {
    const d = await dir();
    const checksums: Record<string, string> = {};
    for (const [prefix, n] of [
      ['train', 20],
      ['t10k', 10],
    ] as const) {
      const { images, labels } = mnistLike(n);
      const im = gzipSync(encodeIdxUint8([n, 28, 28], images));
      const lb = gzipSync(encodeIdxUint8([n], labels));
      files.set(`${prefix}-images-idx3-ubyte.gz`, im);
      files.set(`${prefix}-labels-idx1-ubyte.gz`, lb);
      checksums[`${prefix}-images-idx3-ubyte.gz`] = sha256(im);
      checksums[`${prefix}-labels-idx1-ubyte.gz`] = md5(lb);
    }
    const spec = { type: 'mnist', split: 'all' as const, args: { data_dir: d, download: true, base_url: `${base}/files`, checksums } };
    const first = await loadDataset(spec);
    expect(first.train!.length).toBe(20);
    expect(first.test!.length).toBe(10);
    expect(hits.sort()).toEqual(
      ['/files/t10k-images-idx3-ubyte.gz', '/files/t10k-labels-idx1-ubyte.gz', '/files/train-images-idx3-ubyte.gz', '/files/train-labels-idx1-ubyte.gz'].sort(),
    );
    hits.length = 0;
    const again = await loadDataset({ ...spec, args: { ...spec.args, cache: false } });
    expect(again.train!.labels).toEqual(first.train!.labels);
    expect(hits).toEqual([]);
  });

  it('a dataset download with a wrong checksum fails clearly and leaves nothing behind', async () => {
    const d = await dir();
    const spec = {
      type: 'mnist',
      args: { data_dir: d, download: true, base_url: `${base}/files`, checksums: { 'train-images-idx3-ubyte.gz': 'f'.repeat(32) } },
    };
    files.set('train-images-idx3-ubyte.gz', gzipSync(encodeIdxUint8([1, 28, 28], new Uint8Array(784))));
    await expect(loadDataset(spec)).rejects.toThrow(/md5 mismatch/);
    expect(await readdir(d)).toEqual([]);
  });

  it('downloads and unpacks cifar-10-binary.tar.gz, once', async () => {
    const src = await dir();
    const batches = await writeCifarFiles(src, 3, 4);
    const archive = gzipSync(makeTar(Object.fromEntries(Object.entries(batches).map(([k, v]) => [`cifar-10-batches-bin/${k}`, v]))));
    files.set('cifar-10-binary.tar.gz', archive);
    const d = await dir();
    const spec = { type: 'cifar10', split: 'all' as const, args: { data_dir: d, download: true, base_url: `${base}/files/`, checksums: { 'cifar-10-binary.tar.gz': md5(archive) } } };
    const { train, test } = await loadDataset(spec);
    expect(train!.length).toBe(15);
    expect(test!.length).toBe(4);
    expect(hits).toEqual(['/files/cifar-10-binary.tar.gz']);
    expect((await readdir(join(d, 'cifar-10-batches-bin'))).sort()).toEqual(Object.keys(batches).sort());
    hits.length = 0;
    await loadDataset({ ...spec, args: { ...spec.args, cache: false } });
    expect(hits).toEqual([]);
  });

  it('makes no request when the files are already present', async () => {
    const d = await dir();
    await mkdir(join(d, 'cifar-10-batches-bin'));
    await writeCifarFiles(join(d, 'cifar-10-batches-bin'), 1, 1);
    await writeFile(join(d, 'unrelated.txt'), 'x');
    const { train } = await loadDataset({ type: 'cifar10', args: { data_dir: d, download: true, base_url: `${base}/nothing-here` } });
    expect(train!.length).toBe(5);
    expect(hits).toEqual([]);
  });
});
