/**
 * The personalized-FL family (issue 15 §2): each method's defining update, one local round on a
 * tiny real model (MLP 3-4-3, head = fc2), against a float64 reference computed here from the
 * method's equation (gradients by central differences of the hand-written loss).
 */
import {
  createAggregator,
  FEDDISTILL_GLOBAL,
  FEDDISTILL_LOCAL,
  FEDPROTO_GLOBAL,
  FEDPROTO_LOCAL,
  packPrototypes,
  registerBuiltins,
  unpackPrototypes,
} from '@oiafed/aggregators';
import { createModel, registerBuiltinModels, selectBackend, type DataSource, type FedModel, type TrainOptions } from '@oiafed/models';
import { beforeAll, describe, expect, it } from 'vitest';
import { describeLearnerAlgorithmContract } from '@oiafed/core/testing';
import { componentProblems } from '../src/component-check.js';
import { LearnerAlgorithms } from '../src/learner-algorithms/learner-algorithms.js';
import type { LearnerAlgorithm, LocalRunRequest } from '../src/learner-algorithms/types.js';

const D = 3;
const H = 4;
const K = 3;
const LR = 0.5;
const O = D * H + H; // offset of fc2/kernel
const data: DataSource = {
  features: new Float32Array([0.5, -1, 2, 1.5, 0.3, -0.7, -1.2, 0.8, 0.1, 0.2, 0.9, -0.4, 1.1, -0.6, 0.7, -0.3, -0.2, 1.4]),
  labels: new Int32Array([0, 1, 2, 1, 0, 1]),
  sampleShape: [D],
  numClasses: K,
  length: 6,
};
const settings = { epochs: 1, batchSize: data.length, lr: LR, optimizer: 'sgd' as const, momentum: 0, weightDecay: 0 };
const base: TrainOptions = { ...settings, seed: 3 };

let model: FedModel;
beforeAll(async () => {
  await selectBackend('cpu');
  registerBuiltinModels();
  registerBuiltins();
  model = createModel({ type: 'mlp', args: { input_shape: [D], num_classes: K, hidden: [H] } });
});

function weights(seed: number): Float32Array {
  let s = seed >>> 0;
  return Float32Array.from({ length: D * H + H + H * K + K }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 4294967296 - 0.5;
  });
}

/** Float64 forward of the MLP: hidden features z (relu) and logits. */
function forward(w: ArrayLike<number>, i: number): { z: number[]; logits: number[] } {
  const x = data.features.subarray(i * D, (i + 1) * D);
  const z = Array.from({ length: H }, (_, j) => Math.max(0, w[D * H + j]! + [0, 1, 2].reduce((s, k) => s + x[k]! * w[k * H + j]!, 0)));
  const logits = Array.from({ length: K }, (_, c) => w[O + H * K + c]! + z.reduce((s, zj, j) => s + zj * w[O + j * K + c]!, 0));
  return { z, logits };
}
const logSoftmax = (v: number[]) => {
  const m = Math.max(...v);
  const lse = m + Math.log(v.reduce((s, x) => s + Math.exp(x - m), 0));
  return v.map((x) => x - lse);
};
const samples = [...Array(data.length).keys()];
const mean = (f: (i: number) => number) => samples.reduce((s, i) => s + f(i), 0) / data.length;
const ce = (w: ArrayLike<number>, shift: number[] = [0, 0, 0]) => mean((i) => -logSoftmax(forward(w, i).logits.map((l, c) => l + shift[c]!))[data.labels[i]!]!);
const isHead = (p: number) => p >= O;

/** One SGD step of `loss` from `w0` on the parameters `which` selects (central differences, float64). */
function step(w0: ArrayLike<number>, loss: (w: Float64Array) => number, which: (p: number) => boolean = () => true): Float64Array {
  const w = Float64Array.from(w0);
  const out = Float64Array.from(w0);
  for (let p = 0; p < w.length; p++) {
    if (!which(p)) continue;
    w[p] = w0[p]! + 1e-6;
    const up = loss(w);
    w[p] = w0[p]! - 1e-6;
    const down = loss(w);
    w[p] = w0[p]!;
    out[p] = w0[p]! - (LR * (up - down)) / 2e-6;
  }
  return out;
}

function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tol = 3e-5): void {
  expect(actual.length).toBe(expected.length);
  for (let i = 0; i < actual.length; i++) expect(Math.abs(actual[i]! - expected[i]!), `value ${i}`).toBeLessThan(tol);
}

/** Trains the test model as the Learner's runLocal does. */
async function train(request: LocalRunRequest) {
  const { start, epochs, ...adjustments } = request;
  model.setWeights(start);
  const result = await model.train(data, { ...base, ...adjustments, epochs: epochs ?? base.epochs });
  return { weights: model.getWeights(), result };
}

