import { describe, expect, it } from 'vitest';
import { labelHistogram, partitionIndices, renderPartitionStats, type PartitionOptions } from '../src/index.js';

/** 10 classes, `perClass` samples each, interleaved so classes are not contiguous. */
function makeLabels(perClass: number, numClasses = 10): Int32Array {
  const labels = new Int32Array(perClass * numClasses);
  for (let i = 0; i < labels.length; i++) labels[i] = i % numClasses;
  return labels;
}

function expectDisjointCover(parts: Int32Array[], n: number): void {
  const seen = new Uint8Array(n);
  let repeats = 0;
  for (const part of parts) {
    for (const i of part) {
      if (seen[i]) repeats++;
      seen[i] = 1;
    }
  }
  expect(repeats).toBe(0);
  expect(seen.every((v) => v === 1)).toBe(true);
}

const labels = makeLabels(200);
const strategies: PartitionOptions[] = [
  { strategy: 'iid', numPartitions: 7, seed: 1 },
  { strategy: 'dirichlet', numPartitions: 8, seed: 1, alpha: 0.5 },
  { strategy: 'dirichlet', numPartitions: 5, seed: 2, alpha: 0.1 },
  { strategy: 'label_skew', numPartitions: 6, seed: 1, numLabelsPerClient: 2 },
  { strategy: 'label_skew', numPartitions: 4, seed: 1, numLabelsPerClient: 3 },
  { strategy: 'quantity_skew', numPartitions: 6, seed: 1, alpha: 0.5 },
  { strategy: 'quantity_skew', numPartitions: 6, seed: 1, imbalanceRatio: 10 },
];

