/**
 * Fixed-point encoding of an update into the group Z_{2^bits} (bits <= 32, stored in Uint32Array),
 * and the group arithmetic masks use. A coordinate in [-clip, clip] maps to an integer in [0, levels]
 * by unbiased stochastic rounding (CSPRNG); a learner multiplies it by its integer weight (sample
 * count) and appends the weight, so the sum of the vectors carries the weighted sum and the total
 * weight. `levels` is chosen so the sum of every participant's vector cannot wrap:
 * levels * totalWeight <= 2^bits - 1.
 */
import { randomBytes } from 'node:crypto';

/** Largest quantization_bits: vectors live in Uint32Array. */
export const MAX_GROUP_BITS = 32;

/** The bit mask of Z_{2^bits} as an int32 (-1 for 32 bits: `& -1` keeps all 32 bits). */
export function groupMask(bits: number): number {
  if (!Number.isInteger(bits) || bits < 2 || bits > MAX_GROUP_BITS) throw new Error(`secagg: quantization_bits must be in 2..32, got ${bits}`);
  return bits === 32 ? -1 : (1 << bits) - 1;
}

/**
 * Quantization levels per unit weight for a round whose weights sum to `totalWeight`: the largest
 * L with L * totalWeight < 2^bits. Throws when fewer than 2 levels remain (raise quantization_bits).
 */
export function levelsFor(bits: number, totalWeight: number): number {
  groupMask(bits);
  if (!Number.isInteger(totalWeight) || totalWeight < 1) throw new Error(`secagg: total weight must be a positive integer, got ${totalWeight}`);
  const levels = Math.floor((2 ** bits - 1) / totalWeight);
  if (levels < 2) {
    throw new Error(`secagg: ${bits} quantization bits leave ${levels} levels for a total weight of ${totalWeight}; raise quantization_bits`);
  }
  return levels;
}

/** The stated error bound of the decoded weighted mean, per coordinate: one quantization step. */
export function quantizationStep(clip: number, levels: number): number {
  return (2 * clip) / levels;
}

/**
 * Encodes `values` (clipped to [-clip, clip]) times integer `weight` into Z_{2^bits}: length
 * values.length + 1, the last element is the weight itself.
 */
export function quantizeWeighted(values: Float32Array, clip: number, levels: number, weight: number, bits: number): Uint32Array {
  const mask = groupMask(bits);
  if (!(clip > 0)) throw new Error(`secagg: clip_range must be > 0, got ${clip}`);
  if (!Number.isInteger(weight) || weight < 1 || weight * levels > 2 ** bits - 1) {
    throw new Error(`secagg: weight ${weight} x ${levels} levels does not fit ${bits} bits`);
  }
  const n = values.length;
  const noise = randomBytes(n * 4);
  const out = new Uint32Array(n + 1);
  const scale = levels / (2 * clip);
  for (let i = 0; i < n; i++) {
    const v = Math.min(clip, Math.max(-clip, values[i]!));
    const scaled = (v + clip) * scale;
    const floor = Math.floor(scaled);
    // Stochastic rounding: up with probability (scaled - floor), so E[q] = scaled.
    const u = noise.readUInt32LE(i * 4) / 4294967296;
    const q = Math.min(levels, floor + (u < scaled - floor ? 1 : 0));
    out[i] = (q * weight) & mask;
  }
  out[n] = weight & mask;
  return out;
}

/**
 * Decodes the sum of quantizeWeighted vectors into the weighted mean of the values:
 * mean_i = sum_i / (W * levels) * 2 clip - clip, where W (the last element) is the total weight.
 */
export function dequantizeWeightedMean(sum: Uint32Array, clip: number, levels: number): { mean: Float32Array; totalWeight: number } {
  const n = sum.length - 1;
  const totalWeight = sum[n]!;
  if (totalWeight < 1) throw new Error('secagg: the unmasked total weight is 0');
  const scale = (2 * clip) / (totalWeight * levels);
  const mean = new Float32Array(n);
  for (let i = 0; i < n; i++) mean[i] = sum[i]! * scale - clip;
  return { mean, totalWeight };
}

/** acc += v (mod 2^bits), in place. */
export function addInto(acc: Uint32Array, v: Uint32Array, bits: number): void {
  const mask = groupMask(bits);
  if (acc.length !== v.length) throw new Error(`secagg: vectors of ${acc.length} and ${v.length} elements`);
  for (let i = 0; i < acc.length; i++) acc[i] = (acc[i]! + v[i]!) & mask;
}

/** acc -= v (mod 2^bits), in place. */
export function subtractInto(acc: Uint32Array, v: Uint32Array, bits: number): void {
  const mask = groupMask(bits);
  if (acc.length !== v.length) throw new Error(`secagg: vectors of ${acc.length} and ${v.length} elements`);
  for (let i = 0; i < acc.length; i++) acc[i] = (acc[i]! - v[i]! + 4294967296) & mask;
}