/** One learner round through LearnerAlgorithms, as the Learner runs it; returns what it sends and adds. */
async function round(algorithms: LearnerAlgorithms, global: Float32Array, n: number, plan: { instructions?: Record<string, unknown>; tensors?: Record<string, Float32Array> } = {}) {
  const active = algorithms.forRound(plan.instructions ?? {});
  const ctx = { round: n, global, layout: model.layout, tensors: plan.tensors ?? {}, settings };
  const start = algorithms.startWeights(global, model.layout, active);
  const adjustments = algorithms.beforeTraining(active, ctx);
  const run = await algorithms.localTraining(active, { ...ctx, start }, (request) => train({ ...adjustments, ...request }));
  const added = algorithms.afterTraining(active, { ...ctx, local: run.weights, result: run.result });
  return { sent: run.weights, added, algorithm: active[0]!.algorithm as LearnerAlgorithm & Record<string, unknown> };
}

/** The algorithm's personalized weights, fine-tuning through the test model when it asks to. */
async function personalized(algorithm: LearnerAlgorithm & Record<string, unknown>, global: Float32Array): Promise<Float32Array | undefined> {
  const hook = algorithm.personalizedWeights as ((ctx: object) => Float32Array | undefined | Promise<Float32Array | undefined>) | undefined;
  const ctx = {
    round: 1, global, weights: global, layout: model.layout, settings,
    train: async (start: Float32Array, options: Partial<TrainOptions> = {}) => (await train({ start, ...(options as object) })).weights,
  };
  return hook?.call(algorithm, ctx);
}

describe('FedRep (Collins et al. 2021, Algorithm 1)', () => {
  it('trains the head with the body fixed for head_epochs, then the body with the head fixed; keeps the head', async () => {
    const algorithms = new LearnerAlgorithms({ type: 'fedrep', args: { head_epochs: 2 } });
    const w0 = weights(1);
    const { sent } = await round(algorithms, w0, 1);
    const headed = step(step(w0, ce, isHead), ce, isHead);
    expectClose(sent, step(headed, ce, (p) => !isHead(p)));
    const next = weights(2);
    const start = algorithms.startWeights(next, model.layout, algorithms.forRound({}));
    expectClose(start, [...next.subarray(0, O), ...sent.subarray(O)]);
  });
});

describe('FedBABU (Oh et al. 2022)', () => {
  it('never updates the head in federated training, and fine-tunes the whole model before evaluating', async () => {
    const algorithms = new LearnerAlgorithms({ type: 'fedbabu', args: { finetune_epochs: 2 } });
    const w0 = weights(3);
    const { sent, algorithm } = await round(algorithms, w0, 1);
    expectClose(sent, step(w0, ce, (p) => !isHead(p)));
    expect([...sent.subarray(O)]).toEqual([...w0.subarray(O)]);
    expectClose((await personalized(algorithm, w0))!, step(step(w0, ce), ce));
  });
});

describe('Ditto (Li et al. 2021, Algorithm 1)', () => {
  it('sends the plain local model and keeps v_k <- v_k - eta (grad F_k(v_k) + lambda (v_k - w^t)) as its personalized model', async () => {
    const algorithms = new LearnerAlgorithms({ type: 'ditto', args: { lambda: 0.3 } });
    const w0 = weights(4);
    const first = await round(algorithms, w0, 1);
    expectClose(first.sent, step(w0, ce));
    const prox = (center: ArrayLike<number>) => (w: Float64Array) => ce(w) + 0.15 * w.reduce((s, v, p) => s + (v - center[p]!) ** 2, 0);
    const v1 = step(w0, prox(w0));
    expectClose((await personalized(first.algorithm, w0))!, v1);
    const w1 = weights(5);
    const second = await round(algorithms, w1, 2);
    expectClose(second.sent, step(w1, ce));
    expectClose((await personalized(second.algorithm, w1))!, step(v1, prox(w1)), 6e-5);
  });
});

describe('MOON (Li et al. 2021, eq. 3)', () => {
  it('adds mu * l_con with the global model as positive and the previous local model as negative', async () => {
    const algorithms = new LearnerAlgorithms({ type: 'moon', args: { mu: 2, temperature: 0.5 } });
    const w0 = weights(6);
    const first = await round(algorithms, w0, 1);
    expectClose(first.sent, step(w0, ce));
    const w1 = weights(7);
    const previous = first.sent.slice();
    const cos = (a: number[], b: number[]) => a.reduce((s, v, j) => s + v * b[j]!, 0) / Math.max(Math.hypot(...a) * Math.hypot(...b), 1e-8);
    const con = (w: Float64Array) =>
      2 * mean((i) => {
        const z = forward(w, i).z;
        return -logSoftmax([cos(z, forward(w1, i).z) / 0.5, cos(z, forward(previous, i).z) / 0.5])[0]!;
      });
    const second = await round(algorithms, w1, 2);
    expectClose(second.sent, step(w1, (w) => ce(w) + con(w)));
  });
});

