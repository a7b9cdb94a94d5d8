/**
 * Fixed-point encoding of an update into the group Z_{2^bits} (bits <= 32, stored in Uint32Array),
 * and the group arithmetic masks use. Weighting: a learner scales its clipped values by its share
 * f = w / W of the round's total weight W (w: its sample count, or 1 unweighted), so f x lies in
 * [-clip, clip]; that maps to an integer in [0, levels] by unbiased stochastic rounding (CSPRNG),
 * and the integer weight w is appended. The sum over m learners then carries sum f x and the
 * survivors' total weight, and cannot wrap when levels * m <= 2^bits - 1.
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
 * Quantization levels for a round of `participants` learners whose weights total `totalWeight`:
 * the largest L with L * participants < 2^bits. Throws when fewer than 2 levels remain or the
 * total weight does not fit the group (raise quantization_bits).
 */
export function levelsFor(bits: number, participants: number, totalWeight = participants): number {
  groupMask(bits);
  if (!Number.isInteger(participants) || participants < 1) throw new Error(`secagg: participants must be a positive integer, got ${participants}`);
  if (!Number.isInteger(totalWeight) || totalWeight < 1 || totalWeight > 2 ** bits - 1) {
    throw new Error(`secagg: total weight ${totalWeight} does not fit ${bits} quantization bits`);
  }
  const levels = Math.floor((2 ** bits - 1) / participants);
  if (levels < 2) throw new Error(`secagg: ${bits} quantization bits leave ${levels} levels for ${participants} learners; raise quantization_bits`);
  return levels;
}

/**
 * The stated error bound of the decoded weighted mean, per coordinate: each of `count` inputs is
 * off by less than one step 2 clip / levels, and the sum is rescaled by W / W_included; plus the
 * float32 rounding of a value in [-clip, clip].
 */
export function quantizationStep(clip: number, levels: number, count = 1, rescale = 1): number {
  return ((2 * clip) / levels) * count * rescale + clip * 2 ** -23;
}

/**
 * Encodes `values` (clipped to [-clip, clip]) scaled by weight / totalWeight into Z_{2^bits}:
 * length values.length + 1, the last element is the integer weight itself.
 */
export function quantizeWeighted(values: Float32Array, clip: number, levels: number, weight: number, totalWeight: number, bits: number): Uint32Array {
  const mask = groupMask(bits);
  if (!(clip > 0)) throw new Error(`secagg: clip_range must be > 0, got ${clip}`);
  if (!Number.isInteger(weight) || weight < 1 || weight > totalWeight) throw new Error(`secagg: weight ${weight} is not in 1..${totalWeight}`);
  const n = values.length;
  const noise = randomBytes(n * 4);
  const out = new Uint32Array(n + 1);
  const fraction = weight / totalWeight;
  const scale = levels / (2 * clip);
  for (let i = 0; i < n; i++) {
    const v = Math.min(clip, Math.max(-clip, values[i]!)) * fraction;
    const scaled = (v + clip) * scale;
    const floor = Math.floor(scaled);
    // Stochastic rounding: up with probability (scaled - floor), so E[q] = scaled.
    const u = noise.readUInt32LE(i * 4) / 4294967296;
    out[i] = Math.min(levels, floor + (u < scaled - floor ? 1 : 0)) & mask;
  }
  out[n] = weight & mask;
  return out;
}

/**
 * Decodes the sum of `count` quantizeWeighted vectors into the weighted mean of their values:
 * sum f x = s * 2 clip / levels - count * clip, rescaled by totalWeight / W_included (the last
 * element) so learners that dropped before masking do not shrink the mean.
 */
export function dequantizeWeightedMean(
  sum: Uint32Array,
  clip: number,
  levels: number,
  count: number,
  totalWeight: number,
): { mean: Float32Array; includedWeight: number } {
  const n = sum.length - 1;
  const includedWeight = sum[n]!;
  if (includedWeight < 1) throw new Error('secagg: the unmasked total weight is 0');
  const rescale = totalWeight / includedWeight;
  const step = (2 * clip) / levels;
  const mean = new Float32Array(n);
  for (let i = 0; i < n; i++) mean[i] = (sum[i]! * step - count * clip) * rescale;
  return { mean, includedWeight };
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
