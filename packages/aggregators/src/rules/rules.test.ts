import { describe, expect, it } from 'vitest';
import { createAggregator, registerBuiltins } from '../index.js';
import { makeContext, makeLayout, makeUpdate } from '../testing/index.js';

registerBuiltins();

const f32 = (...xs: number[]): Float32Array => Float32Array.from(xs);
const expectClose = (actual: Float32Array, expected: readonly number[], digits = 6): void => {
  expect(actual.length).toBe(expected.length);
  expected.forEach((e, i) => expect(actual[i]).toBeCloseTo(e, digits));
};

describe('fedavg', () => {
  const ctx = makeContext(f32(0, 0));
  const updates = [makeUpdate('a', [1, 2], { numSamples: 1 }), makeUpdate('b', [3, 4], { numSamples: 3 })];

  it('weights by sample count', () => {
    // (1*1 + 3*3)/4 = 2.5, (1*2 + 3*4)/4 = 3.5
    const res = createAggregator({ type: 'fedavg' }).aggregate(ctx, updates);
    expectClose(res.weights, [2.5, 3.5]);
    expect(res.metrics).toEqual({ num_updates: 2, total_samples: 4 });
  });

  it('takes the plain mean when weighted is false', () => {
    // (1+3)/2 = 2, (2+4)/2 = 3
    expectClose(createAggregator({ type: 'fedavg', args: { weighted: false } }).aggregate(ctx, updates).weights, [2, 3]);
  });

  it('ignores zero-sample updates and refuses an all-zero round', () => {
    const agg = createAggregator({ type: 'fedavg' });
    expectClose(agg.aggregate(ctx, [...updates, makeUpdate('c', [100, 100], { numSamples: 0 })]).weights, [2.5, 3.5]);
    expect(() => agg.aggregate(ctx, [makeUpdate('z', [1, 1], { numSamples: 0 })])).toThrow(/fedavg: .*0 samples/);
    expect(() => agg.aggregate(ctx, [makeUpdate('neg', [1, 1], { numSamples: -2 })])).toThrow(
      /fedavg: update from client "neg" has numSamples -2/,
    );
  });
});

describe('fedprox', () => {
  it('asks learners for the proximal term and aggregates like fedavg', () => {
    const agg = createAggregator({ type: 'fedprox', args: { mu: 0.1 } });
    const ctx = makeContext(f32(0));
    expect(agg.configureRound(ctx).instructions).toEqual({ proximal_mu: 0.1 });
    expect(createAggregator({ type: 'fedprox' }).configureRound(ctx).instructions).toEqual({ proximal_mu: 0.01 });
    // (2*1 + 6*3)/8 = 2.5
    const res = agg.aggregate(ctx, [makeUpdate('a', [1], { numSamples: 2 }), makeUpdate('b', [3], { numSamples: 6 })]);
    expectClose(res.weights, [2.5]);
  });
});

describe('fedavgm', () => {
  it('applies server momentum (Hsu et al. 2019)', () => {
    const agg = createAggregator({ type: 'fedavgm' });
    // round 1: x=1, avg=0.5 -> Delta=0.5, v=0.5, x=1-0.5=0.5
    const r1 = agg.aggregate(makeContext(f32(1)), [makeUpdate('a', [0.4]), makeUpdate('b', [0.6])]);
    expectClose(r1.weights, [0.5]);
    // round 2: x=0.5, avg=0.25 -> Delta=0.25, v=0.9*0.5+0.25=0.7, x=0.5-0.7=-0.2
    const r2 = agg.aggregate(makeContext(r1.weights), [makeUpdate('a', [0.25])]);
    expectClose(r2.weights, [-0.2]);
    expectClose(agg.getState().velocity as Float32Array, [0.7]);
  });

  it('scales the step by server_lr', () => {
    // x=1, Delta=0.5, v=0.5, x=1-0.5*0.5=0.75
    const agg = createAggregator({ type: 'fedavgm', args: { server_lr: 0.5, momentum: 0.9 } });
    expectClose(agg.aggregate(makeContext(f32(1)), [makeUpdate('a', [0.5])]).weights, [0.75]);
  });
});

