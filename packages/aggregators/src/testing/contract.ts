import { describe, expect, it } from 'vitest';
import type { Aggregator, ClientUpdate, RoundContext } from '../types.js';
import { makeContext, makeUpdate, randomUpdates, randomVector } from './fixtures.js';

/** Which universal properties a rule is expected to satisfy. */
export interface AggregatorContractOptions {
  /** n identical updates aggregate to that update (false for adaptive server optimizers). Default true. */
  identicalUpdatesFixedPoint?: boolean;
  /** Reordering the updates leaves the result unchanged up to float rounding. Default true. */
  permutationInvariant?: boolean;
  /** Updates per round in the contract (robust rules need enough for their f / beta). Default 7. */
  numUpdates?: number;
  /** Parameters in the test model. Default 64. */
  numParams?: number;
}

function close(actual: Float32Array, expected: Float32Array, tol: number): void {
  expect(actual.length).toBe(expected.length);
  let worst = 0;
  for (let i = 0; i < actual.length; i++) worst = Math.max(worst, Math.abs(actual[i] - expected[i]));
  expect(worst).toBeLessThanOrEqual(tol);
}

/**
 * The contract every aggregation rule satisfies; run it from a vitest file for each
 * implementation: `describeAggregatorContract('fedavg', () => createAggregator({type: 'fedavg'}))`.
 * `makeAggregator` must return a fresh instance each call.
 */
export function describeAggregatorContract(
  name: string,
  makeAggregator: () => Aggregator,
  options: AggregatorContractOptions = {},
): void {
  const n = options.numUpdates ?? 7;
  const p = options.numParams ?? 64;
  const fixedPoint = options.identicalUpdatesFixedPoint ?? true;
  const permutation = options.permutationInvariant ?? true;

  const round = (r: number, global: Float32Array): { ctx: RoundContext; updates: ClientUpdate[] } => {
    const ctx = makeContext(global, { round: r, totalClients: n + 3 });
    return { ctx, updates: randomUpdates(global, n, 100 + r) };
  };

  describe(`aggregator contract: ${name}`, () => {
    it('has a type and a JSON-serialisable round plan', () => {
      const agg = makeAggregator();
      expect(typeof agg.type).toBe('string');
      expect(agg.type.length).toBeGreaterThan(0);
      const plan = agg.configureRound(makeContext(randomVector(p)));
      expect(JSON.parse(JSON.stringify(plan.instructions))).toEqual(plan.instructions);
      for (const t of Object.values(plan.tensors ?? {})) {
        expect(t).toBeInstanceOf(Float32Array);
        expect(t.length).toBe(p);
      }
    });

    it('returns weights as long as the global vector and leaves its inputs untouched', () => {
      const agg = makeAggregator();
      const global = randomVector(p);
      const { ctx, updates } = round(1, global);
      const globalCopy = new Float32Array(global);
      const updateCopies = updates.map((u) => new Float32Array(u.weights));
      agg.configureRound(ctx);
      const res = agg.aggregate(ctx, updates);
      expect(res.weights).toBeInstanceOf(Float32Array);
      expect(res.weights.length).toBe(p);
      expect(res.weights).not.toBe(global);
      for (let i = 0; i < p; i++) expect(Number.isFinite(res.weights[i])).toBe(true);
      expect(global).toEqual(globalCopy);
      updates.forEach((u, k) => expect(u.weights).toEqual(updateCopies[k]));
    });

    if (fixedPoint) {
      it('aggregates identical updates to that update', () => {
        const agg = makeAggregator();
        const global = randomVector(p, 3);
        const target = randomVector(p, 4);
        const ctx = makeContext(global, { totalClients: n });
        agg.configureRound(ctx);
        const updates = Array.from({ length: n }, (_, k) =>
          makeUpdate(`c${k}`, new Float32Array(target), { numSamples: k + 1 }),
        );
        close(agg.aggregate(ctx, updates).weights, target, 1e-5);
      });
    }

    if (permutation) {
      it('does not depend on the order of the updates', () => {
        const global = randomVector(p, 5);
        const { ctx, updates } = round(1, global);
        const a = makeAggregator();
        const b = makeAggregator();
        a.configureRound(ctx);
        b.configureRound(ctx);
        const reversed = [...updates].reverse();
        const rotated = [...reversed.slice(2), ...reversed.slice(0, 2)];
        close(b.aggregate(ctx, rotated).weights, a.aggregate(ctx, updates).weights, 1e-5);
      });
    }

    it('reproduces the next round after getState/setState', () => {
      const original = makeAggregator();
      const g0 = randomVector(p, 9);
      const r1 = round(1, g0);
      original.configureRound(r1.ctx);
      const g1 = original.aggregate(r1.ctx, r1.updates).weights;
      const state = original.getState();
      for (const v of Object.values(state)) expect(v instanceof Float32Array || typeof v === 'number').toBe(true);

      const restored = makeAggregator();
      restored.setState(state);
      const r2 = round(2, g1);
      const planA = original.configureRound(r2.ctx);
      const planB = restored.configureRound(r2.ctx);
      expect(planB).toEqual(planA);
      expect(restored.aggregate(r2.ctx, r2.updates).weights).toEqual(original.aggregate(r2.ctx, r2.updates).weights);
    });

    it('rejects an empty round and a wrong-length update with errors naming the rule', () => {
      const agg = makeAggregator();
      const global = randomVector(p);
      const ctx = makeContext(global);
      agg.configureRound(ctx);
      expect(() => agg.aggregate(ctx, [])).toThrow(agg.type);
      const { updates } = round(1, global);
      updates[1] = makeUpdate('bad_client', new Float32Array(p + 1));
      expect(() => agg.aggregate(ctx, updates)).toThrow(/bad_client/);
    });

    it('does not crash on NaN or infinite coordinates', () => {
      const agg = makeAggregator();
      const global = randomVector(p, 11);
      const { ctx, updates } = round(1, global);
      updates[0].weights[0] = Number.NaN;
      updates[1].weights[1] = Number.POSITIVE_INFINITY;
      updates[2].weights[2] = Number.NEGATIVE_INFINITY;
      agg.configureRound(ctx);
      expect(agg.aggregate(ctx, updates).weights.length).toBe(p);
    });

    it('streams through createAccumulator to exactly the batch result, when it has one', () => {
      const probe = makeAggregator();
      if (!probe.createAccumulator) return;
      const batch = makeAggregator();
      const streaming = makeAggregator();
      let gBatch: Float32Array = randomVector(p, 13);
      let gStream: Float32Array = new Float32Array(gBatch);
      for (let r = 1; r <= 2; r++) {
        const { ctx, updates } = round(r, gBatch);
        batch.configureRound(ctx);
        gBatch = batch.aggregate(ctx, updates).weights;
        const sctx = { ...ctx, global: gStream };
        streaming.configureRound(sctx);
        const acc = streaming.createAccumulator!(sctx);
        for (const u of updates) acc.add(u);
        gStream = acc.finish().weights;
        expect(gStream).toEqual(gBatch);
      }
    });
  });
}
