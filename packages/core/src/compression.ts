/**
 * Update compression (`transport.update_compression`). A learner sends the DELTA
 * `w_local - w_global` instead of its weights, encoded per model tensor; the trainer rebuilds
 * `w_global + decoded delta`. Compressing the delta (not the weights) is what keeps the error
 * small: deltas are small and centred on zero, so float16 / int8 / top-k lose little of them.
 *
 * Wire form, one group per layout tensor `<name>` (all other tensors, e.g. `extra/`, unchanged):
 * - `float16`: `delta/<name>` float16 (bit patterns), the tensor's shape.
 * - `int8`:    `delta/<name>` int8, the tensor's shape, and `delta_scale/<name>` float32 [1]
 *              (per-tensor symmetric scale: value = q * scale, scale = max|delta| / 127).
 * - `topk`:    `delta/<name>` float32 [k] values and `delta_index/<name>` int32 [k] flat indices
 *              of the k = max(1, ceil(topk_ratio * size)) largest-magnitude entries; the rest is 0.
 * The dtype and the companion tensors announce the encoding, so the trainer needs no config.
 *
 * Error feedback (Seide et al. 2014; Karimireddy et al. 2019, EF-SGD): when a `residual`
 * vector is passed, what compression dropped this round is added to next round's delta, so
 * top-k and int8 errors do not accumulate into a bias. The learner keeps one residual per node.
 */
import type { TensorSpec } from '@oiafed/aggregators';
import type { Tensor } from '@oiafed/transport';
import { PayloadMismatchError, tensorsToWeights } from './serde.js';

/** Encoding of an update on the wire; the shape of the config's `transport.update_compression`. */
export interface UpdateCompression {
  type: 'none' | 'float16' | 'int8' | 'topk';
  /** Fraction of each tensor's entries top-k keeps (0 < ratio <= 1; default 0.01). */
  topk_ratio?: number;
}

const DELTA = 'delta/';
const SCALE = 'delta_scale/';
const INDEX = 'delta_index/';

// ---------------------------------------------------------------------------------------------
// float16

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** IEEE 754 binary16 bits of `value`, rounded to nearest-even; |value| > 65504 gives +-Infinity. */
export function toFloat16Bits(value: number): number {
  f32[0] = value;
  const x = u32[0]!;
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  const mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    const m = mant | 0x800000;
    const shift = 14 - e;
    let h = m >>> shift;
    const rem = m & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    if (rem > half || (rem === half && (h & 1) === 1)) h++;
    return sign | h;
  }
  let h = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  // A carry out of the mantissa correctly bumps the exponent (up to Infinity).
  if (rem > 0x1000 || (rem === 0x1000 && (h & 1) === 1)) h++;
  return sign | h;
}

let f16Table: Float32Array | undefined;

/** All 65,536 half values as float32 (256 KB, built once): decoding is then one load per value. */
function float16Table(): Float32Array {
  if (f16Table) return f16Table;
  const t = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const sign = h & 0x8000 ? -1 : 1;
    const exp = (h >>> 10) & 0x1f;
    const mant = h & 0x3ff;
    if (exp === 0) t[h] = sign * mant * 2 ** -24;
    else if (exp === 0x1f) t[h] = mant ? NaN : sign * Infinity;
    else t[h] = sign * (1 + mant / 1024) * 2 ** (exp - 15);
  }
  return (f16Table = t);
}

/** float32 -> float16 bit patterns (into `out` when given). */
export function float32ToFloat16(src: Float32Array, out: Uint16Array = new Uint16Array(src.length)): Uint16Array {
  for (let i = 0; i < src.length; i++) out[i] = toFloat16Bits(src[i]!);
  return out;
}

/** float16 bit patterns -> float32 (into `out` when given). */
export function float16ToFloat32(src: Uint16Array, out: Float32Array = new Float32Array(src.length)): Float32Array {
  const t = float16Table();
  for (let i = 0; i < src.length; i++) out[i] = t[src[i]!]!;
  return out;
}

// ---------------------------------------------------------------------------------------------
// encoding

/** Throws unless `c` is a usable compression setting; returns the top-k ratio in force. */
export function checkCompression(c: UpdateCompression): number {
  if (!c || !['none', 'float16', 'int8', 'topk'].includes(c.type)) {
    throw new Error(`update_compression.type must be none|float16|int8|topk, got ${JSON.stringify(c?.type)}`);
  }
  const ratio = c.topk_ratio ?? 0.01;
  if (!(ratio > 0 && ratio <= 1)) {
    throw new Error(`update_compression.topk_ratio must be in (0, 1], got ${String(c.topk_ratio)}`);
  }
  return ratio;
}

/**
 * The tensors a learner sends for its new weights `local`, given the round's `global`.
 * `none` sends the weights themselves (zero-copy views, as {@link weightsToTensors});
 * the others send the encoded delta. `residual` (model-sized, updated in place) enables
 * error feedback.
 */