describe('fedbn', () => {
  it('averages all but normalization tensors, which keep the global values', () => {
    const layout = makeLayout([['dense/kernel', 2], ['bn/gamma', 1, true], ['dense/bias', 1]]);
    const ctx = makeContext(f32(0, 0, 5, 0), { layout });
    const agg = createAggregator({ type: 'fedbn' });
    expect(agg.configureRound(ctx).instructions).toEqual({ keep_local: 'normalization' });
    // mean of [1,1,1,1] and [3,3,3,3] = 2 everywhere except bn/gamma, which stays 5
    const res = agg.aggregate(ctx, [makeUpdate('a', [1, 1, 1, 1]), makeUpdate('b', [3, 3, 3, 3])]);
    expectClose(res.weights, [2, 2, 5, 2]);
  });

  it('rejects a layout that does not fit the vector', () => {
    const ctx = makeContext(f32(0, 0), { layout: makeLayout([['w', 1], ['bn', 4, true]]) });
    expect(() => createAggregator({ type: 'fedbn' }).aggregate(ctx, [makeUpdate('a', [1, 1])])).toThrow(/fedbn: layout tensor "bn"/);
  });
});

describe('scaffold', () => {
  const control = (...xs: number[]) => ({ control_delta: f32(...xs) });

  it('moves x by the mean delta and c by |S|/N of the mean control delta (Karimireddy et al. 2020)', () => {
    const agg = createAggregator({ type: 'scaffold' });
    const ctx = makeContext(f32(1, 2), { totalClients: 4 });
    const plan = agg.configureRound(ctx);
    expect(plan.instructions).toEqual({ scaffold: true });
    expectClose(plan.tensors!.server_control, [0, 0]);
    const updates = [
      makeUpdate('a', [2, 2], { extras: control(0.4, 0) }),
      makeUpdate('b', [0, 4], { extras: control(0.2, 0.8) }),
    ];
    // mean(y - x) = ([1,0] + [-1,2]) / 2 = [0,1] -> x = [1,3]
    expectClose(agg.aggregate(ctx, updates).weights, [1, 3]);
    // c = 0 + (2/4) * mean([0.4,0],[0.2,0.8]) = 0.5 * [0.3,0.4] = [0.15,0.2]
    expectClose(agg.configureRound(ctx).tensors!.server_control, [0.15, 0.2]);
  });

  it('uses server_lr for the model step', () => {
    const agg = createAggregator({ type: 'scaffold', args: { server_lr: 0.5 } });
    const ctx = makeContext(f32(1, 2), { totalClients: 4 });
    // x = [1,2] + 0.5 * [0,1] = [1,2.5]
    const res = agg.aggregate(ctx, [
      makeUpdate('a', [2, 2], { extras: control(0, 0) }),
      makeUpdate('b', [0, 4], { extras: control(0, 0) }),
    ]);
    expectClose(res.weights, [1, 2.5]);
  });

  it('names the client whose update lacks a control delta', () => {
    const agg = createAggregator({ type: 'scaffold' });
    const u = { clientId: 'c7', weights: f32(1, 1), numSamples: 1 };
    expect(() => agg.aggregate(makeContext(f32(0, 0)), [u])).toThrow(/client "c7" lacks extras.control_delta/);
  });
});

