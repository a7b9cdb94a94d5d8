import { createHash } from 'node:crypto';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { CIFAR100_MEAN, CIFAR100_STD, encodeCifar100Records, listDatasets, loadDataset, SVHN_MEAN, SVHN_STD } from '../src/index.js';
import { cifarPixels, makeTar, tempDir } from './helpers.js';
import { encodeLyingMat5, encodeMat5, MI, svhnArrays } from './mat5-fixtures.js';

const md5 = (b: Buffer): string => createHash('md5').update(b).digest('hex');

/** Files the server hands out under /files/<name>, and the paths asked for. */
const served = new Map<string, Buffer>();
const hits: string[] = [];
let server: Server;
let base: string;

beforeAll(async () => {
  server = createServer((req, res) => {
    const url = req.url ?? '/';
    hits.push(url);
    const body = url.startsWith('/files/') ? served.get(url.slice(7)) : undefined;
    if (!body) {
      res.writeHead(404);
      res.end();
      return;
    }
    res.writeHead(200, { 'content-length': body.length });
    res.end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));
beforeEach(() => {
  hits.length = 0;
  served.clear();
});

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});
async function dir(): Promise<string> {
  const t = await tempDir();
  cleanups.push(t.cleanup);
  return t.dir;
}

/** Record i: coarse label (i * 7) % 20, fine label (i * 13) % 100, pixels as cifarPixels. */
function cifar100File(n: number): Buffer {
  const coarse = Array.from({ length: n }, (_, i) => (i * 7) % 20);
  const fine = Array.from({ length: n }, (_, i) => (i * 13) % 100);
  return encodeCifar100Records(cifarPixels(n), coarse, fine);
}

async function writeCifar100(root: string, nTrain: number, nTest: number): Promise<Record<string, Buffer>> {
  const files = { 'train.bin': cifar100File(nTrain), 'test.bin': cifar100File(nTest) };
  await mkdir(join(root, 'cifar-100-binary'), { recursive: true });
  for (const [name, data] of Object.entries(files)) await writeFile(join(root, 'cifar-100-binary', name), data);
  return files;
}

