import { createAggregator, registerBuiltins } from '@oiafed/aggregators';
import { makeContext, makeUpdate } from '@oiafed/aggregators/testing';
import { epsilonFor } from '@oiafed/privacy';
import { beforeAll, describe, expect, it } from 'vitest';
import { withCentralDp } from '../src/central-dp.js';

const ones = () => 1; // every normal draw is 1: the noise equals its standard deviation, so results are hand-computable
const base = { delta: 1e-5, samplingRate: 0.5, maxRounds: 10, normal: ones };
const ctx = () => makeContext(Float32Array.from([1, 1]), { selectedClients: ['a', 'b'], totalClients: 4 });

beforeAll(() => registerBuiltins());

describe('central DP-FedAvg around fedavg', () => {
  it('global + (clip((3,4)) + clip((0.3,0.4))) / 2 + noise 1 * 1 / 2 = (1, 1) + (0.45, 0.6) + 0.5', () => {
    const agg = withCentralDp(createAggregator({ type: 'fedavg', args: {} }), { ...base, noiseMultiplier: 1, clipNorm: 1 });
    const result = agg.aggregate(ctx(), [makeUpdate('a', [4, 5]), makeUpdate('b', [1.3, 1.4])]);
    expect(result.weights[0]).toBeCloseTo(1.95, 6);
    expect(result.weights[1]).toBeCloseTo(2.1, 6);
    expect(result.metrics?.dp_noise_std).toBe(0.5);
    expect(result.metrics?.dp_epsilon).toBeCloseTo(epsilonFor(0.5, 1, 1, 1e-5), 12);
  });

  it('charges one step per round and resumes the spent budget from the checkpoint state', () => {
    const agg = withCentralDp(createAggregator({ type: 'fedavg', args: {} }), { ...base, noiseMultiplier: 2, clipNorm: 1 });
    for (let r = 0; r < 3; r++) agg.aggregate(ctx(), [makeUpdate('a', [1, 2])]);
    const resumed = withCentralDp(createAggregator({ type: 'fedavg', args: {} }), { ...base, noiseMultiplier: 2, clipNorm: 1 });
    resumed.setState(agg.getState());
    const next = resumed.aggregate(ctx(), [makeUpdate('a', [1, 2])]);
    expect(next.metrics?.dp_epsilon).toBeCloseTo(epsilonFor(0.5, 2, 4, 1e-5), 12);
  });

  it('adaptive clipping moves the clip norm: 0 of 2 inside clip 1 -> exp(-0.2 * ((0 + sigma_b) / 2 - 0.5))', () => {
    const adaptiveClipping = { initialClipNorm: 1, targetQuantile: 0.5, learningRate: 0.2, countStddev: 1 };
    const agg = withCentralDp(createAggregator({ type: 'fedavg', args: {} }), { ...base, noiseMultiplier: 1, adaptiveClipping });
    expect(agg.aggregate(ctx(), [makeUpdate('a', [4, 5]), makeUpdate('b', [5, 5])]).metrics?.dp_clip_norm).toBe(1);
    // The count noise draws 1 (stub) with sigma_b 1: noised fraction (0 + 1) / 2 = 0.5 = target, so the clip stays.
    expect(agg.aggregate(ctx(), [makeUpdate('a', [4, 5])]).metrics?.dp_clip_norm).toBeCloseTo(1, 12);
    const grow = withCentralDp(createAggregator({ type: 'fedavg', args: {} }), {
      ...base,
      noiseMultiplier: 1,
      adaptiveClipping: { ...adaptiveClipping, countStddev: 0.6 },
    });
    grow.aggregate(ctx(), [makeUpdate('a', [4, 5]), makeUpdate('b', [5, 5])]);
    expect(grow.getState().dp_clip_norm).toBeCloseTo(Math.exp(-0.2 * (0.6 / 2 - 0.5)), 12);
  });
});

describe('the rate each round is charged at', () => {
  it('is selected / registered learners, also when min_clients selects more than client_fraction', () => {
    const agg = withCentralDp(createAggregator({ type: 'fedavg', args: {} }), { ...base, noiseMultiplier: 2, clipNorm: 1 });
    const all = makeContext(Float32Array.from([1, 1]), { selectedClients: ['a', 'b'], totalClients: 2 });
    const eps = agg.aggregate(all, [makeUpdate('a', [1, 2])]).metrics?.dp_epsilon;
    expect(eps).toBeCloseTo(epsilonFor(1, 2, 1, 1e-5), 12);
    expect(eps).toBeGreaterThan(epsilonFor(0.5, 2, 1, 1e-5));
  });

  it('a round that would pass target_epsilon fails and charges nothing', () => {
    const agg = withCentralDp(createAggregator({ type: 'fedavg', args: {} }), { ...base, clipNorm: 1, targetEpsilon: 2 });
    const all = makeContext(Float32Array.from([1, 1]), { selectedClients: ['a', 'b'], totalClients: 2 });
    let rounds = 0;
    expect(() => {
      for (; rounds < base.maxRounds; rounds++) agg.aggregate(all, [makeUpdate('a', [1, 2])]);
    }).toThrow(/would spend epsilon .* > target_epsilon 2/);
    expect(rounds).toBeGreaterThan(0);
    expect(rounds).toBeLessThan(base.maxRounds);
    const resumed = withCentralDp(createAggregator({ type: 'fedavg', args: {} }), { ...base, clipNorm: 1, targetEpsilon: 2 });
    resumed.setState(agg.getState());
    expect(resumed.getState()).toEqual(agg.getState());
    expect(agg.getState().dp_steps_0).toBe(rounds);
  });
});

describe('what central DP refuses', () => {
  it('rules that look at individual updates', () => {
    expect(() => withCentralDp(createAggregator({ type: 'median', args: {} }), { ...base, noiseMultiplier: 1, clipNorm: 1 })).toThrow(
      /needs a rule that averages updates.*median/,
    );
  });

  it('a noise multiplier that overspends target_epsilon, naming the one that would not', () => {
    expect(() =>
      withCentralDp(createAggregator({ type: 'fedavg', args: {} }), { ...base, noiseMultiplier: 0.5, clipNorm: 1, targetEpsilon: 1 }),
    ).toThrow(/spends epsilon .* > target_epsilon 1 .*use noise_multiplier >= /);
  });

  it('both or neither of clip_norm and adaptive_clipping', () => {
    expect(() => withCentralDp(createAggregator({ type: 'fedavg', args: {} }), { ...base, noiseMultiplier: 1 })).toThrow(/exactly one/);
  });

  it('derives the noise multiplier from target_epsilon and stays within it over max_rounds', () => {
    const agg = withCentralDp(createAggregator({ type: 'fedavg', args: {} }), { ...base, clipNorm: 1, targetEpsilon: 4 });
    let eps = 0;
    for (let r = 0; r < base.maxRounds; r++) eps = agg.aggregate(ctx(), [makeUpdate('a', [1, 2])]).metrics!.dp_epsilon;
    expect(eps).toBeLessThanOrEqual(4);
    expect(eps).toBeGreaterThan(3.9);
  });
});
