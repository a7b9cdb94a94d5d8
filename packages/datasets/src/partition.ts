/**
 * Federated partitioners over label arrays. Every learner runs the same function with the same
 * seed and keeps its own part, so results must depend only on (labels, options).
 *
 * Strategies follow NIID-Bench (Li, Diao, Chen, He: "Federated Learning on Non-IID Data Silos:
 * An Experimental Study", ICDE 2022, `partition_data` in its `utils.py`).
 */
import { createRng, dirichlet, shuffleInPlace, type Rng } from './rng.js';
import type { PartitionStrategy } from './types.js';

/** Options of {@link partitionIndices}. */
export interface PartitionOptions {
  strategy: PartitionStrategy;
  numPartitions: number;
  seed: number;
  /** Dirichlet concentration (`dirichlet`, `quantity_skew`). Default 0.5. */
  alpha?: number;
  /** Labels per party for `label_skew` (#C=k). Default 2. */
  numLabelsPerClient?: number;
  /** For `quantity_skew`: largest / smallest party size; sizes then fall geometrically. */
  imbalanceRatio?: number;
  /** Smallest allowed party (`dirichlet`, `quantity_skew`). Default 10, as NIID-Bench. */
  minSize?: number;
}

/** Most redraws `dirichlet` makes before it reports the request as impossible. */
const MAX_DIRICHLET_ATTEMPTS = 1000;

/**
 * Splits sample indices into `numPartitions` parts. Parts are disjoint and, except for
 * `label_skew` with `numPartitions * k < numClasses` (labels nobody holds are left out, as
 * NIID-Bench does), cover every index exactly once. Each part is shuffled.
 */
export function partitionIndices(labels: Int32Array, numClasses: number, options: PartitionOptions): Int32Array[] {
  const { strategy, numPartitions, seed } = options;
  if (!Number.isInteger(numPartitions) || numPartitions < 1) {
    throw new RangeError(`partition: num_partitions must be a positive integer, got ${String(numPartitions)}`);
  }
  if (!Number.isInteger(numClasses) || numClasses < 1) {
    throw new RangeError(`partition: numClasses must be a positive integer, got ${String(numClasses)}`);
  }
  for (let i = 0; i < labels.length; i++) {
    if (labels[i] < 0 || labels[i] >= numClasses) {
      throw new RangeError(`partition: label ${labels[i]} at index ${i} is outside 0..${numClasses - 1}`);
    }
  }
  const rng = createRng(seed);
  switch (strategy) {
    case 'iid':
      return iid(labels.length, numPartitions, rng);
    case 'dirichlet':
      return dirichletPartition(labels, numClasses, numPartitions, rng, positive(options.alpha, 0.5, 'alpha'), minSizeOf(options));
    case 'label_skew':
      return labelSkew(labels, numClasses, numPartitions, rng, options.numLabelsPerClient ?? 2);
    case 'quantity_skew':
      return quantitySkew(labels.length, numPartitions, rng, options);
    default: {
      const never: never = strategy;
      throw new Error(
        `partition: unknown strategy ${JSON.stringify(never)}; expected one of iid, dirichlet, label_skew, quantity_skew`,
      );
    }
  }
}

/** Samples per class for each part: `histogram[part][class]`. */
export function labelHistogram(labels: Int32Array, numClasses: number, parts: Int32Array[]): number[][] {
  return parts.map((part) => {
    const row = new Array<number>(numClasses).fill(0);
    for (let i = 0; i < part.length; i++) row[labels[part[i]]]++;
    return row;
  });
}

function positive(value: number | undefined, fallback: number, name: string): number {
  const v = value ?? fallback;
  if (!(v > 0) || !Number.isFinite(v)) {
    throw new RangeError(`partition: ${name} must be a positive number, got ${String(value)}`);
  }
  return v;
}

function minSizeOf(options: PartitionOptions): number {
  const m = options.minSize ?? 10;
  if (!Number.isInteger(m) || m < 0) {
    throw new RangeError(`partition: min_size must be a non-negative integer, got ${String(options.minSize)}`);
  }
  return m;
}

function range(n: number): Int32Array {
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) out[i] = i;
  return out;
}

/** Splits `items` into consecutive parts of the given sizes. */
function splitBySizes(items: Int32Array, sizes: readonly number[]): Int32Array[] {
  const parts: Int32Array[] = [];
  let start = 0;
  for (const s of sizes) {
    parts.push(items.slice(start, start + s));
    start += s;
  }
  return parts;
}