describe('CIFAR-100 binary reader', () => {
  it('is registered, with cifar-100 as another spelling', async () => {
    expect(listDatasets()).toEqual(expect.arrayContaining(['cifar100', 'svhn']));
    const d = await dir();
    await writeCifar100(d, 3, 2);
    expect((await loadDataset({ type: 'CIFAR-100', split: 'test', args: { data_dir: d } })).test!.length).toBe(2);
  });

  it('reads fine labels by default, coarse ones on request, pixels exactly (CHW to HWC)', async () => {
    const d = await dir();
    await writeCifar100(d, 12, 5);
    const { train, test } = await loadDataset({ type: 'cifar100', split: 'all', args: { data_dir: d, normalize: false } });
    expect([train!.length, test!.length, train!.numClasses]).toEqual([12, 5, 100]);
    expect(Array.from(train!.labels)).toEqual(Array.from({ length: 12 }, (_, i) => (i * 13) % 100));
    const px = cifarPixels(12);
    for (const at of [0, 1, 2, ((7 * 32 + 10) * 32 + 31) * 3 + 2, train!.features.length - 1]) expect(train!.features[at]).toBe(Math.fround(px[at]! / 255));
    const coarse = await loadDataset({ type: 'cifar100', split: 'test', args: { data_dir: d, label_mode: 'coarse' } });
    expect(coarse.test!.numClasses).toBe(20);
    expect(Array.from(coarse.test!.labels)).toEqual([0, 7, 14, 1, 8]);
    // Test sample 4, row 3, col 9, blue: (4 + 9 + 45 + 160) % 256 = 218, normalised with CIFAR-100's statistics.
    expect(coarse.test!.features[((4 * 32 + 3) * 32 + 9) * 3 + 2]).toBeCloseTo((218 / 255 - CIFAR100_MEAN[2]) / CIFAR100_STD[2], 5);
  });

  it('names the file and what was expected when a file is not CIFAR-100', async () => {
    const d = await dir();
    await writeCifar100(d, 2, 2);
    const test = join(d, 'cifar-100-binary', 'test.bin');
    await writeFile(test, cifar100File(2).subarray(0, 3074 + 100));
    await expect(loadDataset({ type: 'cifar100', split: 'test', args: { data_dir: d } })).rejects.toThrow(
      `${test}: size 3174 is not CIFAR-100: expected a positive multiple of the record size 3074 (1 coarse + 1 fine label + 3072 pixels), at most 50000 records`,
    );
    const bad = cifar100File(2);
    bad[3074 + 1] = 100;
    await writeFile(test, bad);
    await expect(loadDataset({ type: 'cifar100', split: 'test', args: { data_dir: d, cache: false } })).rejects.toThrow(`${test}: fine label 100 in record 1 is outside 0..99`);
    await expect(loadDataset({ type: 'cifar100', args: { data_dir: d, label_mode: 'superclass' } })).rejects.toThrow(
      'datasets[type=cifar100].args.label_mode: expected fine or coarse, got "superclass"',
    );
    const empty = await dir();
    await expect(loadDataset({ type: 'cifar100', args: { data_dir: empty } })).rejects.toThrow(
      `dataset cifar100: train.bin not found in ${empty} or ${join(empty, 'cifar-100-binary')}`,
    );
  });

  it('downloads cifar-100-binary.tar.gz, checks it and unpacks it, once', async () => {
    const src = await dir();
    const files = await writeCifar100(src, 4, 3);
    const archive = gzipSync(makeTar(Object.fromEntries(Object.entries(files).map(([k, v]) => [`cifar-100-binary/${k}`, v]))));
    served.set('cifar-100-binary.tar.gz', archive);
    const d = await dir();
    const args = { data_dir: d, download: true, base_url: `${base}/files/`, checksums: { 'cifar-100-binary.tar.gz': md5(archive) } };
    const { train, test } = await loadDataset({ type: 'cifar100', split: 'all', args });
    expect([train!.length, test!.length]).toEqual([4, 3]);
    expect(hits).toEqual(['/files/cifar-100-binary.tar.gz']);
    expect((await readdir(join(d, 'cifar-100-binary'))).sort()).toEqual(['test.bin', 'train.bin']);
    await loadDataset({ type: 'cifar100', split: 'all', args: { ...args, cache: false } });
    expect(hits).toHaveLength(1);
  });

  it('deletes a download whose md5 is not the published one', async () => {
    served.set('cifar-100-binary.tar.gz', Buffer.from('not the archive'));
    const d = await dir();
    await expect(loadDataset({ type: 'cifar100', args: { data_dir: d, download: true, base_url: `${base}/files`, retries: 0 } })).rejects.toThrow(
      /md5 mismatch, expected 03b5dce01913d631647c71ecec9e9cb8/,
    );
    expect(await readdir(d)).toEqual([]);
  });
});

