import { describe, expect, it } from 'vitest';
import { createAggregator, FEDDISTILL_GLOBAL, FEDPROTO_GLOBAL, packPrototypes, registerBuiltins, unpackPrototypes } from '../index.js';
import type { ClientUpdate } from '../types.js';
import { makeContext } from '../testing/index.js';

registerBuiltins();

/** An update carrying 2 classes x 2 dims of per-class vectors under `key`, in a model of 8 weights. */
function update(id: string, vectors: number[], counts: number[], key = 'class_prototypes'): ClientUpdate {
  const packed = packPrototypes(Float32Array.from(vectors), Float32Array.from(counts), 8);
  return { clientId: id, weights: new Float32Array(8), numSamples: 10, extras: { [key]: packed }, meta: { proto_classes: 2, proto_dim: 2 } };
}

describe('fedproto / feddistill (per-class averaging over the learners holding the class)', () => {
  const ctx = makeContext(Float32Array.from([1, 2, 3, 4, 5, 6, 7, 8]));

  it('averages each class over its holders (each learner once), keeps the global weights, streams like the batch', () => {
    const agg = createAggregator({ type: 'fedproto', args: { lambda: 2 } });
    expect(agg.configureRound(ctx)).toEqual({ instructions: { fedproto: 2 } });
    const updates = [update('a', [1, 2, 3, 4], [5, 0]), update('b', [3, 6, 5, 8], [1, 2]), update('c', [0, 0, 9, 9], [0, 7])];
    const result = agg.aggregate(ctx, updates);
    expect([...result.weights]).toEqual([...ctx.global]);
    expect(result.metrics).toEqual({ num_updates: 3, prototype_classes: 2 });
    const global = unpackPrototypes(agg.configureRound(ctx).tensors![FEDPROTO_GLOBAL]!, 2, 2);
    // class 0: a and b hold it -> (1+3)/2, (2+6)/2; class 1: b and c -> (5+9)/2, (8+9)/2
    expect([...global.prototypes]).toEqual([2, 4, 7, 8.5]);
    expect([...global.counts]).toEqual([2, 2]);

    const streamed = createAggregator({ type: 'fedproto', args: { lambda: 2 } });
    const acc = streamed.createAccumulator!(ctx);
    for (const u of updates) acc.add(u);
    acc.finish();
    expect(streamed.getState()).toEqual(agg.getState());
  });

  it('keeps the previous vector of a class nobody held this round, and checkpoints exactly', () => {
    const agg = createAggregator({ type: 'feddistill' });
    agg.aggregate(ctx, [update('a', [1, 1, 2, 2], [1, 1], 'class_logits')]);
    agg.aggregate(ctx, [update('b', [5, 5, 0, 0], [3, 0], 'class_logits')]);
    expect([...unpackPrototypes(agg.configureRound(ctx).tensors![FEDDISTILL_GLOBAL]!, 2, 2).prototypes]).toEqual([5, 5, 2, 2]);
    const resumed = createAggregator({ type: 'feddistill' });
    resumed.setState(agg.getState());
    expect(resumed.configureRound(ctx)).toEqual(agg.configureRound(ctx));
  });

  it('refuses an update without its vectors, without its shape, or with another shape', () => {
    const agg = createAggregator({ type: 'fedproto' });
    expect(() => agg.aggregate(ctx, [{ ...update('a', [1, 2, 3, 4], [1, 1]), extras: {} }])).toThrow('fedproto: update from "a" lacks extras.class_prototypes');
    expect(() => agg.aggregate(ctx, [{ ...update('a', [1, 2, 3, 4], [1, 1]), meta: {} }])).toThrow('lacks meta.proto_classes');
    const odd = { ...update('b', [1, 2, 3, 4], [1, 1]), meta: { proto_classes: 4, proto_dim: 1 } };
    expect(() => agg.aggregate(ctx, [update('a', [1, 2, 3, 4], [1, 1]), odd])).toThrow("learners disagree on the per-class vectors' shape");
  });
});
