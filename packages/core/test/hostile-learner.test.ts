import {
  createAggregator,
  registerAggregator,
  registerBuiltins,
  type Aggregator,
  type AggregatorState,
  type ClientUpdate,
  type RoundContext,
} from '@oiafed/aggregators';
import { createModel, registerBuiltinModels, selectBackend } from '@oiafed/models';
import { loadPartition } from '@oiafed/datasets';
import { MemoryHub, MemoryTransport, type Payload } from '@oiafed/transport';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Learner } from '../src/learner.js';
import { DEFAULT_LEARNER_CAPABILITIES, LearnerMethods, RegistrationKeys } from '../src/protocol.js';
import { weightsToTensors } from '../src/serde.js';
import { Trainer, type TrainerSettings } from '../src/trainer.js';

const settings: TrainerSettings = {
  maxRounds: 2,
  localEpochs: 1,
  clientFraction: 1,
  minClients: 2,
  evalEvery: 1,
  roundTimeoutS: 20,
  registrationTimeoutS: 10,
};

const modelSpec = { type: 'mlp', args: { hidden: [16], seed: 3 } };
const capabilities = { [RegistrationKeys.capabilities]: DEFAULT_LEARNER_CAPABILITIES.join(',') };
const cleanups: Array<() => Promise<void>> = [];

beforeAll(async () => {
  registerBuiltins();
  registerBuiltinModels();
  await selectBackend('cpu');
});

afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

async function honestLearner(hub: MemoryHub, index: number) {
  const data = await loadPartition(
    { type: 'synthetic', args: { samples_per_client: 100 }, partition: { num_partitions: 4, partition_id: index } },
    { seed: 1 },
  );
  const transport = new MemoryTransport({ hub, nodeId: `learner_${index}`, role: 'learner', connectTo: ['trainer'], metadata: capabilities });
  const model = createModel(modelSpec, { inputShape: [...data.train!.sampleShape], numClasses: data.train!.numClasses });
  new Learner({
    nodeId: `learner_${index}`,
    transport,
    model,
    trainData: data.train!,
    settings: { batchSize: 32, lr: 0.05, optimizer: 'sgd', momentum: 0, weightDecay: 0 },
    seed: index,
  });
  cleanups.push(async () => {
    await transport.stop();
    model.dispose();
  });
  return transport;
}

async function startTrainer(hub: MemoryHub, aggregatorType = 'fedavg') {
  const transport = new MemoryTransport({ hub, nodeId: 'trainer', role: 'trainer' });
  const model = createModel(modelSpec, { inputShape: [60], numClasses: 10 });
  await transport.start();
  const warnings: string[] = [];
  const trainer = new Trainer({
    nodeId: 'trainer',
    transport,
    model,
    modelSpec,
    aggregator: createAggregator({ type: aggregatorType }),
    settings,
    seed: 5,
    logger: { debug() {}, info() {}, warn: (m) => warnings.push(m), error: (m) => warnings.push(m) },
  });
  cleanups.push(async () => {
    await transport.stop();
    model.dispose();
  });
  return { trainer, warnings, model };
}

