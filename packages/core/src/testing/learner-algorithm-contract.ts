/**
 * The contract every learner algorithm satisfies, for plugin authors to run from a vitest file:
 * `describeLearnerAlgorithmContract('my_algo', { args: { ... } })`. It drives the algorithm's
 * hooks through the same LearnerAlgorithms the Learner uses, on a small layout with a
 * normalization tensor, without a model or a network.
 */
import { makeLayout, seededRandom } from '@oiafed/aggregators/testing';
import { describe, expect, it } from 'vitest';
import { registerBuiltinLearnerAlgorithms } from '../learner-algorithms/builtins.js';
import { LearnerAlgorithms, type ActiveAlgorithm } from '../learner-algorithms/learner-algorithms.js';
import { findLearnerAlgorithm, instructionOwner } from '../learner-algorithms/registry.js';

/** What the contract needs to know to run one algorithm's round. */
export interface LearnerAlgorithmContractOptions {
  /** `learner.args` of the algorithm (default none). */
  args?: Record<string, unknown>;
  /** Instructions of a round that switches it on by its keys (default: none; config selects it). */
  instructions?: Record<string, unknown>;
  /** Vectors its trainer side sends each round, sized like `global` (e.g. SCAFFOLD's server_control). */
  tensors?: (global: Float32Array) => Record<string, Float32Array>;
  /**
   * What local training returns besides weights for the algorithm's step terms (`TrainResult.outputs`,
   * e.g. FedProto's `class_feature_sums` [2 x 3] and `class_counts` [2]). The layout's head is a
   * linear classifier: `head/kernel` [3, 2] and `head/bias` [2], marked isHead.
   */
  trainOutputs?: Record<string, Float32Array>;
}

const layout = makeLayout([['body/kernel', 12], ['bn/gamma', 3, true], ['head/kernel', 6], ['head/bias', 2]]).map((spec) =>
  spec.name.startsWith('head/') ? { ...spec, isHead: true, shape: spec.name === 'head/kernel' ? [3, 2] : spec.shape } : spec,
);
const size = layout.reduce((n, spec) => n + spec.size, 0);
const settings = { epochs: 1, batchSize: 8, lr: 0.1, optimizer: 'sgd' as const, momentum: 0, weightDecay: 0 };
const result = { loss: 1, accuracy: 0.5, numSamples: 16, steps: 4, seconds: 0.01, samplesPerSecond: 1600 };

function vector(seed: number): Float32Array {
  const random = seededRandom(seed);
  return Float32Array.from({ length: size }, () => random() * 2 - 1);
}

function expectSizedAndFinite(what: string, v: unknown): void {
  expect(v, `${what} is a Float32Array`).toBeInstanceOf(Float32Array);
  expect((v as Float32Array).length, `${what} has the model's length`).toBe(size);
  expect((v as Float32Array).every(Number.isFinite), `${what} is finite`).toBe(true);
}

/** Runs one round of hooks on a fresh learner's algorithms; returns what they produced. */
function oneRound(type: string, options: LearnerAlgorithmContractOptions, seed: number) {
  const algorithms = new LearnerAlgorithms({ type, args: options.args });
  const global = vector(seed);
  const tensors = options.tensors?.(global) ?? {};
  const ctx = { round: 1, global, layout, tensors, settings };
  const active: ActiveAlgorithm[] = algorithms.forRound(options.instructions ?? {});
  const start = algorithms.startWeights(global, layout, active);
  const adjustments = algorithms.beforeTraining(active, ctx);
  const local = vector(seed + 1);
  const added = algorithms.afterTraining(active, { ...ctx, local, result: { ...result, outputs: options.trainOutputs } });
  return { algorithms, active, global, tensors, start, adjustments, local, added };
}