describe('fednova', () => {
  it('normalises each update by a_i and rescales by tau_eff (Wang et al. 2020)', () => {
    const agg = createAggregator({ type: 'fednova' });
    const ctx = makeContext(f32(1));
    expect(agg.configureRound(ctx).instructions).toEqual({ report_steps: true });
    // p = [1/4, 3/4]; d1 = (1-0.4)/2 = 0.3, d2 = (1-0.8)/1 = 0.2
    // tau_eff = 0.25*2 + 0.75*1 = 1.25; x = 1 - 1.25 * (0.25*0.3 + 0.75*0.2) = 1 - 1.25*0.225 = 0.71875
    // (FedAvg would give 0.25*0.4 + 0.75*0.8 = 0.7)
    const res = agg.aggregate(ctx, [
      makeUpdate('a', [0.4], { numSamples: 1, localSteps: 2 }),
      makeUpdate('b', [0.8], { numSamples: 3, localSteps: 1 }),
    ]);
    expectClose(res.weights, [0.71875]);
    expect(res.metrics!.tau_eff).toBeCloseTo(1.25, 10);
  });

  it('uses the momentum normaliser from meta.momentum', () => {
    // a = fednovaNormalizer(2, 0.5) = 2.5; one client: x = 1 - 2.5 * (1 - 0.5)/2.5 = 0.5 (one client = its model)
    const res = createAggregator({ type: 'fednova' }).aggregate(makeContext(f32(1)), [
      makeUpdate('a', [0.5], { localSteps: 2, meta: { momentum: 0.5 } }),
    ]);
    expectClose(res.weights, [0.5]);
  });

  it('rejects an update whose numSamples x a_i overflows tau_eff, and the others still aggregate', () => {
    // The issue-12 poison: an echo of the global model with 1e9 samples x 1e308 steps, momentum 0.
    const acc = createAggregator({ type: 'fednova' }).createAccumulator!(makeContext(f32(1)));
    acc.add(makeUpdate('a', [0.4], { numSamples: 1, localSteps: 2 }));
    expect(() => acc.add(makeUpdate('evil', [1], { numSamples: 1e9, localSteps: 1e308, meta: { momentum: 0 } }))).toThrow(
      /fednova: update from client "evil" has numSamples x a_i = 1000000000 x 1e\+308, which overflows tau_eff; rejected/,
    );
    // One honest client: x = 1 - 2 * (1 - 0.4)/2 = 0.4 (its own model)
    expectClose(acc.finish().weights, [0.4]);
  });

  it('requires local steps', () => {
    const u = { clientId: 'nos', weights: f32(1), numSamples: 1 };
    expect(() => createAggregator({ type: 'fednova' }).aggregate(makeContext(f32(0)), [u])).toThrow(
      /fednova: update from client "nos" has localSteps undefined/,
    );
  });
});

describe('fedadam / fedyogi / fedadagrad (Reddi et al. 2021, Algorithm 2)', () => {
  const one = [makeUpdate('a', [2])]; // Delta = 2 - 1 = 1, m = 0.1 * 1 = 0.1, v0 = tau^2 = 1e-6

  it('fedadam: v = b2 v + (1-b2) Delta^2', () => {
    const agg = createAggregator({ type: 'fedadam' });
    // v = 0.99e-6 + 0.01 = 0.01000099; x = 1 + 0.1 * 0.1 / (sqrt(v) + 1e-3) = 1.0990050
    const r1 = agg.aggregate(makeContext(f32(1)), one);
    expectClose(r1.weights, [1.099005]);
    // round 2 with Delta = 1 again: m = 0.9*0.1 + 0.1 = 0.19; v = 0.99*0.01000099 + 0.01 = 0.0199009801
    // x = 1.099005 + 0.1 * 0.19 / (0.1410708 + 0.001) = 1.099005 + 0.1337364 = 1.2327414
    const r2 = agg.aggregate(makeContext(r1.weights), [makeUpdate('a', [r1.weights[0] + 1])]);
    expectClose(r2.weights, [1.2327414], 5);
    expect(agg.getState().step).toBe(2);
  });

  it('fedyogi: v = v - (1-b2) Delta^2 sign(v - Delta^2)', () => {
    // v = 1e-6 + 0.01 = 0.010001; x = 1 + 0.01 * 0.1 / (sqrt(0.010001) + 1e-3) = 1.0099005
    expectClose(createAggregator({ type: 'fedyogi' }).aggregate(makeContext(f32(1)), one).weights, [1.0099005]);
  });

  it('fedadagrad: v = v + Delta^2', () => {
    // v = 1e-6 + 1; x = 1 + 0.1 * 0.1 / (1.0000005 + 1e-3) = 1.00999
    expectClose(createAggregator({ type: 'fedadagrad' }).aggregate(makeContext(f32(1)), one).weights, [1.00999]);
  });

  it('accepts lr as an alias of server_lr and rejects a conflict', () => {
    // same as fedadam above with eta = 0.2: step doubles to 0.1980101
    expectClose(createAggregator({ type: 'fedadam', args: { lr: 0.2 } }).aggregate(makeContext(f32(1)), one).weights, [1.1980101]);
    expect(() => createAggregator({ type: 'fedadam', args: { lr: 0.2, server_lr: 0.3 } })).toThrow(/fedadam: args.lr .* disagree/);
  });
});