describe('a trainer facing a learner that sends garbage', () => {
  it.each<[string, (request: Payload) => Payload]>([
    ['NaN weights', (request) => garbageWeights(request, NaN)],
    ['wrong shapes', (request) => ({ body: okBody(request), tensors: request.tensors!.map((t) => ({ ...t, shape: [t.data.length + 1] })) })],
    ['a negative sample count', (request) => ({ body: { ...okBody(request), num_samples: -5 }, tensors: request.tensors })],
    ['no tensors at all', (request) => ({ body: okBody(request) })],
    ['a string body', () => ({ body: 'hello' })],
    ['a handler that throws', () => { throw new Error('boom'); }],
  ])('rejects %s, logs why, and still aggregates the honest updates', async (_, reply) => {
    const hub = new MemoryHub();
    const { trainer, warnings } = await startTrainer(hub);
    const honest = await Promise.all([0, 1].map((i) => honestLearner(hub, i)));
    const evil = new MemoryTransport({ hub, nodeId: 'evil', role: 'learner', connectTo: ['trainer'], metadata: capabilities });
    evil.handle(LearnerMethods.train, (payload) => reply(payload));
    evil.handle(LearnerMethods.evaluate, () => ({ body: { round: 0, num_samples: 10, loss: 1, accuracy: 0.1 } }));
    cleanups.push(() => evil.stop());
    await Promise.all([...honest, evil].map((t) => t.start()));

    const before = trainer.globalWeights();
    const summary = await trainer.run();
    expect(summary.rounds.map((r) => r.participants)).toEqual([2, 2]);
    expect(summary.rounds.every((r) => r.failed.length === 1 && r.failed[0]!.learner === 'evil')).toBe(true);
    expect(warnings.some((w) => w.includes('no usable update from evil'))).toBe(true);
    expect(summary.weights.every(Number.isFinite)).toBe(true);
    expect(summary.weights).not.toEqual(before);
  });

  it('keeps the global model when fewer than min_clients updates are usable', async () => {
    const hub = new MemoryHub();
    const { trainer, warnings } = await startTrainer(hub);
    const honest = await honestLearner(hub, 0);
    const evil = new MemoryTransport({ hub, nodeId: 'evil', role: 'learner', connectTo: ['trainer'], metadata: capabilities });
    evil.handle(LearnerMethods.train, (payload) => garbageWeights(payload, Infinity));
    evil.handle(LearnerMethods.evaluate, () => ({ body: { round: 0, num_samples: 10, loss: 1, accuracy: 0.1 } }));
    cleanups.push(() => evil.stop());
    await Promise.all([honest.start(), evil.start()]);
    const before = trainer.globalWeights();
    const summary = await trainer.run();
    expect(summary.rounds.every((r) => !r.aggregated)).toBe(true);
    expect(summary.weights).toEqual(before);
    expect(warnings.some((w) => w.includes('fewer than min_clients=2; global model unchanged'))).toBe(true);
  });

  it('refuses a learner that cannot serve the algorithm (logged once, told to stop) and trains with the others', async () => {
    const hub = new MemoryHub();
    const { trainer, warnings } = await startTrainer(hub, 'scaffold');
    const honest = await Promise.all([0, 1].map((i) => honestLearner(hub, i)));
    const limited = new MemoryTransport({
      hub,
      nodeId: 'plain',
      role: 'learner',
      connectTo: ['trainer'],
      metadata: { [RegistrationKeys.capabilities]: 'proximal_mu', [RegistrationKeys.learnerType]: 'custom' },
    });
    const shutdowns: string[] = [];
    let trainCalls = 0;
    limited.handle(LearnerMethods.shutdown, (payload) => {
      shutdowns.push((payload.body as { reason: string }).reason);
      return { body: {} };
    });
    limited.handle(LearnerMethods.train, () => {
      trainCalls++;
      return { body: {} };
    });
    cleanups.push(() => limited.stop());
    await limited.start();
    await Promise.all(honest.map((t) => t.start()));
    const summary = await trainer.run();
    expect(summary.stoppedBy).toBe('max_rounds');
    expect(summary.rounds.map((r) => [r.selected, r.participants, r.failed.length])).toEqual([[2, 2, 0], [2, 2, 0]]);
    expect(trainCalls).toBe(0);
    const refusals = warnings.filter((w) => w.startsWith('refusing learner plain'));
    expect(refusals).toHaveLength(1);
    expect(refusals[0]).toMatch(/aggregator "scaffold" needs learner support for scaffold, but learner "plain" \(type custom\) offers only \[proximal_mu\]/);
    expect(shutdowns).toHaveLength(1);
    expect(trainer.learners().map((p) => p.nodeId).sort()).toEqual(['learner_0', 'learner_1']);
  });

  it('keeps the previous model and state when the aggregate is not finite, and counts the round as failed', async () => {
    registerAggregator('nan_once', () => new NanOnce(), { type: 'object', additionalProperties: false, properties: {} });
    const hub = new MemoryHub();
    const { trainer, warnings } = await startTrainer(hub, 'nan_once');
    await Promise.all((await Promise.all([0, 1].map((i) => honestLearner(hub, i)))).map((t) => t.start()));
    const before = trainer.globalWeights();
    const summary = await trainer.run();
    const [first, second] = summary.rounds;
    expect(first).toMatchObject({ aggregated: false, participants: 2, aggregation_error: 'aggregate is not finite (value NaN at index 0)' });
    expect(second).toMatchObject({ aggregated: true });
    expect(second!.aggregation_error).toBeUndefined();
    expect(warnings).toContain('round 1: aggregate is not finite (value NaN at index 0); the global model stays at round 0');
    expect(summary.weights.every(Number.isFinite)).toBe(true);
    expect(summary.weights).not.toEqual(before);
  });

  it('FedNova: an echo with local_steps 1e308 and num_samples 1e9 is rejected; the model stays finite', async () => {
    const hub = new MemoryHub();
    const { trainer, warnings } = await startTrainer(hub, 'fednova');
    const honest = await Promise.all([0, 1].map((i) => honestLearner(hub, i)));
    const evil = new MemoryTransport({ hub, nodeId: 'evil', role: 'learner', connectTo: ['trainer'], metadata: { ...capabilities, [RegistrationKeys.numSamples]: '100' } });
    evil.handle(LearnerMethods.train, (request) => ({
      body: { ...okBody(request), num_samples: 1e9, local_steps: 1e308, meta: { momentum: 0 } },
      tensors: request.tensors!.filter((t) => t.name.startsWith('weights/')),
    }));
    cleanups.push(() => evil.stop());
    await Promise.all([...honest, evil].map((t) => t.start()));
    const summary = await trainer.run();
    expect(summary.rounds.map((r) => [r.participants, r.aggregated])).toEqual([[2, true], [2, true]]);
    expect(summary.rounds[0]!.failed[0]!.reason).toMatch(/num_samples must be an integer in 1..100 \(the count it announced\), got 1000000000/);
    expect(warnings.some((w) => w.includes('no usable update from evil'))).toBe(true);
    expect(summary.weights.every(Number.isFinite)).toBe(true);
  });
});

