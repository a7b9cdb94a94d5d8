import { describe, expect, it } from 'vitest';
import { LearnerAlgorithms } from '../src/learner-algorithms/learner-algorithms.js';
import {
  createLearnerAlgorithm,
  learnerCapabilities,
  listLearnerAlgorithms,
  registerLearnerAlgorithm,
} from '../src/learner-algorithms/registry.js';
import type { LearnerAlgorithmDefinition } from '../src/learner-algorithms/types.js';
import { DEFAULT_LEARNER_CAPABILITIES } from '../src/protocol.js';
import { runSerial } from '../src/runner.js';
import { syntheticTrainerConfig } from './helpers.js';

const layout = [
  { name: 'w', shape: [2], offset: 0, size: 2, trainable: true, isNormalization: false },
  { name: 'bn', shape: [1], offset: 2, size: 1, trainable: true, isNormalization: true },
];
const settings = { epochs: 1, batchSize: 2, lr: 0.5, optimizer: 'sgd' as const, momentum: 0, weightDecay: 0 };
const result = { loss: 0, accuracy: 0, numSamples: 1, steps: 2, seconds: 0, samplesPerSecond: 0 };

function round(global: number[], tensors: Record<string, Float32Array> = {}) {
  return { round: 1, global: Float32Array.from(global), layout, tensors, settings };
}

describe('learner algorithm registry', () => {
  it('has the built-ins, and a learner announces the instruction keys they own', () => {
    new LearnerAlgorithms();
    expect(listLearnerAlgorithms()).toEqual(expect.arrayContaining(['default', 'fedbn', 'feddyn', 'fednova', 'fedprox', 'scaffold']));
    expect([...DEFAULT_LEARNER_CAPABILITIES].sort()).toEqual(['dp_sgd', 'feddistill', 'feddyn', 'fedproto', 'keep_local', 'local_dp', 'proximal_mu', 'report_steps', 'scaffold']);
    expect(learnerCapabilities()).toEqual(expect.arrayContaining([...DEFAULT_LEARNER_CAPABILITIES]));
  });

  it('names unknown types and prefixes bad args with the type, like aggregators', () => {
    new LearnerAlgorithms();
    expect(() => createLearnerAlgorithm({ type: 'nope' })).toThrow(/unknown learner_algorithm type "nope"; registered types: .*fedprox/);
    expect(() => createLearnerAlgorithm({ type: 'fedprox', args: { mu: -1 } })).toThrow('learner algorithm "fedprox": args.mu must be >= 0, got -1');
    expect(() => new LearnerAlgorithms({ type: 'default', args: { mu: 1 } })).toThrow('learner algorithm "default": args.mu is not a known argument (allowed: none)');
  });

  it('re-registering the same definition is a no-op; another one under the name, or a taken instruction key, is refused', () => {
    const mine: LearnerAlgorithmDefinition = { type: 'h10_probe', instructions: { h10_probe: { type: 'boolean' } }, create: () => ({ type: 'h10_probe' }) };
    registerLearnerAlgorithm(mine);
    registerLearnerAlgorithm(mine);
    expect(() => registerLearnerAlgorithm({ ...mine })).toThrow('learner_algorithm type "h10_probe" is already registered');
    expect(() => registerLearnerAlgorithm({ type: 'h10_thief', instructions: { scaffold: {} }, create: () => ({ type: 'h10_thief' }) })).toThrow(
      'instruction "scaffold" of "h10_thief" is already owned by learner algorithm "scaffold"',
    );
    expect(learnerCapabilities()).toContain('h10_probe');
  });
});