export function compressUpdate(
  local: Float32Array,
  global: Float32Array,
  layout: readonly TensorSpec[],
  compression: UpdateCompression,
  residual?: Float32Array,
): Tensor[] {
  const ratio = checkCompression(compression);
  if (local.length !== global.length) {
    throw new Error(`compressUpdate: local has ${local.length} weights, global ${global.length}`);
  }
  if (residual && residual.length !== local.length) {
    throw new Error(`compressUpdate: residual has ${residual.length} entries, expected ${local.length}`);
  }
  if (compression.type === 'none') {
    return layout.map((spec) => ({
      name: 'weights/' + spec.name,
      shape: [...spec.shape],
      dtype: 'float32' as const,
      data: local.subarray(spec.offset, spec.offset + spec.size),
    }));
  }
  const out: Tensor[] = [];
  for (const spec of layout) {
    const delta = new Float32Array(spec.size);
    const o = spec.offset;
    for (let i = 0; i < spec.size; i++) delta[i] = local[o + i]! - global[o + i]!;
    const res = residual?.subarray(o, o + spec.size);
    if (res) for (let i = 0; i < spec.size; i++) delta[i] += res[i]!;
    if (compression.type === 'float16') {
      const bits = float32ToFloat16(delta);
      for (let i = 0; i < bits.length; i++) {
        if ((bits[i]! & 0x7c00) === 0x7c00) {
          throw new Error(
            `float16 update compression: tensor "${spec.name}" has delta ${delta[i]} at index ${i}, beyond float16's range (65504); use int8 or none`,
          );
        }
      }
      if (res) {
        const t = float16Table();
        for (let i = 0; i < spec.size; i++) res[i] = delta[i]! - t[bits[i]!]!;
      }
      out.push({ name: DELTA + spec.name, shape: [...spec.shape], dtype: 'float16', data: bits });
    } else if (compression.type === 'int8') {
      let maxAbs = 0;
      for (let i = 0; i < spec.size; i++) {
        const a = Math.abs(delta[i]!);
        if (a > maxAbs) maxAbs = a;
      }
      const scale = maxAbs / 127;
      const inv = scale > 0 ? 1 / scale : 0;
      const q = new Int8Array(spec.size);
      for (let i = 0; i < spec.size; i++) q[i] = Math.round(delta[i]! * inv);
      const scale32 = Float32Array.of(scale);
      if (res) for (let i = 0; i < spec.size; i++) res[i] = delta[i]! - q[i]! * scale32[0]!;
      out.push({ name: DELTA + spec.name, shape: [...spec.shape], dtype: 'int8', data: q });
      out.push({ name: SCALE + spec.name, shape: [1], dtype: 'float32', data: scale32 });
    } else {
      const k = Math.min(spec.size, Math.max(1, Math.ceil(ratio * spec.size)));
      const index = topKIndices(delta, k);
      const values = new Float32Array(k);
      for (let j = 0; j < k; j++) values[j] = delta[index[j]!]!;
      if (res) {
        res.set(delta);
        for (let j = 0; j < k; j++) res[index[j]!] = 0;
      }
      out.push({ name: DELTA + spec.name, shape: [k], dtype: 'float32', data: values });
      out.push({ name: INDEX + spec.name, shape: [k], dtype: 'int32', data: index });
    }
  }
  return out;
}

/** Indices (ascending) of the k largest |v[i]|; ties at the threshold are taken first-come. */
export function topKIndices(v: Float32Array, k: number): Int32Array {
  const n = v.length;
  const index = new Int32Array(Math.min(k, n));
  if (k >= n) {
    for (let i = 0; i < n; i++) index[i] = i;
    return index;
  }
  const mag = new Float32Array(n);
  for (let i = 0; i < n; i++) mag[i] = Math.abs(v[i]!);
  // The (n-k)-th smallest magnitude is the threshold: k values are >= it.
  const threshold = quickselect(mag, n - k);
  let above = 0;
  for (let i = 0; i < n; i++) if (Math.abs(v[i]!) > threshold) above++;
  let ties = k - above;
  let j = 0;
  for (let i = 0; i < n && j < k; i++) {
    const a = Math.abs(v[i]!);
    if (a > threshold) index[j++] = i;
    else if (a === threshold && ties > 0) {
      index[j++] = i;
      ties--;
    }
  }
  return index;
}

/** Value of rank `k` (0-based) in `a`, which it partially reorders (Hoare quickselect). */
function quickselect(a: Float32Array, k: number): number {
  let lo = 0;
  let hi = a.length - 1;
  while (hi > lo) {
    const pivot = a[(lo + hi) >>> 1]!;
    let i = lo;
    let j = hi;
    while (i <= j) {
      while (a[i]! < pivot) i++;
      while (a[j]! > pivot) j--;
      if (i <= j) {
        const t = a[i]!;
        a[i] = a[j]!;
        a[j] = t;
        i++;
        j--;
      }
    }
    if (k <= j) hi = j;
    else if (k >= i) lo = i;
    else return a[k]!;
  }
  return a[k]!;
}