/** numpy.array_split sizes: the first `n % k` parts get one extra. */
function evenSizes(n: number, k: number): number[] {
  const base = Math.floor(n / k);
  const extra = n % k;
  return Array.from({ length: k }, (_, i) => base + (i < extra ? 1 : 0));
}

function iid(n: number, k: number, rng: Rng): Int32Array[] {
  const idx = range(n);
  shuffleInPlace(idx, rng);
  return splitBySizes(idx, evenSizes(n, k));
}

function indicesByClass(labels: Int32Array, numClasses: number): Int32Array[] {
  const counts = new Array<number>(numClasses).fill(0);
  for (let i = 0; i < labels.length; i++) counts[labels[i]]++;
  const out = counts.map((c) => new Int32Array(c));
  const fill = new Array<number>(numClasses).fill(0);
  for (let i = 0; i < labels.length; i++) out[labels[i]][fill[labels[i]]++] = i;
  return out;
}

function concatAll(chunks: Int32Array[]): Int32Array {
  let total = 0;
  for (const c of chunks) total += c.length;
  const out = new Int32Array(total);
  let off = 0;
  for (const c of chunks) {
    out.set(c, off);
    off += c.length;
  }
  return out;
}

/**
 * NIID-Bench `noniid-labeldir`: per class, p ~ Dir(alpha) over parties; a party already holding
 * N/n samples gets no more (the balance trick); class indices are cut at the cumulative
 * proportions. Redrawn until every party has at least `minSize` samples.
 */
function dirichletPartition(
  labels: Int32Array,
  numClasses: number,
  k: number,
  rng: Rng,
  alpha: number,
  minSize: number,
): Int32Array[] {
  const n = labels.length;
  if (n < k * minSize) {
    throw new RangeError(
      `partition dirichlet: ${n} samples cannot give each of ${k} parties min_size=${minSize}; lower min_size or num_partitions`,
    );
  }
  const byClass = indicesByClass(labels, numClasses);
  for (let attempt = 0; attempt < MAX_DIRICHLET_ATTEMPTS; attempt++) {
    const chunks: Int32Array[][] = Array.from({ length: k }, () => []);
    const sizes = new Array<number>(k).fill(0);
    for (let c = 0; c < numClasses; c++) {
      const idx = byClass[c].slice();
      shuffleInPlace(idx, rng);
      const p = dirichlet(rng, alpha, k);
      let sum = 0;
      for (let j = 0; j < k; j++) {
        if (sizes[j] >= n / k) p[j] = 0;
        sum += p[j];
      }
      if (sum <= 0) {
        p.fill(1 / k);
        sum = 1;
      }
      let cum = 0;
      let start = 0;
      for (let j = 0; j < k; j++) {
        cum += p[j] / sum;
        const end = j === k - 1 ? idx.length : Math.min(idx.length, Math.floor(cum * idx.length));
        const piece = idx.subarray(start, Math.max(start, end));
        chunks[j].push(piece);
        sizes[j] += piece.length;
        start = Math.max(start, end);
      }
    }
    if (Math.min(...sizes) >= minSize) {
      return chunks.map((c) => {
        const part = concatAll(c);
        shuffleInPlace(part, rng);
        return part;
      });
    }
  }
  throw new RangeError(
    `partition dirichlet: no draw in ${MAX_DIRICHLET_ATTEMPTS} attempts gave each of ${k} parties at least min_size=${minSize} samples (${n} samples, alpha=${alpha}); raise alpha, or lower min_size or num_partitions`,
  );
}

/**
 * NIID-Bench `noniid-#label{k}`: party i holds label `i % K` and k-1 further distinct labels
 * drawn at random; each label's samples are split evenly among the parties holding it. When
 * some label is held by nobody although `n * k >= K`, a duplicated label of some party is
 * swapped for it, so the data is covered whenever that is possible with exactly k labels each.
 */