/** A rule whose first aggregate is NaN (what an overflow inside a rule produces), then a plain mean. */
class NanOnce implements Aggregator {
  readonly type = 'nan_once';
  private rounds = 0;
  configureRound() {
    return { instructions: {} };
  }
  aggregate(ctx: RoundContext, updates: readonly ClientUpdate[]) {
    this.rounds++;
    const out = new Float32Array(ctx.global.length);
    if (this.rounds === 1) return { weights: out.fill(NaN) };
    for (const u of updates) for (let i = 0; i < out.length; i++) out[i] += u.weights[i]! / updates.length;
    return { weights: out };
  }
  // The call count is not rule state: the trainer restores state after a failed round.
  getState(): AggregatorState {
    return {};
  }
  setState(_state: AggregatorState) {}
}

function okBody(request: Payload) {
  return {
    round: (request.body as { round: number }).round,
    num_samples: 100,
    local_steps: 4,
    metrics: { loss: 1, accuracy: 0.5, seconds: 0.1, samples_per_second: 1000 },
    meta: {},
  };
}

function garbageWeights(request: Payload, value: number): Payload {
  const tensors = request.tensors!.filter((t) => t.name.startsWith('weights/'));
  const total = tensors.reduce((n, t) => n + t.data.length, 0);
  const flat = new Float32Array(total).fill(value);
  let offset = 0;
  const layout = tensors.map((t) => {
    const spec = { name: t.name.slice('weights/'.length), shape: t.shape, offset, size: t.data.length, trainable: true, isNormalization: false };
    offset += t.data.length;
    return spec;
  });
  return { body: okBody(request), tensors: weightsToTensors(flat, layout) };
}
