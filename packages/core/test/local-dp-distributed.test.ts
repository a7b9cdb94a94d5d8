import { createAggregator, registerBuiltins } from '@oiafed/aggregators';
import type { SecureAggregationConfig } from '@oiafed/config';
import { epsilonFor } from '@oiafed/privacy';
import { beforeAll, describe, expect, it } from 'vitest';
import { LearnerAlgorithms } from '../src/learner-algorithms/learner-algorithms.js';
import { distributedDpInstruction, withDistributedDp, type DistributedDpSettings } from '../src/local-dp-distributed.js';

beforeAll(() => registerBuiltins());

const DELTA = 1e-5;
const secure: SecureAggregationConfig = { enabled: true, threshold: 0.7, neighbours: 100, clip_range: 8, quantization_bits: 32 };
const settings = (extra: Partial<DistributedDpSettings> = {}): DistributedDpSettings => ({
  clipNorm: 1,
  noiseMultiplier: 2,
  delta: DELTA,
  samplingRate: 1,
  maxRounds: 5,
  minParticipants: 4,
  secureAggregation: secure,
  weighted: false,
  ...extra,
});
const layout = [{ name: 'w', shape: [20000], offset: 0, size: 20000, trainable: true, isNormalization: false }];

/** The noise a learner adds to a zero delta, as the trainer's SecAgg stage would read its reply. */
function learnerNoise(instruction: Record<string, unknown>, seedRound: number): Float32Array {
  const algorithms = new LearnerAlgorithms();
  const active = algorithms.forRound({ local_dp: instruction });
  const global = new Float32Array(20000);
  const settingsOfRound = { epochs: 1, batchSize: 32, lr: 0.1, optimizer: 'sgd' as const, momentum: 0, weightDecay: 0 };
  const result = { loss: 0, accuracy: 0, numSamples: 100, steps: 1, seconds: 0, samplesPerSecond: 0 };
  return algorithms.updateToSend(active, { round: seedRound, global, layout, tensors: {}, settings: settingsOfRound, local: global.slice(), result });
}

const std = (v: Float32Array) => Math.sqrt(v.reduce((s, x) => s + x * x, 0) / v.length);

describe('distributed DP: local DP under secure aggregation', () => {
  it('each learner adds 1 / sqrt(min_clients) of the noise; the sum of min_clients shares has the whole z * C', () => {
    const instruction = distributedDpInstruction(settings());
    expect(instruction).toMatchObject({ clip_norm: 1, noise_multiplier: 2, noise_share: 0.5 });
    const shares = [1, 2, 3, 4].map((r) => learnerNoise({ ...instruction }, r));
    shares.forEach((s) => expect(Math.abs(std(s) - 1)).toBeLessThan(0.03));
    const sum = shares.reduce((acc, s) => acc.map((x, i) => x + s[i]!));
    expect(Math.abs(std(sum) - 2) / 2).toBeLessThan(0.03);
    // Without a share (plain local DP) one learner adds all of it.
    const { noise_share: _, ...plain } = instruction;
    expect(Math.abs(std(learnerNoise(plain, 5)) - 2) / 2).toBeLessThan(0.03);
  });

  it('the trainer charges each round as central DP at q = selected / registered and shows it as dp_epsilon', () => {
    const rule = withDistributedDp(createAggregator({ type: 'fedavg', args: { weighted: false } }), settings());
    const ctx = { round: 1, global: new Float32Array(4), layout: [], totalClients: 8, selectedClients: ['a', 'b', 'c', 'd'] };
    expect(rule.configureRound(ctx).instructions.local_dp).toMatchObject({ noise_share: 0.5 });
    const mean = [{ clientId: 'secure-aggregate', weights: Float32Array.of(0.1, 0.2, 0.3, 0.4), numSamples: 4 }];
    expect(rule.aggregate(ctx, mean).metrics?.dp_epsilon).toBeCloseTo(epsilonFor(0.5, 2, 1, DELTA), 12);
    expect(rule.aggregate({ ...ctx, round: 2 }, mean).metrics?.dp_epsilon).toBeCloseTo(epsilonFor(0.5, 2, 2, DELTA), 12);
    const resumed = withDistributedDp(createAggregator({ type: 'fedavg', args: { weighted: false } }), settings());
    resumed.setState(rule.getState());
    expect(resumed.aggregate({ ...ctx, round: 3 }, mean).metrics?.dp_epsilon).toBeCloseTo(epsilonFor(0.5, 2, 3, DELTA), 12);
  });

  it('refuses sample-count weights, a clip_range that would clip the noise, and a round over target_epsilon', () => {
    expect(() => distributedDpInstruction(settings({ weighted: true }))).toThrow(/weighted: false/);
    expect(() => distributedDpInstruction(settings({ secureAggregation: { ...secure, clip_range: 2 } }))).toThrow(/clip_range >= 7\.000/);
    expect(() => distributedDpInstruction(settings({ targetEpsilon: 0.5 }))).toThrow(/already spends epsilon .* > target_epsilon 0\.5/);
    const derived = distributedDpInstruction(settings({ noiseMultiplier: undefined, targetEpsilon: 4, secureAggregation: { ...secure, clip_range: 20 } }));
    expect(epsilonFor(1, derived.noise_multiplier, 5, DELTA)).toBeLessThanOrEqual(4);
  });
});
