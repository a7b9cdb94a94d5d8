import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterEach, describe, expect, it } from 'vitest';
import {
  CIFAR10_MEAN,
  CIFAR10_STD,
  concat,
  createDataset,
  extractTarGz,
  listDatasets,
  loadDataset,
  loadPartition,
  parseIdx,
  readIdxFile,
  registerBuiltins,
  registerDataset,
  subset,
} from '../src/index.js';
import { cifarPixels, makeTar, mnistLike, tempDir, writeCifarFiles, writeMnistFiles } from './helpers.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});
async function dir(): Promise<string> {
  const t = await tempDir();
  cleanups.push(t.cleanup);
  return t.dir;
}

describe('IDX reader', () => {
  it('parses a hand-written IDX header and rejects wrong sizes', () => {
    const buf = Uint8Array.from([0, 0, 8, 2, 0, 0, 0, 2, 0, 0, 0, 3, 1, 2, 3, 4, 5, 6]);
    const arr = parseIdx(buf);
    expect(arr.dims).toEqual([2, 3]);
    expect(Array.from(arr.data)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(() => parseIdx(buf.subarray(0, 17), 'x.idx')).toThrow(/x.idx: IDX dims \[2,3\] need 18 bytes, file has 17/);
    expect(() => parseIdx(Uint8Array.from([1, 0, 8, 0]), 'y')).toThrow(/y: not an IDX file/);
  });

  it('reads big-endian int32 IDX data', () => {
    const buf = Buffer.alloc(4 + 4 + 8);
    buf.set([0, 0, 0x0c, 1]);
    buf.writeUInt32BE(2, 4);
    buf.writeInt32BE(-5, 8);
    buf.writeInt32BE(70000, 12);
    expect(Array.from(parseIdx(buf).data)).toEqual([-5, 70000]);
  });

  it.each([true, false])('round-trips MNIST files (gz=%s) through loadDataset', async (gz) => {
    const d = await dir();
    await writeMnistFiles(d, 30, 12, gz);
    const { train, test } = await loadDataset({ type: 'mnist', split: 'all', args: { data_dir: d } });
    expect(train!.length).toBe(30);
    expect(test!.length).toBe(12);
    expect(train!.sampleShape).toEqual([28, 28, 1]);
    expect(train!.features.length).toBe(30 * 784);
    const { images, labels } = mnistLike(30);
    expect(Array.from(train!.labels)).toEqual(Array.from(labels));
    // Sample 3, row 2, col 5 -> byte (21 + 61) % 256 = 82, normalised with MNIST's mean/std.
    const byte = images[3 * 784 + 2 * 28 + 5];
    expect(byte).toBe(82);
    expect(train!.features[3 * 784 + 2 * 28 + 5]).toBeCloseTo((82 / 255 - 0.1307) / 0.3081, 5);
  });

  it('reads gzipped IDX regardless of the file name and the torchvision raw/ layout', async () => {
    const d = await dir();
    await mkdir(join(d, 'raw'));
    await writeMnistFiles(join(d, 'raw'), 10, 10, true);
    const { train } = await loadDataset({ type: 'fashion-mnist', args: { data_dir: d, normalize: false } });
    expect(train!.name).toBe('fashion_mnist/train');
    expect(train!.features[1]).toBeCloseTo(1 / 255, 6);
    expect((await readIdxFile(join(d, 'raw', 'train-labels-idx1-ubyte.gz'))).dims).toEqual([10]);
  });

  it('names the missing files and the folders searched', async () => {
    const d = await dir();
    await expect(loadDataset({ type: 'mnist', args: { data_dir: d } })).rejects.toThrow(
      new RegExp(`train-images-idx3-ubyte\\[.gz\\] not found in ${d}.*args.download: true`),
    );
  });

  it('rejects image and label files that disagree', async () => {
    const d = await dir();
    await writeMnistFiles(d, 10, 10, false);
    const { labels } = mnistLike(9);
    const { encodeIdxUint8 } = await import('../src/index.js');
    await writeFile(join(d, 'train-labels-idx1-ubyte'), encodeIdxUint8([9], labels));
    await expect(loadDataset({ type: 'mnist', args: { data_dir: d } })).rejects.toThrow(/10 images in .* but 9 labels/);
  });
});

describe('CIFAR-10 binary reader', () => {
  it('round-trips records and converts CHW to HWC', async () => {
    const d = await dir();
    const sub = join(d, 'cifar-10-batches-bin');
    await mkdir(sub);
    await writeCifarFiles(sub, 4, 6);
    const { train, test } = await loadDataset({ type: 'cifar10', split: 'all', args: { data_dir: d } });
    expect(train!.length).toBe(20);
    expect(test!.length).toBe(6);
    expect(train!.sampleShape).toEqual([32, 32, 3]);
    expect(Array.from(train!.labels.subarray(0, 4))).toEqual([1, 2, 3, 4]);
    expect(Array.from(train!.labels.subarray(4, 8))).toEqual([2, 3, 4, 5]);
    // Test sample 2, row 10, col 7, green: (2 + 30 + 35 + 80) % 256 = 147.
    const at = ((2 * 32 + 10) * 32 + 7) * 3 + 1;
    expect(test!.features[at]).toBeCloseTo((147 / 255 - CIFAR10_MEAN[1]) / CIFAR10_STD[1], 5);
    // The record stores the green plane after the red one: byte 1 + 1024 + 10*32 + 7.
    const raw = await readFile(join(sub, 'test_batch.bin'));
    expect(raw[2 * 3073 + 1 + 1024 + 10 * 32 + 7]).toBe(147);
    const pixels = cifarPixels(6);
    expect(pixels[at]).toBe(147);
  });

  it('checks record sizes and labels', async () => {
    const d = await dir();
    await writeCifarFiles(d, 2, 2);
    await writeFile(join(d, 'test_batch.bin'), Buffer.alloc(3000));
    await expect(loadDataset({ type: 'cifar10', split: 'test', args: { data_dir: d } })).rejects.toThrow(
      /test_batch.bin: size 3000 is not a positive multiple of the CIFAR-10 record size 3073/,
    );
    const bad = Buffer.alloc(3073);
    bad[0] = 12;
    await writeFile(join(d, 'test_batch.bin'), bad);
    await expect(loadDataset({ type: 'cifar10', split: 'test', args: { data_dir: d } })).rejects.toThrow(/label 12 in record 0/);
  });

  it('says where it looked when files are missing', async () => {
    const d = await dir();
    await expect(loadDataset({ type: 'cifar10', args: { data_dir: d } })).rejects.toThrow(/data_batch_1.bin.*not found in .*cifar-10-batches-bin/);
  });

  it('extracts the standard archive layout with the tar reader', async () => {
    const src = await dir();
    const files = await writeCifarFiles(src, 2, 2);
    const tar = makeTar(
      Object.fromEntries([...Object.entries(files).map(([k, v]) => [`cifar-10-batches-bin/${k}`, v]), ['cifar-10-batches-bin/readme.html', Buffer.from('x')]]),
    );
    const d = await dir();
    await writeFile(join(d, 'a.tar.gz'), gzipSync(tar));
    const written = await extractTarGz(join(d, 'a.tar.gz'), join(d, 'out'), {
      select: (name) => (name.endsWith('.bin') ? name.split('/').pop()! : null),
    });
    expect(written).toHaveLength(6);
    expect(await readFile(join(d, 'out', 'data_batch_3.bin'))).toEqual(files['data_batch_3.bin']);
    const corrupt = Buffer.from(tar);
    corrupt[10] ^= 0xff;
    await writeFile(join(d, 'b.tar'), corrupt);
    await expect(extractTarGz(join(d, 'b.tar'), join(d, 'out2'), { select: (n) => n })).rejects.toThrow(/header checksum mismatch/);
  });
});

describe('registry, subset, concat, loadPartition', () => {
  it('lists the built-ins and lets a loader be registered', async () => {
    registerBuiltins();
    registerBuiltins();
    expect(listDatasets()).toEqual(expect.arrayContaining(['cifar10', 'fashion_mnist', 'mnist', 'synthetic']));
    registerDataset('tiny_test', async () => ({
      train: createDataset({ name: 'tiny/train', features: Float32Array.from([0, 1, 2, 3, 4, 5]), labels: Int32Array.from([0, 1, 1]), sampleShape: [2], numClasses: 2 }),
    }));
    expect(listDatasets()).toContain('tiny_test');
    const { train } = await loadDataset({ type: 'tiny_test' });
    expect(train!.length).toBe(3);
    await expect(loadDataset({ type: 'tiny_test', split: 'test' })).rejects.toThrow(/loader returned no test split/);
    await expect(loadDataset({ type: 'imagenet' })).rejects.toThrow(/datasets\[\]\.type: unknown dataset type "imagenet"; registered types: .*cifar10/);
    await expect(loadDataset({ type: 'mnistt' })).rejects.toThrow(/; did you mean "mnist"\?$/);
    await expect(loadDataset({ type: 'mnist', split: 'val' as 'train' })).rejects.toThrow(/split: expected train, test or all, got "val"/);
  });

  it('shares a load between concurrent callers unless args.cache is false', async () => {
    const d = await dir();
    await writeMnistFiles(d, 10, 5, true);
    const spec = { type: 'mnist', args: { data_dir: d } };
    const [a, b] = await Promise.all([loadDataset(spec), loadDataset(spec)]);
    expect(a.train).toBe(b.train);
    expect((await loadDataset(spec)).train).toBe(a.train);
    const fresh = await loadDataset({ ...spec, args: { ...spec.args, cache: false } });
    expect(fresh.train).not.toBe(a.train);
    expect(fresh.train!.labels).toEqual(a.train!.labels);
  });

  it('subset and concat copy samples with their labels', () => {
    const ds = createDataset({ name: 'd', features: Float32Array.from([0, 1, 2, 3, 4, 5]), labels: Int32Array.from([0, 1, 2]), sampleShape: [2], numClasses: 3 });
    const s = subset(ds, [2, 0]);
    expect(Array.from(s.features)).toEqual([4, 5, 0, 1]);
    expect(Array.from(s.labels)).toEqual([2, 0]);
    const c = concat(s, ds);
    expect(c.length).toBe(5);
    expect(Array.from(c.labels)).toEqual([2, 0, 0, 1, 2]);
    expect(() => subset(ds, [3])).toThrow(/index 3 at position 0 is outside 0..2/);
    const other = createDataset({ name: 'e', features: new Float32Array(3), labels: Int32Array.from([0]), sampleShape: [3], numClasses: 3 });
    expect(() => concat(ds, other)).toThrow(/sample shapes differ/);
    expect(() => createDataset({ name: 'f', features: new Float32Array(2), labels: Int32Array.from([5]), sampleShape: [2], numClasses: 3 })).toThrow(
      /label 5 at sample 0 is outside 0..2/,
    );
  });

  // Training workers (@oiafed/models) read data sets in shared memory in place; a plain buffer
  // made them keep a shared copy of every partition and test set beside it (issue 13: RSS).
  it('loaded splits, partitions, subsets and concatenations live in shared memory', async () => {
    const d = await dir();
    await writeMnistFiles(d, 12, 4, false);
    const part = await loadPartition({ type: 'mnist', args: { data_dir: d }, split: 'all', partition: { strategy: 'iid', num_partitions: 2, partition_id: 1 } });
    const ds = createDataset({ name: 'd', features: Float32Array.from([0, 1, 2, 3]), labels: Int32Array.from([0, 1]), sampleShape: [2], numClasses: 2 });
    const s = subset(ds, [1]);
    for (const x of [part.train!, part.test!, s, concat(s, ds)]) {
      expect(x.features.buffer).toBeInstanceOf(SharedArrayBuffer);
      expect(x.labels.buffer).toBeInstanceOf(SharedArrayBuffer);
    }
    expect(Array.from(s.features)).toEqual([2, 3]);
  });

  it('gives each learner its shard; shards cover train exactly and test stays whole', async () => {
    const d = await dir();
    await writeMnistFiles(d, 100, 20, true);
    const shards = await Promise.all(
      [0, 1, 2].map((id) =>
        loadPartition({
          type: 'mnist',
          split: 'all',
          args: { data_dir: d },
          partition: { strategy: 'dirichlet', num_partitions: 3, partition_id: id, config: { alpha: 1, seed: 5, min_size: 5 } },
        }),
      ),
    );
    expect(shards.map((s) => s.partitionId)).toEqual([0, 1, 2]);
    expect(shards.reduce((a, s) => a + s.train!.length, 0)).toBe(100);
    for (const s of shards) expect(s.test!.length).toBe(20);
    // Every original image appears once: pixel 0 of image i is (7i) % 256, unique for i < 100 after scaling.
    const firsts = shards.flatMap((s) => Array.from({ length: s.train!.length }, (_, i) => Math.round((s.train!.features[i * 784] * 0.3081 + 0.1307) * 255)));
    expect(new Set(firsts).size).toBe(100);
    const whole = await loadPartition({ type: 'mnist', args: { data_dir: d } });
    expect(whole).toMatchObject({ partitionId: 0, numPartitions: 1 });
    expect(whole.train!.length).toBe(100);
  });

  it('reports a missing or out-of-range partition id clearly', async () => {
    const d = await dir();
    await writeMnistFiles(d, 20, 10, false);
    const spec = { type: 'mnist', args: { data_dir: d } };
    await expect(loadPartition({ ...spec, partition: { num_partitions: 4 } })).rejects.toThrow(/partition.partition_id is required when partition is given/);
    await expect(loadPartition({ ...spec, partition: { partition_id: 0 } })).rejects.toThrow(/partition.num_partitions is required/);
    await expect(loadPartition({ ...spec, partition: { num_partitions: 4, partition_id: 4 } })).rejects.toThrow(
      /partition_id: 4 is out of range; expected 0..3 \(num_partitions=4\)/,
    );
    await expect(loadPartition({ ...spec, partition: { num_partitions: 2, partition_id: 1.5 } })).rejects.toThrow(/partition_id: expected an integer >= 0, got 1.5/);
  });
});
