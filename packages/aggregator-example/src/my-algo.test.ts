import { createAggregator, hasAggregator } from '@oiafed/aggregators';
import { describeAggregatorContract, makeContext, makeUpdate } from '@oiafed/aggregators/testing';
import { describe, expect, it } from 'vitest';
import { MY_ALGO_TYPE, register } from './index.js';

describe('my_algo plugin', () => {
  it('registers itself on import and again on register()', () => {
    expect(hasAggregator(MY_ALGO_TYPE)).toBe(true);
    register();
    expect(hasAggregator(MY_ALGO_TYPE)).toBe(true);
  });

  it('steps toward the weighted mean by server_lr', () => {
    // mean = (1*1 + 3*3)/4 = 2.5; x = 0 + 0.5 * (2.5 - 0) = 1.25
    const agg = createAggregator({ type: 'my_algo', args: { server_lr: 0.5 } });
    const res = agg.aggregate(makeContext(Float32Array.from([0])), [
      makeUpdate('a', [1], { numSamples: 1 }),
      makeUpdate('b', [3], { numSamples: 3 }),
    ]);
    expect(res.weights[0]).toBeCloseTo(1.25, 6);
  });

  it('reports bad args through the registry, prefixed with its type', () => {
    expect(() => createAggregator({ type: 'my_algo', args: { server_lr: 0 } })).toThrow(
      'aggregator "my_algo": args.server_lr must be > 0, got 0',
    );
  });
});

describeAggregatorContract('my_algo', () => createAggregator({ type: 'my_algo' }));