describe('FedProto (Tan et al. 2022, eq. 6 and 8)', () => {
  it('sends class-mean features, the server averages them over the learners holding each class, and the regularizer pulls towards them', async () => {
    const a = new LearnerAlgorithms({ type: 'fedproto' });
    const w0 = weights(8);
    const first = await round(a, w0, 1, { instructions: { fedproto: 2 } });
    expectClose(first.sent, step(w0, ce));
    const local = unpackPrototypes(first.added.extras[FEDPROTO_LOCAL]!, K, H);
    expect([...local.counts]).toEqual([2, 3, 1]);
    const protoOf = (c: number) => [0, 1, 2, 3].map((j) => mean((i) => (data.labels[i] === c ? forward(w0, i).z[j]! : 0)) * data.length / local.counts[c]!);
    expectClose(local.prototypes, [0, 1, 2].flatMap(protoOf));
    expect(first.added.meta).toEqual({ proto_classes: K, proto_dim: H });

    // A second learner that only has class 0 and 2, with other prototypes.
    const other = packPrototypes(Float32Array.from({ length: K * H }, (_, i) => i / 10), new Float32Array([4, 0, 1]), w0.length);
    const aggregator = createAggregator({ type: 'fedproto', args: { lambda: 2 } });
    const ctx = { round: 1, global: w0, layout: model.layout, totalClients: 2, selectedClients: ['a', 'b'] };
    const meta = { proto_classes: K, proto_dim: H };
    const result = aggregator.aggregate(ctx, [
      { clientId: 'a', weights: first.sent, numSamples: 6, extras: first.added.extras, meta },
      { clientId: 'b', weights: first.sent, numSamples: 5, extras: { [FEDPROTO_LOCAL]: other }, meta },
    ]);
    expect([...result.weights]).toEqual([...w0]);
    const plan = aggregator.configureRound({ ...ctx, round: 2 });
    const global = unpackPrototypes(plan.tensors![FEDPROTO_GLOBAL]!, K, H);
    const expected = [0, 1, 2].flatMap((c) => [0, 1, 2, 3].map((j) => (c === 1 ? local.prototypes[c * H + j]! : (local.prototypes[c * H + j]! + other[c * H + j]!) / 2)));
    expectClose(global.prototypes, expected);

    const second = await round(a, w0, 2, plan);
    const reg = (w: Float64Array) => (2 / (data.length * H)) * samples.reduce((s, i) => s + forward(w, i).z.reduce((t, zj, j) => t + (zj - expected[data.labels[i]! * H + j]!) ** 2, 0), 0);
    expectClose(second.sent, step(first.sent, (w) => ce(w) + reg(w)));
  });
});

describe('FedDistill (Jeong et al. 2018, as PFLlib)', () => {
  it('sends class-mean logits, the server averages them per label, and the soft-target term pulls towards them', async () => {
    const a = new LearnerAlgorithms({ type: 'feddistill' });
    const w0 = weights(11);
    const first = await round(a, w0, 1, { instructions: { feddistill: 0.7 } });
    expectClose(first.sent, step(w0, ce));
    const local = unpackPrototypes(first.added.extras[FEDDISTILL_LOCAL]!, K, K);
    expect([...local.counts]).toEqual([2, 3, 1]);
    const meanLogits = (c: number) => [0, 1, 2].map((k) => mean((i) => (data.labels[i] === c ? forward(w0, i).logits[k]! : 0)) * data.length / local.counts[c]!);
    expectClose(local.prototypes, [0, 1, 2].flatMap(meanLogits));
    expect(first.added.meta).toEqual({ proto_classes: K, proto_dim: K });

    const other = packPrototypes(Float32Array.from({ length: K * K }, (_, i) => 1 - i / 4), new Float32Array([0, 2, 2]), w0.length);
    const aggregator = createAggregator({ type: 'feddistill', args: { lambda: 0.7 } });
    const ctx = { round: 1, global: w0, layout: model.layout, totalClients: 2, selectedClients: ['a', 'b'] };
    const meta = { proto_classes: K, proto_dim: K };
    aggregator.aggregate(ctx, [
      { clientId: 'a', weights: first.sent, numSamples: 6, extras: first.added.extras, meta },
      { clientId: 'b', weights: first.sent, numSamples: 4, extras: { [FEDDISTILL_LOCAL]: other }, meta },
    ]);
    const plan = aggregator.configureRound({ ...ctx, round: 2 });
    expect(plan.instructions).toEqual({ feddistill: 0.7 });
    const targets = [0, 1, 2].flatMap((c) => [0, 1, 2].map((k) => (c === 0 ? local.prototypes[k]! : (local.prototypes[c * K + k]! + other[c * K + k]!) / 2)));
    expectClose(unpackPrototypes(plan.tensors![FEDDISTILL_GLOBAL]!, K, K).prototypes, targets);

    const second = await round(a, w0, 2, plan);
    const soft = [0, 1, 2].map((c) => logSoftmax(targets.slice(c * K, c * K + K)).map(Math.exp));
    const reg = (w: Float64Array) => 0.7 * mean((i) => -logSoftmax(forward(w, i).logits).reduce((t, q, k) => t + soft[data.labels[i]!]![k]! * q, 0));
    expectClose(second.sent, step(first.sent, (w) => ce(w) + reg(w)));
  });
});

