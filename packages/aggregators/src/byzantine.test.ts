import { describe, expect, it } from 'vitest';
import { createAggregator, registerBuiltins } from './index.js';
import { makeContext, makeUpdate, seededRandom } from './testing/index.js';

registerBuiltins();

const P = 32;
const HONEST = 1;

/** 7 honest clients within +-0.01 of 1.0 and 2 attackers sending `attack` in every coordinate. */
function round(attack: number) {
  const rand = seededRandom(42);
  const updates = Array.from({ length: 7 }, (_, k) => {
    const w = new Float32Array(P);
    for (let i = 0; i < P; i++) w[i] = HONEST + (rand() * 2 - 1) * 0.01;
    return makeUpdate(`honest_${k}`, w);
  });
  for (let k = 0; k < 2; k++) updates.push(makeUpdate(`byzantine_${k}`, new Float32Array(P).fill(attack)));
  return { ctx: makeContext(new Float32Array(P)), updates };
}

const maxError = (w: Float32Array): number => {
  let m = 0;
  for (const v of w) m = Math.max(m, Number.isNaN(v) ? Infinity : Math.abs(v - HONEST));
  return m;
};

describe.each([
  ['1e30', 1e30],
  ['NaN', Number.NaN],
])('Byzantine clients sending %s', (_label, attack) => {
  it('ruin fedavg', () => {
    const { ctx, updates } = round(attack);
    expect(maxError(createAggregator({ type: 'fedavg' }).aggregate(ctx, updates).weights)).toBeGreaterThan(1e20);
  });

  it.each([
    ['median', {}],
    ['trimmed_mean', { beta: 0.25 }],
    ['krum', { f: 2 }],
    ['krum', { f: 2, m: 3 }],
  ])('leave %s %j near the honest value', (type, args) => {
    const { ctx, updates } = round(attack);
    expect(maxError(createAggregator({ type, args }).aggregate(ctx, updates).weights)).toBeLessThan(0.011);
  });
});