describe('one learner\'s algorithms', () => {
  it('switches an algorithm on by its instruction and checks the value against its schema', () => {
    const algorithms = new LearnerAlgorithms({ type: 'default' });
    expect(algorithms.forRound({}).map((a) => a.algorithm.type)).toEqual(['default']);
    expect(algorithms.forRound({ proximal_mu: 0, scaffold: false }).map((a) => a.algorithm.type)).toEqual(['default']);
    const active = algorithms.forRound({ proximal_mu: 0.1 });
    expect(active.map((a) => a.algorithm.type)).toEqual(['default', 'fedprox']);
    const adjustments = algorithms.beforeTraining(active, round([1, 2, 3]));
    expect(adjustments.proximalMu).toBe(0.1);
    expect([...adjustments.proximalCenter!]).toEqual([1, 2, 3]);
    expect(() => algorithms.forRound({ proximal_mu: 'lots' })).toThrow('learner algorithm "fedprox": instructions.proximal_mu must be a finite number, got string "lots"');
    expect(() => algorithms.forRound({ warp_drive: true })).toThrow(/instruction "warp_drive" belongs to no learner algorithm here \(this learner knows: .*proximal_mu/);
  });

  it('config selects an algorithm without instructions (fedprox with plain averaging)', () => {
    const algorithms = new LearnerAlgorithms({ type: 'fedprox', args: { mu: 0.25 } });
    const active = algorithms.forRound({});
    expect(algorithms.beforeTraining(active, round([0, 0, 0])).proximalMu).toBe(0.25);
    // the trainer's instruction wins over the learner's own default
    expect(algorithms.beforeTraining(algorithms.forRound({ proximal_mu: 0.5 }), round([0, 0, 0])).proximalMu).toBe(0.5);
  });

  it('scaffold corrects by c - c_i and returns the control delta of option II', () => {
    const algorithms = new LearnerAlgorithms();
    const active = algorithms.forRound({ scaffold: true });
    const ctx = round([1, 1, 1], { server_control: Float32Array.from([0.5, 0, -0.5]) });
    expect([...algorithms.beforeTraining(active, ctx).gradientCorrection!]).toEqual([0.5, 0, -0.5]);
    // c_i+ = c_i - c + (x - y) / (K lr) = 0 - c + (1 - 0) / (2 * 0.5)
    const { extras } = algorithms.afterTraining(active, { ...ctx, local: Float32Array.from([0, 0, 0]), result });
    expect([...extras.control_delta!]).toEqual([0.5, 1, 1.5]);
    expect(() => algorithms.beforeTraining(active, round([1, 1, 1]))).toThrow('scaffold round without a server_control tensor');
  });

  it('fedbn keeps normalization tensors local: put back before training and evaluating', () => {
    const algorithms = new LearnerAlgorithms();
    const active = algorithms.forRound({ keep_local: 'normalization' });
    expect([...algorithms.startWeights(Float32Array.from([1, 2, 3]), layout, active)]).toEqual([1, 2, 3]);
    algorithms.afterTraining(active, { ...round([1, 2, 3]), local: Float32Array.from([7, 8, 9]), result });
    expect([...algorithms.startWeights(Float32Array.from([1, 2, 3]), layout, active)]).toEqual([1, 2, 9]);
    expect([...algorithms.evaluationWeights(Float32Array.from([4, 5, 6]), layout)]).toEqual([4, 5, 9]);
    // a round without the instruction trains from the plain global model
    expect([...algorithms.startWeights(Float32Array.from([1, 2, 3]), layout, algorithms.forRound({}))]).toEqual([1, 2, 3]);
    expect(() => algorithms.forRound({ keep_local: 'everything' })).toThrow('instructions.keep_local must be one of "normalization"');
  });
});

describe('selecting a learner algorithm by config (serial mode: the trainer config carries it for every learner)', () => {
  const trainer = { args: { max_rounds: 2, min_clients: 3, local_epochs: 1, registration_timeout: 20, round_timeout: 60 } };
  const learnerArgs = { batch_size: 32, lr: 0.05, momentum: 0.5, device: 'cpu' };

  it('learner.type fedprox with plain averaging trains exactly like the fedprox aggregator asking for it', async () => {
    const byConfig = await runSerial(
      syntheticTrainerConfig({ trainer, learner: { type: 'fedprox', args: { ...learnerArgs, mu: 0.5 } }, aggregator: { type: 'fedavg' } }),
      { numClients: 3 },
    );
    const byAggregator = await runSerial(
      syntheticTrainerConfig({ trainer, aggregator: { type: 'fedprox', args: { mu: 0.5 } } }),
      { numClients: 3 },
    );
    const plain = await runSerial(syntheticTrainerConfig({ trainer }), { numClients: 3 });
    expect(byConfig.rounds.every((r) => r.participants === 3)).toBe(true);
    expect(byConfig.weights).toEqual(byAggregator.weights);
    expect(byConfig.weights).not.toEqual(plain.weights);
  });

  it('an unknown learner.type or a bad algorithm arg stops the run, naming it', async () => {
    await expect(runSerial(syntheticTrainerConfig({ trainer, learner: { type: 'fedwarp', args: learnerArgs } }), { numClients: 3 })).rejects.toThrow(
      /unknown learner_algorithm type "fedwarp"/,
    );
    await expect(
      runSerial(syntheticTrainerConfig({ trainer, learner: { type: 'fedprox', args: { ...learnerArgs, mu: -2 } } }), { numClients: 3 }),
    ).rejects.toThrow('learner algorithm "fedprox": args.mu must be >= 0, got -2');
    // learner.args is open to the algorithm's args, but a typo still gets a did-you-mean
    await expect(runSerial(syntheticTrainerConfig({ trainer, learner: { args: { ...learnerArgs, bach_size: 16 } } }), { numClients: 3 })).rejects.toThrow(
      'learner.args.bach_size is neither a local training setting nor an arg of learner algorithm "default"; did you mean "batch_size"?',
    );
    await expect(
      runSerial(syntheticTrainerConfig({ trainer, learner: { type: 'fedprox', args: { ...learnerArgs, muu: 0.1 } } }), { numClients: 3 }),
    ).rejects.toThrow('learner.args.muu is neither a local training setting nor an arg of learner algorithm "fedprox"; did you mean "mu"?');
  });
});
