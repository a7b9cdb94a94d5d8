import { rm } from 'node:fs/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { labelHistogram, loadPartition, partitionIndices, splitLocalTest } from '../src/index.js';
import { tempDir, writeMnistFiles } from './helpers.js';

/** Label of each index: 0 x6, 1 x3, 2 x1 (part = all ten indices). */
const LABELS = Int32Array.from([0, 1, 0, 2, 0, 1, 0, 0, 1, 0]);
const ALL = Int32Array.from({ length: 10 }, (_, i) => i);

function countBy(labels: Int32Array, indices: Int32Array, numClasses: number): number[] {
  return labelHistogram(labels, numClasses, [indices])[0]!;
}

describe('splitLocalTest', () => {
  it('holds out round(n * fraction) samples apportioned over labels by largest remainders', () => {
    // n = 10, fraction 0.3: total 3 over labels 0 and 1 (label 2 has one sample and keeps it):
    // shares 6*3/9 = 2 and 3*3/9 = 1.
    const { train, test } = splitLocalTest(LABELS, ALL, 3, 0.3, 7);
    expect(countBy(LABELS, test, 3)).toEqual([2, 1, 0]);
    expect(countBy(LABELS, train, 3)).toEqual([4, 2, 1]);
    expect(test.length + train.length).toBe(10);
    expect(new Set([...test, ...train]).size).toBe(10);
  });

  it('keeps a label with one sample in train, and never takes all of a label', () => {
    // fraction 0.5: total 5 over labels 0 and 1: shares 6*5/9 = 3.33 and 3*5/9 = 1.67 -> floors 3, 1,
    // and the one left goes to the larger remainder (label 1).
    const { test } = splitLocalTest(LABELS, ALL, 3, 0.5, 1);
    expect(countBy(LABELS, test, 3)).toEqual([3, 2, 0]);
    // Labels 2, 1, 1: total round(1.5) = 2 would all go to label 1, which keeps one of its two.
    const tiny = Int32Array.from([3, 1, 5]);
    expect(countBy(LABELS, splitLocalTest(LABELS, tiny, 3, 0.5, 1).test, 3)).toEqual([0, 1, 0]);
  });

  it('is seeded, keeps the partition order in both parts, and refuses fractions above 0.5', () => {
    const a = splitLocalTest(LABELS, ALL, 3, 0.3, 7);
    expect(splitLocalTest(LABELS, ALL, 3, 0.3, 7)).toEqual(a);
    const draws = new Set(Array.from({ length: 20 }, (_, s) => Array.from(splitLocalTest(LABELS, ALL, 3, 0.3, s).test).join(',')));
    expect(draws.size).toBeGreaterThan(1);
    for (const part of [a.train, a.test]) expect(Array.from(part)).toEqual([...part].sort((x, y) => x - y));
    expect(splitLocalTest(LABELS, ALL, 3, 0, 1).test.length).toBe(0);
    expect(() => splitLocalTest(LABELS, ALL, 3, 0.6, 1)).toThrow('partition: test_fraction must be a number in 0..0.5, got 0.6');
  });

  it('gives each Dirichlet partition a test split with its train label mix', () => {
    const labels = Int32Array.from({ length: 2000 }, (_, i) => i % 10);
    const parts = partitionIndices(labels, 10, { strategy: 'dirichlet', numPartitions: 5, seed: 3, alpha: 0.3 });
    for (const part of parts) {
      const { train, test } = splitLocalTest(labels, part, 10, 0.2, 11);
      const total = Math.round(part.length * 0.2);
      expect(test.length).toBe(total);
      const counts = countBy(labels, part, 10);
      const held = countBy(labels, test, 10);
      const eligible = counts.reduce((a, c) => a + (c >= 2 ? c : 0), 0);
      // Largest remainders: each label's quota is its exact share rounded down or up.
      counts.forEach((c, label) => {
        const share = c >= 2 ? (c * total) / eligible : 0;
        expect(held[label]).toBeGreaterThanOrEqual(Math.floor(share));
        expect(held[label]).toBeLessThanOrEqual(Math.ceil(share));
      });
      expect(train.length + test.length).toBe(part.length);
    }
  });
});

describe('loadPartition with partition.test_fraction', () => {
  const dirs: string[] = [];
  afterEach(async () => {
    await Promise.all(dirs.splice(0).map((d) => rm(d, { recursive: true, force: true })));
  });

  it('hands each learner a local test split disjoint from its train shard, with exact counts', async () => {
    const { dir } = await tempDir();
    dirs.push(dir);
    await writeMnistFiles(dir, 100, 20, false);
    const spec = (id: number, testFraction?: number) => ({
      type: 'mnist',
      split: 'all' as const,
      args: { data_dir: dir, cache: false },
      partition: { strategy: 'iid' as const, num_partitions: 4, partition_id: id, config: { seed: 5 }, test_fraction: testFraction },
    });
    for (const id of [0, 1, 2, 3]) {
      const plain = await loadPartition(spec(id));
      const held = await loadPartition(spec(id, 0.2));
      expect(plain.localTest).toBeUndefined();
      // 25 samples per shard; 0.2 of them is 5 held out, and the global test split is untouched.
      expect(held.localTest!.length).toBe(5);
      expect(held.train!.length).toBe(20);
      expect(held.test!.length).toBe(20);
      // Pixel 0 of image i is unique per image: train and local test are disjoint and together the shard.
      const key = (ds: typeof plain.train, i: number) => ds!.features[i * 784];
      const shard = new Set(Array.from({ length: 25 }, (_, i) => key(plain.train, i)));
      const train = Array.from({ length: 20 }, (_, i) => key(held.train, i));
      const test = Array.from({ length: 5 }, (_, i) => key(held.localTest, i));
      expect(new Set([...train, ...test])).toEqual(shard);
      const again = await loadPartition(spec(id, 0.2));
      expect(Array.from(again.localTest!.labels)).toEqual(Array.from(held.localTest!.labels));
    }
    await expect(loadPartition(spec(0, 0.7))).rejects.toThrow('datasets[type=mnist].partition.test_fraction: expected a number in 0..0.5, got 0.7');
  });
});
