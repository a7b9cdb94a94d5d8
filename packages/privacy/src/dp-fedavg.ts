/**
 * Central DP-FedAvg (McMahan, Ramage, Talwar, Zhang, ICLR 2018, "Learning Differentially Private Recurrent
 * Language Models") with fixed or adaptive clipping (Andrew, Thakkar, McMahan, Ramaswamy, NeurIPS 2021,
 * "Differentially Private Learning with Adaptive Clipping"), as pure functions on Float32Array.
 */
import type { NormalSource } from './random.js';

/** L2 norm, accumulated in double precision. */
export function l2Norm(v: Float32Array): number {
  let sum = 0;
  for (let i = 0; i < v.length; i++) sum += v[i] * v[i];
  return Math.sqrt(sum);
}

export interface ClipResult {
  /** A fresh copy of the update, scaled so that its L2 norm is at most the clip norm. */
  clipped: Float32Array;
  /** The norm before clipping. */
  norm: number;
  /** Whether the update was within the clip norm (the bit adaptive clipping counts). */
  withinClip: boolean;
}

/** Scales an update (a model delta) down to L2 norm `clipNorm` when it is longer; never scales up. */
export function clipL2(update: Float32Array, clipNorm: number): ClipResult {
  if (!(clipNorm > 0)) throw new RangeError(`clip norm must be > 0, got ${clipNorm}`);
  const norm = l2Norm(update);
  const scale = norm > clipNorm ? clipNorm / norm : 1;
  const clipped = new Float32Array(update.length);
  for (let i = 0; i < update.length; i++) clipped[i] = update[i] * scale;
  return { clipped, norm, withinClip: norm <= clipNorm };
}

/**
 * The standard deviation of the noise on the mean: the sum of clipped updates has L2 sensitivity `clipNorm`,
 * gets noise noiseMultiplier * clipNorm, and is divided by the expected number of participants (the
 * fixed-denominator estimator of McMahan et al., whose sensitivity does not depend on who took part).
 */
export function centralNoiseStd(noiseMultiplier: number, clipNorm: number, expectedParticipants: number): number {
  if (!(expectedParticipants > 0)) throw new RangeError(`expected participants must be > 0, got ${expectedParticipants}`);
  return (noiseMultiplier * clipNorm) / expectedParticipants;
}

/** A fresh copy of `v` with independent N(0, std^2) noise added to each coordinate. */
export function addGaussianNoise(v: Float32Array, std: number, normal: NormalSource): Float32Array {
  const out = new Float32Array(v.length);
  for (let i = 0; i < v.length; i++) out[i] = v[i] + (std > 0 ? std * normal() : 0);
  return out;
}

export interface DpMeanOptions {
  clipNorm: number;
  noiseMultiplier: number;
  /** The denominator: the expected number of participants per round (not the number that answered). */
  expectedParticipants: number;
  normal: NormalSource;
}

export interface DpMeanResult {
  /** The noised mean of the clipped updates. */
  mean: Float32Array;
  /** How many updates were within the clip norm (not noised: feed it to {@link adaptClipNorm}). */
  withinClip: number;
  /** The noise standard deviation that was added to each coordinate. */
  noiseStd: number;
}

/** One central DP-FedAvg aggregation: clip each update, sum, divide by the expected participants, add noise. */
export function dpMean(updates: readonly Float32Array[], options: DpMeanOptions): DpMeanResult {
  if (updates.length === 0) throw new RangeError('dpMean needs at least one update');
  const sum = new Float64Array(updates[0].length);
  let withinClip = 0;
  for (const update of updates) {
    if (update.length !== sum.length) throw new RangeError(`update length ${update.length} differs from ${sum.length}`);
    const c = clipL2(update, options.clipNorm);
    if (c.withinClip) withinClip++;
    for (let i = 0; i < sum.length; i++) sum[i] += c.clipped[i];
  }
  const mean = new Float32Array(sum.length);
  for (let i = 0; i < sum.length; i++) mean[i] = sum[i] / options.expectedParticipants;
  const noiseStd = centralNoiseStd(options.noiseMultiplier, options.clipNorm, options.expectedParticipants);
  return { mean: addGaussianNoise(mean, noiseStd, options.normal), withinClip, noiseStd };
}

export interface AdaptiveClipOptions {
  /** gamma: the quantile of update norms the clip norm tracks (Andrew et al. use 0.5). */
  targetQuantile: number;
  /** eta_C: the geometric learning rate (Andrew et al. use 0.2). */
  learningRate: number;
  /** sigma_b: standard deviation of the noise on the count of unclipped updates (Andrew et al.: m / 20). */
  countStd: number;
  normal: NormalSource;
}

/**
 * Andrew et al. 2021, Algorithm 1: b = (count of updates within the clip norm + N(0, sigma_b^2)) / m, then
 * C <- C * exp(-eta_C * (b - gamma)). Too few updates inside the clip raises C; too many lowers it.
 */
export function adaptClipNorm(clipNorm: number, withinClip: number, expectedParticipants: number, options: AdaptiveClipOptions): number {
  const noisedFraction = (withinClip + (options.countStd > 0 ? options.countStd * options.normal() : 0)) / expectedParticipants;
  return clipNorm * Math.exp(-options.learningRate * (noisedFraction - options.targetQuantile));
}

/**
 * With adaptive clipping the count query spends privacy too; Andrew et al. (Thm 1) keep the total at noise
 * multiplier z by giving the update sum z_delta = (z^-2 - (2 sigma_b)^-2)^(-1/2): the count noise sigma_b
 * relative to the count's sensitivity 1/2 (bits are centred) is a noise multiplier of 2 sigma_b. Throws when sigma_b alone exceeds the budget.
 */
export function adaptiveUpdateNoiseMultiplier(noiseMultiplier: number, countStd: number): number {
  const rest = noiseMultiplier ** -2 - (2 * countStd) ** -2;
  if (!(rest > 0)) {
    throw new RangeError(`count noise std ${countStd} is too small for noise multiplier ${noiseMultiplier}: need countStd > ${noiseMultiplier / 2}`);
  }
  return rest ** -0.5;
}