function labelSkew(labels: Int32Array, numClasses: number, n: number, rng: Rng, k: number): Int32Array[] {
  if (!Number.isInteger(k) || k < 1 || k > numClasses) {
    throw new RangeError(`partition label_skew: num_labels_per_client must be an integer in 1..${numClasses}, got ${String(k)}`);
  }
  const times = new Array<number>(numClasses).fill(0);
  const contain: number[][] = [];
  for (let i = 0; i < n; i++) {
    const current = [i % numClasses];
    times[i % numClasses]++;
    while (current.length < k) {
      const ind = rng.nextInt(numClasses);
      if (!current.includes(ind)) {
        current.push(ind);
        times[ind]++;
      }
    }
    contain.push(current);
  }
  if (n * k >= numClasses) {
    for (let label = 0; label < numClasses; label++) {
      if (times[label] > 0) continue;
      // Swap out a randomly drawn (not first) label that some other party also holds.
      const candidates: Array<[number, number]> = [];
      contain.forEach((labs, party) =>
        labs.forEach((l, pos) => {
          if (pos > 0 && times[l] > 1) candidates.push([party, pos]);
        }),
      );
      if (candidates.length === 0) break;
      const [party, pos] = candidates[rng.nextInt(candidates.length)];
      times[contain[party][pos]]--;
      contain[party][pos] = label;
      times[label]++;
    }
  }
  const byClass = indicesByClass(labels, numClasses);
  const chunks: Int32Array[][] = Array.from({ length: n }, () => []);
  for (let label = 0; label < numClasses; label++) {
    if (times[label] === 0) continue;
    const idx = byClass[label].slice();
    shuffleInPlace(idx, rng);
    const pieces = splitBySizes(idx, evenSizes(idx.length, times[label]));
    let next = 0;
    for (let party = 0; party < n; party++) {
      if (contain[party].includes(label)) chunks[party].push(pieces[next++]);
    }
  }
  return chunks.map((c) => {
    const part = concatAll(c);
    shuffleInPlace(part, rng);
    return part;
  });
}

/**
 * NIID-Bench `iid-diff-quantity`: a random permutation cut at Dir(alpha) proportions (redrawn
 * until the smallest part has `minSize`), or, with `imbalanceRatio` r, sizes proportional to
 * r^(-i/(n-1)) so party 0 is the largest and the last is r times smaller.
 */
function quantitySkew(total: number, k: number, rng: Rng, options: PartitionOptions): Int32Array[] {
  const minSize = minSizeOf(options);
  if (total < k * minSize) {
    throw new RangeError(
      `partition quantity_skew: ${total} samples cannot give each of ${k} parties min_size=${minSize}; lower min_size or num_partitions`,
    );
  }
  let sizes: number[];
  if (options.imbalanceRatio !== undefined) {
    const r = options.imbalanceRatio;
    if (!(r >= 1) || !Number.isFinite(r)) {
      throw new RangeError(`partition quantity_skew: imbalance_ratio must be a number >= 1 (largest / smallest party), got ${String(r)}`);
    }
    const weights = Array.from({ length: k }, (_, i) => (k === 1 ? 1 : Math.pow(r, -i / (k - 1))));
    sizes = roundSizes(weights, total);
    raiseToMinimum(sizes, minSize);
  } else {
    const alpha = positive(options.alpha, 0.5, 'alpha');
    let attempt = 0;
    for (;;) {
      const p = dirichlet(rng, alpha, k);
      sizes = roundSizes(Array.from(p), total);
      if (Math.min(...sizes) >= minSize) break;
      if (++attempt >= MAX_DIRICHLET_ATTEMPTS) {
        throw new RangeError(
          `partition quantity_skew: no draw in ${MAX_DIRICHLET_ATTEMPTS} attempts gave each of ${k} parties at least min_size=${minSize} samples (${total} samples, alpha=${alpha}); raise alpha, or lower min_size or num_partitions`,
        );
      }
    }
  }
  const idx = range(total);
  shuffleInPlace(idx, rng);
  return splitBySizes(idx, sizes);
}

/** Integer sizes summing to `total`, proportional to `weights` (largest remainders first, ties to the lower index). */
export function roundSizes(weights: readonly number[], total: number): number[] {
  const sum = weights.reduce((a, b) => a + b, 0);
  const exact = weights.map((w) => (w / sum) * total);
  const sizes = exact.map((x) => Math.floor(x));
  let left = total - sizes.reduce((a, b) => a + b, 0);
  const order = exact.map((x, i) => [x - Math.floor(x), i] as const).sort((a, b) => b[0] - a[0] || a[1] - b[1]);
  for (let i = 0; left > 0; i = (i + 1) % order.length, left--) sizes[order[i][1]]++;
  return sizes;
}

/** Moves samples from the largest parts to any part below `minSize` (callers checked feasibility). */
function raiseToMinimum(sizes: number[], minSize: number): void {
  for (let i = 0; i < sizes.length; i++) {
    while (sizes[i] < minSize) {
      let largest = 0;
      for (let j = 1; j < sizes.length; j++) if (sizes[j] > sizes[largest]) largest = j;
      sizes[largest]--;
      sizes[i]++;
    }
  }
}