export function describeLearnerAlgorithmContract(type: string, options: LearnerAlgorithmContractOptions = {}): void {
  describe(`learner algorithm contract: ${type}`, () => {
    registerBuiltinLearnerAlgorithms();
    it('is registered, builds from its args, and owns its instruction keys', () => {
      const definition = findLearnerAlgorithm(type);
      expect(definition, `"${type}" is registered (import the plugin first)`).toBeDefined();
      expect(new LearnerAlgorithms({ type, args: options.args }).forRound({})[0]!.algorithm.type).toBe(type);
      for (const [key, schema] of Object.entries(definition!.instructions ?? {})) {
        expect(instructionOwner(key)?.type).toBe(type);
        expect(JSON.parse(JSON.stringify(schema))).toEqual(schema);
      }
      if (options.instructions) {
        expect(new LearnerAlgorithms().forRound(options.instructions).map((a) => a.algorithm.type)).toContain(type);
      }
    });

    it('refuses an unknown arg when its schema is closed, prefixed with its type', () => {
      const schema = findLearnerAlgorithm(type)!.argsSchema;
      if (schema?.additionalProperties !== false) return;
      expect(() => new LearnerAlgorithms({ type, args: { ...options.args, no_such_arg_xyz: 1 } })).toThrow(
        `learner algorithm "${type}": args.no_such_arg_xyz is not a known argument`,
      );
    });

    it('returns well-formed adjustments and additions, and leaves its inputs alone', () => {
      const round = oneRound(type, options, 11);
      expect(round.global).toEqual(vector(11));
      expect(round.local).toEqual(vector(12));
      for (const [name, v] of Object.entries(round.tensors)) expect(v).toEqual(options.tensors!(vector(11))[name]);
      expect(round.start).toEqual(round.global);
      const { proximalMu, proximalCenter, gradientCorrection } = round.adjustments;
      if (proximalMu !== undefined) expect(Number.isFinite(proximalMu) && proximalMu >= 0).toBe(true);
      if (proximalCenter !== undefined) expectSizedAndFinite('proximalCenter', proximalCenter);
      if (gradientCorrection !== undefined) expectSizedAndFinite('gradientCorrection', gradientCorrection);
      for (const [name, v] of Object.entries(round.added.extras)) expectSizedAndFinite(`extras.${name}`, v);
      for (const [name, v] of Object.entries(round.added.meta)) {
        expect(['number', 'string', 'boolean'], `meta.${name}`).toContain(typeof v);
      }
    });

    it('runs its own local training (if it does) through the learner: model-sized requests, known frozen tensors', async () => {
      const algorithms = new LearnerAlgorithms({ type, args: options.args });
      const active = algorithms.forRound(options.instructions ?? {});
      const global = vector(51);
      const ctx = { round: 1, global, layout, tensors: options.tensors?.(global) ?? {}, settings };
      const start = algorithms.startWeights(global, layout, active);
      let runs = 0;
      const run = await algorithms.localTraining(active, { ...ctx, start }, async (request) => {
        runs += 1;
        expectSizedAndFinite('a run\'s start', request.start);
        for (const name of request.frozen ?? []) expect(layout.map((spec) => spec.name), 'frozen tensor').toContain(name);
        if (request.epochs !== undefined) expect(Number.isInteger(request.epochs) && request.epochs >= 0).toBe(true);
        return { weights: vector(51 + runs), result: { ...result, outputs: options.trainOutputs } };
      });
      expect(runs).toBeGreaterThanOrEqual(1);
      expectSizedAndFinite('the weights to send', run.weights);
      expect(global).toEqual(vector(51));
    });

    it('is deterministic, and two learners do not share state', () => {
      const a = oneRound(type, options, 21);
      const b = oneRound(type, options, 21);
      expect(b.adjustments).toEqual(a.adjustments);
      expect(b.added).toEqual(a.added);
    });

    it('personalizes only through keepsLocal: kept tensors come back from local training, the rest from the global model', () => {
      const round = oneRound(type, options, 31);
      const next = vector(41);
      const active = round.algorithms.forRound(options.instructions ?? {});
      const start = round.algorithms.startWeights(next, layout, active);
      const evaluation = round.algorithms.evaluationWeights(next, layout);
      const keeps = (spec: (typeof layout)[number]) => active.some((a) => a.algorithm.keepsLocal?.(spec, layout) ?? false);
      for (const spec of layout) {
        const from = keeps(spec) ? round.local : next;
        const slice = (v: Float32Array) => [...v.subarray(spec.offset, spec.offset + spec.size)];
        expect(slice(start), `start weights of ${spec.name}`).toEqual(slice(from));
        expect(slice(evaluation), `evaluation weights of ${spec.name}`).toEqual(slice(from));
      }
    });
  });
}
