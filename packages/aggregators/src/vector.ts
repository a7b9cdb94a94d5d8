/**
 * Allocation-free vector kernels. Every loop runs over typed arrays with the output passed in,
 * so aggregation costs O(model) memory however many updates stream through.
 */

/** `acc[i] += w * x[i]` over the whole vector (float64 accumulation keeps sums of many float32s exact enough). */
export function axpyInto(acc: Float64Array, x: Float32Array, w: number): void {
  const n = acc.length;
  for (let i = 0; i < n; i++) acc[i] += w * x[i];
}

/** `acc[i] += w * (x[i] - base[i])`: accumulates a weighted difference without a temporary. */
export function axpyDiffInto(acc: Float64Array, x: Float32Array, base: Float32Array, w: number): void {
  const n = acc.length;
  for (let i = 0; i < n; i++) acc[i] += w * (x[i] - base[i]);
}

/** `out[i] = acc[i] * scale`, narrowing to float32. */
export function scaleInto(out: Float32Array, acc: Float64Array, scale: number): Float32Array {
  const n = out.length;
  for (let i = 0; i < n; i++) out[i] = acc[i] * scale;
  return out;
}

/**
 * Weighted mean of equal-length vectors into a preallocated `out`
 * (`weights` default to 1; they are normalised by their sum).
 */
export function weightedMean(
  vectors: readonly Float32Array[],
  out: Float32Array,
  weights?: readonly number[],
  scratch: Float64Array = new Float64Array(out.length),
): Float32Array {
  if (vectors.length === 0) throw new Error('weightedMean: needs at least one vector');
  if (weights && weights.length !== vectors.length) {
    throw new Error(`weightedMean: got ${weights.length} weights for ${vectors.length} vectors`);
  }
  if (scratch.length !== out.length) throw new Error('weightedMean: scratch length must equal out length');
  scratch.fill(0);
  let total = 0;
  for (let j = 0; j < vectors.length; j++) {
    const v = vectors[j];
    if (v.length !== out.length) {
      throw new Error(`weightedMean: vector ${j} has length ${v.length}, expected ${out.length}`);
    }
    const w = weights ? weights[j] : 1;
    total += w;
    axpyInto(scratch, v, w);
  }
  if (!(total > 0)) throw new Error(`weightedMean: weights must sum to a positive number, got ${total}`);
  return scaleInto(out, scratch, 1 / total);
}

/** Squared Euclidean distance accumulated in float64; NaN anywhere gives +Infinity so it ranks last. */
export function squaredDistance(a: Float32Array, b: Float32Array): number {
  let s = 0;
  const n = a.length;
  for (let i = 0; i < n; i++) {
    const d = a[i] - b[i];
    s += d * d;
  }
  return s === s ? s : Infinity;
}

/** Whether every element is finite. */
export function allFinite(x: Float32Array): boolean {
  for (let i = 0; i < x.length; i++) {
    if (!Number.isFinite(x[i])) return false;
  }
  return true;
}

/** Max |a[i] - b[i]|, handy in tests and metrics. */
export function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) throw new Error(`maxAbsDiff: lengths differ (${a.length} vs ${b.length})`);
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (d > m || d !== d) m = d !== d ? Infinity : d;
  }
  return m;
}

/** Partially sorts `a[lo..hi]` so that `a[k]` holds the value of rank k (Hoare quickselect, median-of-three). */
export function selectKth(a: Float64Array, lo: number, hi: number, k: number): number {
  while (hi > lo) {
    if (hi - lo < 16) {
      for (let i = lo + 1; i <= hi; i++) {
        const v = a[i];
        let j = i - 1;
        while (j >= lo && a[j] > v) {
          a[j + 1] = a[j];
          j--;
        }
        a[j + 1] = v;
      }
      return a[k];
    }
    const mid = (lo + hi) >>> 1;
    if (a[mid] < a[lo]) swap(a, mid, lo);
    if (a[hi] < a[lo]) swap(a, hi, lo);
    if (a[hi] < a[mid]) swap(a, hi, mid);
    const pivot = a[mid];
    let i = lo;
    let j = hi;
    while (i <= j) {
      while (a[i] < pivot) i++;
      while (a[j] > pivot) j--;
      if (i <= j) {
        swap(a, i, j);
        i++;
        j--;
      }
    }
    if (k <= j) hi = j;
    else if (k >= i) lo = i;
    else return a[k];
  }
  return a[k];
}

function swap(a: Float64Array, i: number, j: number): void {
  const t = a[i];
  a[i] = a[j];
  a[j] = t;
}
