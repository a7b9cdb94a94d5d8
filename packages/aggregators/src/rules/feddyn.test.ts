import { describe, expect, it } from 'vitest';
import { createAggregator, registerBuiltins } from '../index.js';
import { describeAggregatorContract, makeContext, makeLayout, makeUpdate } from '../testing/index.js';

registerBuiltins();

describe('feddyn (Acar et al. 2021, Algorithm 1)', () => {
  // one trainable weight and one batch-norm statistic (not trainable: a plain mean, no h)
  const layout = makeLayout([['w', 1], ['bn/moving_mean', 1, true]]);

  it('asks learners for alpha and moves by the mean minus h / alpha, h accumulating the drift over m', () => {
    const agg = createAggregator({ type: 'feddyn', args: { alpha: 0.5 } });
    const ctx = makeContext(Float32Array.from([1, 1]), { layout, totalClients: 4 });
    expect(agg.configureRound(ctx).instructions).toEqual({ feddyn: 0.5 });
    // drift = (3-1) + (5-1) = 6 on w, (2-1) + (4-1) = 4 on bn
    // h = 0 - 0.5 / 4 * 6 = -0.75; w = 1 + 6/2 - (-0.75) / 0.5 = 5.5; bn = 1 + 4/2 = 3
    const first = agg.aggregate(ctx, [makeUpdate('a', [3, 2]), makeUpdate('b', [5, 4])]);
    expect([...first.weights]).toEqual([5.5, 3]);
    expect([...(agg.getState().h as Float32Array)]).toEqual([-0.75, 0]);
    // learners that do not move: h stays, and still pushes w by -h / alpha = 1.5
    const ctx2 = makeContext(first.weights, { layout, totalClients: 4 });
    expect([...agg.aggregate(ctx2, [makeUpdate('a', [5.5, 3])]).weights]).toEqual([7, 3]);
  });

  it('checkpoints h exactly', () => {
    const agg = createAggregator({ type: 'feddyn', args: { alpha: 0.5 } });
    const ctx = makeContext(Float32Array.from([1, 1]), { layout, totalClients: 4 });
    agg.aggregate(ctx, [makeUpdate('a', [3, 2])]);
    const resumed = createAggregator({ type: 'feddyn', args: { alpha: 0.5 } });
    resumed.setState(agg.getState());
    const next = makeContext(Float32Array.from([2, 2]), { layout, totalClients: 4 });
    expect(resumed.aggregate(next, [makeUpdate('a', [4, 4])]).weights).toEqual(agg.aggregate(next, [makeUpdate('a', [4, 4])]).weights);
  });

  it('refuses alpha <= 0 and a round with more updates than m', () => {
    expect(() => createAggregator({ type: 'feddyn', args: { alpha: 0 } })).toThrow('aggregator "feddyn": args.alpha must be > 0, got 0');
    const agg = createAggregator({ type: 'feddyn' });
    const ctx = makeContext(Float32Array.from([1, 1]), { layout, totalClients: 1 });
    expect(() => agg.aggregate(ctx, [makeUpdate('a', [1, 1]), makeUpdate('b', [1, 1])])).toThrow('m must count every registered learner');
  });
});

// h keeps pushing after a round of identical updates: not a fixed point, like the adaptive rules.
describeAggregatorContract('feddyn', () => createAggregator({ type: 'feddyn', args: { alpha: 0.1 } }), { identicalUpdatesFixedPoint: false });
