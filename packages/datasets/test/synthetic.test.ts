import { describe, expect, it } from 'vitest';
import { sameBytes } from './helpers.js';
import { loadDataset, loadPartition, type ArrayDataset, type DatasetSpec } from '../src/index.js';

const spec = (id: number, extra: Record<string, unknown> = {}): DatasetSpec => ({
  type: 'synthetic',
  split: 'all',
  args: { alpha: 0.5, beta: 0.5, seed: 11, ...extra },
  partition: { num_partitions: 4, partition_id: id },
});

/** Multinomial logistic regression by full-batch gradient descent; returns accuracy on `test`. */
function softmaxRegression(train: ArrayDataset, test: ArrayDataset, epochs = 200, lr = 0.5): number {
  const d = train.sampleShape[0];
  const C = train.numClasses;
  const W = new Float64Array(d * C);
  const b = new Float64Array(C);
  const logits = (ds: ArrayDataset, i: number): Float64Array => {
    const z = Float64Array.from(b);
    for (let j = 0; j < d; j++) for (let c = 0; c < C; c++) z[c] += ds.features[i * d + j] * W[j * C + c];
    return z;
  };
  for (let e = 0; e < epochs; e++) {
    const gW = new Float64Array(d * C);
    const gb = new Float64Array(C);
    for (let i = 0; i < train.length; i++) {
      const z = logits(train, i);
      const m = Math.max(...z);
      let s = 0;
      for (let c = 0; c < C; c++) s += (z[c] = Math.exp(z[c] - m));
      for (let c = 0; c < C; c++) {
        const g = z[c] / s - (train.labels[i] === c ? 1 : 0);
        gb[c] += g;
        for (let j = 0; j < d; j++) gW[j * C + c] += g * train.features[i * d + j];
      }
    }
    for (let k = 0; k < W.length; k++) W[k] -= (lr * gW[k]) / train.length;
    for (let c = 0; c < C; c++) b[c] -= (lr * gb[c]) / train.length;
  }
  let correct = 0;
  for (let i = 0; i < test.length; i++) {
    const z = logits(test, i);
    if (z.indexOf(Math.max(...z)) === test.labels[i]) correct++;
  }
  return correct / test.length;
}

describe('synthetic(alpha, beta)', () => {
  it('is deterministic by seed and differs per partition and per seed', async () => {
    const a = await loadPartition(spec(1));
    const b = await loadPartition(spec(1));
    const c = await loadPartition(spec(2));
    const d = await loadPartition(spec(1, { seed: 12 }));
    expect(sameBytes(a.train!.features, b.train!.features)).toBe(true);
    expect(sameBytes(a.train!.labels, b.train!.labels)).toBe(true);
    expect(sameBytes(a.train!.features, c.train!.features)).toBe(false);
    expect(sameBytes(a.train!.features, d.train!.features)).toBe(false);
    expect(a.train!.sampleShape).toEqual([60]);
    expect(a.train!.length).toBe(200);
    expect(a.train!.numClasses).toBe(10);
  });

  it('every node computes the same test set, the union of the devices held-out parts', async () => {
    const tests = await Promise.all([0, 1, 2, 3].map(async (id) => (await loadPartition(spec(id))).test!));
    for (const t of tests.slice(1)) {
      expect(sameBytes(t.features, tests[0].features)).toBe(true);
      expect(sameBytes(t.labels, tests[0].labels)).toBe(true);
    }
    expect(tests[0].length).toBe(4 * 50);
    const trainer = await loadDataset({ type: 'synthetic', split: 'test', args: { alpha: 0.5, beta: 0.5, seed: 11, num_clients: 4 } });
    expect(sameBytes(trainer.test!.features, tests[0].features)).toBe(true);
    // Partition k is device k's train part: the whole train split is the union of the shards in order.
    const whole = await loadDataset({ type: 'synthetic', args: { alpha: 0.5, beta: 0.5, seed: 11, num_clients: 4 } });
    const shard2 = (await loadPartition(spec(2))).train!;
    expect(sameBytes(whole.train!.features.subarray(2 * 200 * 60, 3 * 200 * 60), shard2.features)).toBe(true);
  });

  it('has varied labels that a linear model learns well above chance', async () => {
    const { train, test } = await loadDataset({ type: 'synthetic', split: 'all', args: { seed: 3, num_clients: 4, alpha: 0.5, beta: 0.5 } });
    const counts = new Array(10).fill(0);
    for (const y of train!.labels) counts[y]++;
    expect(counts.filter((c) => c > 0).length).toBeGreaterThanOrEqual(4);
    expect(Math.max(...counts) / train!.length).toBeLessThan(0.6);
    const acc = softmaxRegression(train!, test!, 30);
    expect(acc).toBeGreaterThan(0.5);
  });

  it('Synthetic-IID shares one model: label distributions look alike across devices', async () => {
    const shards = await Promise.all([0, 1].map((id) => loadPartition(spec(id, { iid: true }))));
    const hist = shards.map((s) => {
      const h = new Array(10).fill(0);
      for (const y of s.train!.labels) h[y] += 1 / s.train!.length;
      return h;
    });
    const tv = hist[0].reduce((a: number, p: number, c: number) => a + Math.abs(p - hist[1][c]), 0) / 2;
    expect(tv).toBeLessThan(0.25);
  });

  it('falls back to the partitioner when num_clients differs from num_partitions', async () => {
    const s = await loadPartition({ type: 'synthetic', args: { num_clients: 2, seed: 1 }, partition: { num_partitions: 4, partition_id: 0 } });
    expect(s.train!.length).toBe(100);
  });

  it('rejects bad args with the key named', async () => {
    await expect(loadDataset({ type: 'synthetic', args: { alpha: 'x' } })).rejects.toThrow(/datasets\[type=synthetic\].args.alpha: expected a number >= 0, got "x"/);
    await expect(loadDataset({ type: 'synthetic', args: { num_classes: 1 } })).rejects.toThrow(/args.num_classes: expected a number >= 2/);
  });
});