describe('median', () => {
  it('takes the coordinate-wise median for odd and even n', () => {
    const agg = createAggregator({ type: 'median' });
    const ctx = makeContext(f32(0, 0, 0));
    const three = [makeUpdate('a', [1, 5, 3]), makeUpdate('b', [2, -1, 7]), makeUpdate('c', [10, 0, 3])];
    // sorted columns: [1,2,10] [-1,0,5] [3,3,7]
    expectClose(agg.aggregate(ctx, three).weights, [2, 0, 3]);
    // with [4,4,4]: [1,2,4,10] -> 3, [-1,0,4,5] -> 2, [3,3,4,7] -> 3.5
    expectClose(agg.aggregate(ctx, [...three, makeUpdate('d', [4, 4, 4])]).weights, [3, 2, 3.5]);
  });

  it('is exact over many updates (quickselect path)', () => {
    const values = Array.from({ length: 41 }, (_, k) => (k * 17) % 41); // a permutation of 0..40
    const updates = values.map((v, k) => makeUpdate(`c${k}`, [v, -v]));
    expectClose(createAggregator({ type: 'median' }).aggregate(makeContext(f32(0, 0)), updates).weights, [20, -20]);
  });
});

describe('trimmed_mean', () => {
  it('drops floor(beta n) values from each end', () => {
    const agg = createAggregator({ type: 'trimmed_mean', args: { beta: 0.2 } });
    // n=5, k=1: [1,2,3,4,100] -> mean(2,3,4) = 3; [-50,0,1,2,3] -> mean(0,1,2) = 1
    const updates = [[100, 0], [2, 3], [1, -50], [4, 1], [3, 2]].map((w, k) => makeUpdate(`c${k}`, w));
    const res = agg.aggregate(makeContext(f32(0, 0)), updates);
    expectClose(res.weights, [3, 1]);
    expect(res.metrics!.trimmed_per_side).toBe(1);
  });

  it('says when n is too small for beta', () => {
    const agg = createAggregator({ type: 'trimmed_mean' });
    const updates = [1, 2, 3, 4, 5].map((v, k) => makeUpdate(`c${k}`, [v]));
    expect(() => agg.aggregate(makeContext(f32(0)), updates)).toThrow(/trimmed_mean: beta=0.1 with 5 updates .* needs at least 10 updates/);
  });
});

describe('krum', () => {
  // 1-D points 0, 0.1, 0.3, 0.35, 10 with f=1: each score sums the n-f-2 = 2 nearest squared distances
  // 0: .01+.09=.1   0.1: .01+.04=.05   0.3: .0025+.04=.0425   0.35: .0025+.0625=.065   10: 93.12+94.09
  const points = [0, 0.1, 0.3, 0.35, 10].map((v, k) => makeUpdate(`c${k}`, [v]));

  it('picks the update with the lowest score (Blanchard et al. 2017)', () => {
    const res = createAggregator({ type: 'krum' }).aggregate(makeContext(f32(0)), points);
    expectClose(res.weights, [0.3]);
    expect(res.metrics!.krum_best_score).toBeCloseTo(0.0425, 6);
  });

  it('averages the m best for multi-krum', () => {
    // best two: 0.3 (0.0425) and 0.1 (0.05) -> 0.2
    expectClose(createAggregator({ type: 'krum', args: { m: 2 } }).aggregate(makeContext(f32(0)), points).weights, [0.2]);
  });

  it('says when n is too small for f or m too large', () => {
    expect(() => createAggregator({ type: 'krum' }).aggregate(makeContext(f32(0)), points.slice(0, 4))).toThrow(
      /krum: got 4 updates, needs at least 5 \(Krum with f=1 needs n > 2f \+ 2\)/,
    );
    expect(() => createAggregator({ type: 'krum', args: { m: 5 } }).aggregate(makeContext(f32(0)), points)).toThrow(
      /krum: m=5 exceeds n - f = 4/,
    );
  });
});