describe('FedRoD (Chen & Chao 2022)', () => {
  it('trains body and generic head by balanced softmax, and a personal linear head by ERM on the detached features', async () => {
    const algorithms = new LearnerAlgorithms({ type: 'fedrod' });
    const w0 = weights(9);
    const { sent, algorithm } = await round(algorithms, w0, 1);
    expectClose(sent, step(w0, (w) => ce(w, [Math.log(2), Math.log(3), Math.log(1)])));
    // P-head from zero: one step on mean CE(g(z) + h(z)) w.r.t. h, with z and g at w0 (detached).
    const grad = new Float64Array(H * K + K);
    for (const i of samples) {
      const { z, logits } = forward(w0, i);
      const p = logSoftmax(logits).map(Math.exp);
      for (let c = 0; c < K; c++) {
        const r = (p[c]! - (data.labels[i] === c ? 1 : 0)) / data.length;
        grad[H * K + c]! += r;
        z.forEach((zj, j) => (grad[j * K + c]! += zj * r));
      }
    }
    const next = weights(10);
    const expected = Float64Array.from(next);
    grad.forEach((g, q) => (expected[O + q]! -= LR * g));
    expectClose((await personalized(algorithm, next))!, expected);
  });
});

describe('oiafed validate', () => {
  it('names the learner section and the arg for a bad or unknown arg of each method', () => {
    const problems = (type: string, args: Record<string, unknown>, aggregator = 'fedavg') =>
      componentProblems({ aggregator: { type: aggregator, args: {} }, learner: { type, args: { batch_size: 32, ...args } } } as never);
    expect(problems('fedrep', { head_epochs: 0 })).toEqual([{ path: 'learner', message: 'learner algorithm "fedrep": args.head_epochs must be >= 1, got 0' }]);
    expect(problems('fedbabu', { finetune_part: 'body' })[0]!.message).toMatch(/^learner algorithm "fedbabu": args.finetune_part must be one of/);
    expect(problems('ditto', { lambda: -1 })[0]!.message).toBe('learner algorithm "ditto": args.lambda must be >= 0, got -1');
    expect(problems('moon', { temperature: 0 })[0]!.message).toMatch(/^learner algorithm "moon": args.temperature must be > 0/);
    expect(problems('fedproto', { lambda: 0 }, 'fedproto')[0]!.message).toMatch(/^learner algorithm "fedproto": args.lambda must be > 0/);
    expect(problems('fedrod', { alpha: 1 })[0]!.message).toMatch(/^learner.args.alpha is neither a local training setting nor an arg of learner algorithm "fedrod"/);
    expect(problems('feddistill', { lambda: -2 }, 'feddistill')[0]!.message).toMatch(/^learner algorithm "feddistill": args.lambda must be > 0/);
    expect(problems('fedproto', {}, 'fedproto')).toEqual([]);
  });
});

describeLearnerAlgorithmContract('ditto', { args: { lambda: 0.5 } });
describeLearnerAlgorithmContract('fedrep', { args: { head_epochs: 2 } });
describeLearnerAlgorithmContract('fedbabu');
describeLearnerAlgorithmContract('moon');
describeLearnerAlgorithmContract('fedproto', {
  instructions: { fedproto: 1 },
  trainOutputs: { class_feature_sums: new Float32Array([1, 2, 3, 4, 5, 6]), class_counts: new Float32Array([2, 1]) },
});
describeLearnerAlgorithmContract('feddistill', {
  instructions: { feddistill: 1 },
  trainOutputs: { class_logit_sums: new Float32Array([1, 2, 3, 4]), class_counts: new Float32Array([2, 1]) },
});
describeLearnerAlgorithmContract('fedrod', { trainOutputs: { aux_head: new Float32Array(8).fill(0.1) } });