describe('SVHN cropped-digits reader (MAT-file)', () => {
  it('reads X and y of compressed and plain .mat files exactly; label 10 is the digit 0', async () => {
    const d = await dir();
    await writeFile(join(d, 'train_32x32.mat'), encodeMat5(svhnArrays(12), { compress: true }));
    await writeFile(join(d, 'test_32x32.mat'), encodeMat5(svhnArrays(3)));
    const { train, test } = await loadDataset({ type: 'svhn', split: 'all', args: { data_dir: d, normalize: false } });
    expect([train!.length, test!.length, train!.numClasses]).toEqual([12, 3, 10]);
    expect(train!.sampleShape).toEqual([32, 32, 3]);
    expect(Array.from(train!.labels)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1, 2]);
    // Sample 9, row 4, col 17, green: (9 + 12 + 85 + 80) % 256 = 186; the file stores it at 4 + 32*17 + 1024 + 3072*9.
    expect(train!.features[((9 * 32 + 4) * 32 + 17) * 3 + 1]).toBe(Math.fround(186 / 255));
    for (const [s, r, c, ch] of [[0, 0, 0, 0], [11, 31, 0, 2], [5, 0, 31, 1], [2, 17, 3, 0]]) {
      expect(train!.features[((s * 32 + r) * 32 + c) * 3 + ch]).toBe(Math.fround(((s + 3 * r + 5 * c + 80 * ch) % 256) / 255));
    }
    const normalized = await loadDataset({ type: 'svhn', split: 'test', args: { data_dir: d } });
    expect(normalized.test!.features[((2 * 32 + 1) * 32 + 1) * 3]).toBeCloseTo(((2 + 3 + 5) / 255 - SVHN_MEAN[0]) / SVHN_STD[0], 5);
  });

  it('downloads train_32x32.mat and test_32x32.mat with their checksums, once', async () => {
    const train = encodeMat5(svhnArrays(4), { compress: true });
    const test = encodeMat5(svhnArrays(2), { compress: true });
    served.set('train_32x32.mat', train);
    served.set('test_32x32.mat', test);
    const d = await dir();
    const args = { data_dir: d, download: true, base_url: `${base}/files/`, checksums: { 'train_32x32.mat': md5(train), 'test_32x32.mat': md5(test) } };
    const loaded = await loadDataset({ type: 'svhn', split: 'all', args });
    expect([loaded.train!.length, loaded.test!.length]).toEqual([4, 2]);
    expect(hits).toEqual(['/files/train_32x32.mat', '/files/test_32x32.mat']);
    await loadDataset({ type: 'svhn', split: 'all', args: { ...args, cache: false } });
    expect(hits).toHaveLength(2);
    served.set('test_32x32.mat', Buffer.from('tampered'));
    const other = await dir();
    await expect(loadDataset({ type: 'svhn', split: 'test', args: { data_dir: other, download: true, base_url: `${base}/files/`, retries: 0 } })).rejects.toThrow(
      /md5 mismatch, expected eb5a983be6a315427106f1b164d9cef3/,
    );
    expect(await readdir(other)).toEqual([]);
  });

  it('names the file and what was expected when a .mat file is not SVHN', async () => {
    const d = await dir();
    const path = join(d, 'test_32x32.mat');
    const load = (): Promise<unknown> => loadDataset({ type: 'svhn', split: 'test', args: { data_dir: d, cache: false } });
    const [x, y] = svhnArrays(2);
    await writeFile(path, encodeMat5([{ ...x!, dims: [32, 32, 1, 6] }, y!]));
    await expect(load()).rejects.toThrow(`${path}: X has dimensions [32, 32, 1, 6], expected [32, 32, 3, N]`);
    await writeFile(path, encodeMat5([x!, { ...y!, dims: [3, 1], values: [1, 2, 3] }]));
    await expect(load()).rejects.toThrow(`${path}: y has dimensions [3, 1], expected [2, 1] (one label per sample of X)`);
    await writeFile(path, encodeMat5([x!, { ...y!, type: MI.DOUBLE, values: [10, 11] }]));
    await expect(load()).rejects.toThrow(`${path}: label 11 of sample 1 is outside 1..10 (10 is the digit 0)`);
    await writeFile(path, encodeMat5([x!]));
    await expect(load()).rejects.toThrow(`${path}: expected arrays X and y (SVHN cropped digits), found no y`);
    const whole = encodeMat5(svhnArrays(2), { compress: true });
    await writeFile(path, whole.subarray(0, whole.length - 40));
    await expect(load()).rejects.toThrow(new RegExp(`${path} \\(at byte \\d+\\): truncated: element of type 15 declares \\d+ bytes`));
    await writeFile(path, Buffer.from('<html>not found</html>'.repeat(10)));
    await expect(load()).rejects.toThrow(`${path}: not a MATLAB level-5 MAT-file`);
  });

  it('refuses an X larger than an SVHN split from its declared size, before inflating it', async () => {
    const d = await dir();
    const path = join(d, 'test_32x32.mat');
    // X of 101,000 digits would inflate to 310 MB; the file declares it and holds two digits.
    await writeFile(path, encodeLyingMat5(svhnArrays(2)[0]!, 3072 * 101_000 + 48));
    await expect(loadDataset({ type: 'svhn', split: 'test', args: { data_dir: d } })).rejects.toThrow(
      new RegExp(`${path} \\(at byte 128\\): compressed array declares 310272056 bytes, more than the 307204096 allowed`),
    );
  });

  it('says where it looked when the files are missing', async () => {
    const d = await dir();
    await expect(loadDataset({ type: 'svhn', args: { data_dir: d } })).rejects.toThrow(
      `dataset svhn: train_32x32.mat not found in ${d}; set datasets[].args.data_dir to the folder of the cropped-digits .mat files, or args.download: true`,
    );
  });
});