describe('partitionIndices', () => {
  it.each(strategies)('$strategy (%#) is disjoint, covering and deterministic by seed', (opts) => {
    const parts = partitionIndices(labels, 10, opts);
    expect(parts).toHaveLength(opts.numPartitions);
    expectDisjointCover(parts, labels.length);
    const again = partitionIndices(labels, 10, opts);
    expect(again.map((p) => Array.from(p))).toEqual(parts.map((p) => Array.from(p)));
    const other = partitionIndices(labels, 10, { ...opts, seed: opts.seed + 100 });
    expect(other.map((p) => Array.from(p))).not.toEqual(parts.map((p) => Array.from(p)));
  });

  it('iid gives near-equal sizes (numpy array_split) with mixed labels', () => {
    const parts = partitionIndices(labels, 10, { strategy: 'iid', numPartitions: 7, seed: 3 });
    expect(parts.map((p) => p.length)).toEqual([286, 286, 286, 286, 286, 285, 285]);
    for (const row of labelHistogram(labels, 10, parts)) expect(row.filter((c) => c > 0).length).toBe(10);
  });

  it('dirichlet with small alpha is more skewed than with large alpha and respects min_size', () => {
    const skew = (alpha: number): number => {
      const parts = partitionIndices(labels, 10, { strategy: 'dirichlet', numPartitions: 5, seed: 9, alpha });
      for (const p of parts) expect(p.length).toBeGreaterThanOrEqual(10);
      // Mean share of each party's most common label.
      const hist = labelHistogram(labels, 10, parts);
      return hist.reduce((a, row) => a + Math.max(...row) / row.reduce((x, y) => x + y, 0), 0) / hist.length;
    };
    const small = skew(0.05);
    const large = skew(100);
    expect(small).toBeGreaterThan(0.4);
    expect(large).toBeLessThan(0.2);
  });

  it('dirichlet reports an impossible min_size clearly', () => {
    expect(() => partitionIndices(makeLabels(3), 10, { strategy: 'dirichlet', numPartitions: 4, seed: 1, minSize: 10 })).toThrow(
      /30 samples cannot give each of 4 parties min_size=10/,
    );
    // Two classes and a tiny alpha: each class lands on one party, so 7 of 9 parties stay empty.
    expect(() =>
      partitionIndices(makeLabels(50, 2), 2, { strategy: 'dirichlet', numPartitions: 9, seed: 1, alpha: 0.001, minSize: 10 }),
    ).toThrow(/no draw in 1000 attempts gave each of 9 parties at least min_size=10/);
  });

  it('label_skew gives each party exactly k labels, party i first gets label i % K', () => {
    for (const k of [1, 2, 3]) {
      const parts = partitionIndices(labels, 10, { strategy: 'label_skew', numPartitions: 10, seed: 4, numLabelsPerClient: k });
      const hist = labelHistogram(labels, 10, parts);
      hist.forEach((row, i) => {
        expect(row.filter((c) => c > 0).length).toBe(k);
        expect(row[i % 10]).toBeGreaterThan(0);
      });
      expectDisjointCover(parts, labels.length);
    }
  });

  it('label_skew splits each label evenly among its holders', () => {
    const parts = partitionIndices(labels, 10, { strategy: 'label_skew', numPartitions: 10, seed: 4, numLabelsPerClient: 2 });
    const hist = labelHistogram(labels, 10, parts);
    for (let c = 0; c < 10; c++) {
      const holders = hist.map((row) => row[c]).filter((v) => v > 0);
      expect(Math.max(...holders) - Math.min(...holders)).toBeLessThanOrEqual(1);
    }
  });

  it('label_skew with n*k < K leaves unheld labels out, like NIID-Bench', () => {
    const parts = partitionIndices(labels, 10, { strategy: 'label_skew', numPartitions: 3, seed: 1, numLabelsPerClient: 2 });
    const hist = labelHistogram(labels, 10, parts);
    const held = new Set(hist.flatMap((row) => row.flatMap((c, l) => (c > 0 ? [l] : []))));
    expect(held.size).toBeLessThanOrEqual(6);
    expect(parts.reduce((a, p) => a + p.length, 0)).toBe(held.size * 200);
    expect(() => partitionIndices(labels, 10, { strategy: 'label_skew', numPartitions: 3, seed: 1, numLabelsPerClient: 11 })).toThrow(
      /num_labels_per_client must be an integer in 1..10/,
    );
  });

  it('quantity_skew with imbalance_ratio gives geometric sizes, largest first', () => {
    const parts = partitionIndices(labels, 10, { strategy: 'quantity_skew', numPartitions: 5, seed: 1, imbalanceRatio: 16 });
    const sizes = parts.map((p) => p.length);
    // weights 16^(-i/4) = 1, 1/2, 1/4, 1/8, 1/16 over 2000 samples: 2000 * w / 1.9375.
    expect(sizes).toEqual([1032, 516, 258, 129, 65]);
    for (let i = 1; i < sizes.length; i++) expect(sizes[i]).toBeLessThan(sizes[i - 1]);
  });

  it('quantity_skew raises the smallest parts to min_size', () => {
    const parts = partitionIndices(makeLabels(10), 10, { strategy: 'quantity_skew', numPartitions: 4, seed: 1, imbalanceRatio: 1000, minSize: 10 });
    const sizes = parts.map((p) => p.length);
    expect(Math.min(...sizes)).toBe(10);
    expect(sizes.reduce((a, b) => a + b, 0)).toBe(100);
  });

  it('quantity_skew with Dirichlet sizes is imbalanced, and labels stay mixed', () => {
    const parts = partitionIndices(labels, 10, { strategy: 'quantity_skew', numPartitions: 6, seed: 5, alpha: 0.3 });
    const sizes = parts.map((p) => p.length);
    expect(Math.max(...sizes) / Math.min(...sizes)).toBeGreaterThan(2);
    for (const p of parts) expect(p.length).toBeGreaterThanOrEqual(10);
  });

  it('rejects bad options with clear messages', () => {
    expect(() => partitionIndices(labels, 10, { strategy: 'iid', numPartitions: 0, seed: 1 })).toThrow(/num_partitions must be a positive integer/);
    expect(() => partitionIndices(labels, 10, { strategy: 'nope' as 'iid', numPartitions: 2, seed: 1 })).toThrow(/unknown strategy "nope"/);
    expect(() => partitionIndices(Int32Array.from([0, 12]), 10, { strategy: 'iid', numPartitions: 2, seed: 1 })).toThrow(/label 12 at index 1/);
    expect(() => partitionIndices(labels, 10, { strategy: 'quantity_skew', numPartitions: 2, seed: 1, imbalanceRatio: 0.5 })).toThrow(/imbalance_ratio must be a number >= 1/);
  });
});

describe('labelHistogram and renderPartitionStats', () => {
  it('counts labels per part by hand', () => {
    const l = Int32Array.from([0, 1, 1, 2, 2, 2]);
    expect(labelHistogram(l, 3, [Int32Array.from([0, 1]), Int32Array.from([2, 3, 4, 5])])).toEqual([
      [1, 1, 0],
      [0, 1, 3],
    ]);
  });

  it('renders a text table and an HTML page with an inline SVG', () => {
    const { text, html } = renderPartitionStats(
      [
        [5, 0, 2],
        [0, 7, 1],
      ],
      { title: 'demo <&>' },
    );
    expect(text).toContain('demo <&>');
    expect(text).toMatch(/part\s+c0\s+c1\s+c2\s+total\s+labels/);
    expect(text).toMatch(/\n\s+0\s+5\s+0\s+2\s+7\s+2\n/);
    expect(text).toMatch(/all\s+5\s+7\s+3\s+15\s+3/);
    expect(html).toContain('<svg');
    expect(html).toContain('demo &#60;&#38;&#62;');
    expect(html.match(/<rect /g)).toHaveLength(4);
    expect(html).toContain('partition 1, class 1: 7');
  });
});