// ---------------------------------------------------------------------------------------------
// decoding

/** Whether the tensors carry an encoded delta rather than plain `weights/` tensors. */
export function isCompressedUpdate(tensors: readonly Tensor[] | undefined): boolean {
  return (tensors ?? []).some((t) => t.name.startsWith(DELTA));
}

/**
 * The learner's full weights from a reply: plain `weights/` tensors as {@link tensorsToWeights},
 * or `global + decoded delta` for a compressed reply. Every name, shape, dtype, index and value
 * is checked; errors are {@link PayloadMismatchError}s naming the tensor.
 */
export function decodeUpdateWeights(
  tensors: readonly Tensor[] | undefined,
  layout: readonly TensorSpec[],
  global: Float32Array,
): Float32Array {
  if (!isCompressedUpdate(tensors)) return tensorsToWeights(tensors, layout);
  const byName = new Map<string, Tensor>();
  for (const t of tensors ?? []) if (t.name.startsWith('delta')) byName.set(t.name, t);
  const out = new Float32Array(global);
  const total = layout.reduce((s, spec) => s + spec.size, 0);
  if (total !== global.length) {
    throw new PayloadMismatchError(`layout covers ${total} weights but the global model has ${global.length}`);
  }
  let used = 0;
  for (const spec of layout) {
    const t = byName.get(DELTA + spec.name);
    if (!t) throw new PayloadMismatchError(`compressed update has no "${DELTA}${spec.name}" tensor`);
    used++;
    const dst = out.subarray(spec.offset, spec.offset + spec.size);
    const idx = byName.get(INDEX + spec.name);
    const scale = byName.get(SCALE + spec.name);
    if (idx) {
      used++;
      const k = t.data.length;
      if (t.dtype !== 'float32' || idx.dtype !== 'int32' || idx.data.length !== k || k > spec.size) {
        throw new PayloadMismatchError(
          `${spec.name}: top-k delta needs float32 values and int32 indices of one length <= ${spec.size}, got ${t.dtype}[${k}] and ${idx.dtype}[${idx.data.length}]`,
        );
      }
      const values = t.data as Float32Array;
      const index = idx.data as Int32Array;
      // Indices must be strictly ascending (what topKIndices sends): a repeated index would add
      // several values to one weight, an unsorted list hides repeats.
      let previous = -1;
      for (let j = 0; j < k; j++) {
        const i = index[j]!;
        if (!(i >= 0 && i < spec.size)) throw new PayloadMismatchError(`${spec.name}: top-k index ${i} outside [0, ${spec.size})`);
        if (i <= previous) {
          throw new PayloadMismatchError(
            `${spec.name}: top-k index ${i} at position ${j} ${i === previous ? 'repeats' : 'is below'} the previous ${previous} (indices must be strictly ascending)`,
          );
        }
        previous = i;
        dst[i] = dst[i]! + values[j]!;
      }
    } else {
      if (t.data.length !== spec.size || !sameShape(t.shape, spec.shape)) {
        throw new PayloadMismatchError(
          `${spec.name}: delta shape [${t.shape.join(',')}] (${t.data.length} values), expected [${spec.shape.join(',')}]`,
        );
      }
      if (t.dtype === 'float16') {
        const table = float16Table();
        const bits = t.data as Uint16Array;
        for (let i = 0; i < dst.length; i++) dst[i] = dst[i]! + table[bits[i]!]!;
      } else if (t.dtype === 'int8') {
        if (!scale || scale.dtype !== 'float32' || scale.data.length !== 1) {
          throw new PayloadMismatchError(`${spec.name}: int8 delta needs a float32[1] "${SCALE}${spec.name}" tensor`);
        }
        used++;
        const s = scale.data[0]!;
        if (!(s >= 0 && s < Infinity)) throw new PayloadMismatchError(`${spec.name}: int8 scale ${s} is not a finite number >= 0`);
        const q = t.data as Int8Array;
        for (let i = 0; i < dst.length; i++) dst[i] = dst[i]! + q[i]! * s;
      } else if (t.dtype === 'float32') {
        const d = t.data as Float32Array;
        for (let i = 0; i < dst.length; i++) dst[i] = dst[i]! + d[i]!;
      } else {
        throw new PayloadMismatchError(`${spec.name}: delta dtype ${t.dtype}, expected float16, int8 or float32`);
      }
    }
    for (let i = 0; i < dst.length; i++) {
      if (dst[i]! - dst[i]! !== 0) throw new PayloadMismatchError(`${spec.name}: non-finite value ${dst[i]} at index ${i} after decoding the delta`);
    }
  }
  if (used !== byName.size) {
    const known = new Set(layout.flatMap((s) => [DELTA + s.name, SCALE + s.name, INDEX + s.name]));
    const stray = [...byName.keys()].find((n) => !known.has(n));
    throw new PayloadMismatchError(`compressed update has an unexpected tensor "${stray ?? '?'}"`);
  }
  return out;
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((dim, i) => dim === b[i]);
}
