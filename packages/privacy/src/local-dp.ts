/**
 * Differential privacy applied by the learner itself (issue 16 §2): local DP on the whole update
 * (clip the delta, add Gaussian noise before it leaves the learner, as Flower's LocalDpMod), and the
 * accounting of DP-SGD (Abadi et al., CCS 2016) run inside local training. Pure functions on
 * Float32Array; the noise source is the caller's (the CSPRNG in production, a seeded one in tests).
 */
import { epsilonFor } from './accountant.js';
import { addGaussianNoise, clipL2 } from './dp-fedavg.js';
import type { NormalSource } from './random.js';

export interface LocalDpResult {
  /** What the learner sends: global + clip(local - global) + N(0, (noiseMultiplier * clipNorm)^2) per coordinate. */
  weights: Float32Array;
  /** L2 norm of the delta before clipping. */
  norm: number;
  /** The noise standard deviation added to each coordinate. */
  noiseStd: number;
}

/** Local DP on one update: clips the delta to `clipNorm` and adds N(0, (noiseMultiplier * clipNorm)^2) to each coordinate. */
export function privatizeUpdate(
  local: Float32Array,
  global: Float32Array,
  options: { clipNorm: number; noiseMultiplier: number; normal: NormalSource },
): LocalDpResult {
  if (local.length !== global.length) throw new RangeError(`update length ${local.length} differs from the global model's ${global.length}`);
  const delta = new Float32Array(local.length);
  for (let i = 0; i < delta.length; i++) delta[i] = local[i] - global[i];
  const { clipped, norm } = clipL2(delta, options.clipNorm);
  const noiseStd = options.noiseMultiplier * options.clipNorm;
  const noised = addGaussianNoise(clipped, noiseStd, options.normal);
  for (let i = 0; i < noised.length; i++) noised[i] += global[i];
  return { weights: noised, norm, noiseStd };
}

/**
 * Epsilon of local DP for one learner after it released `rounds` updates. Neighbouring inputs are ANY
 * two local datasets of this learner (the trainer sees its update on its own, so nothing hides it in a
 * crowd): two clipped deltas differ by at most 2 * clipNorm, so each release is a Gaussian mechanism
 * with noise multiplier `noiseMultiplier / 2` relative to that sensitivity, unsampled (q = 1: the trainer
 * knows whom it selected). Rounds compose in RDP.
 */
export function localDpEpsilon(noiseMultiplier: number, rounds: number, delta: number): number {
  if (rounds <= 0) return 0;
  return epsilonFor(1, noiseMultiplier / 2, rounds, delta);
}

/** The sampling rate DP-SGD is accounted at: one lot of `batchSize` out of `numSamples` examples. */
export function dpSgdSamplingRate(batchSize: number, numSamples: number): number {
  if (!(numSamples > 0)) throw new RangeError(`DP-SGD needs at least one sample, got ${numSamples}`);
  return Math.min(1, batchSize / numSamples);
}

/** Optimizer steps in one round of local DP-SGD: `epochs` passes of ceil(n / batch) lots. */
export function dpSgdStepsPerRound(batchSize: number, numSamples: number, epochs: number): number {
  return epochs * Math.ceil(numSamples / batchSize);
}
