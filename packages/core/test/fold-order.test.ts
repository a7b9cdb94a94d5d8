/**
 * Serial mode's learner pool is bit-identical to the sequential run only because the trainer folds
 * updates in learner-id order, not in arrival order (float sums depend on their order). Here the
 * learners reply in the reverse of their id order on purpose, so the two modes are told apart.
 */
import type { Accumulator, Aggregator, AggregatorState, ClientUpdate, RoundContext } from '@oiafed/aggregators';
import { createModel, registerBuiltinModels, selectBackend } from '@oiafed/models';
import { MemoryHub, MemoryTransport } from '@oiafed/transport';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Trainer } from '../src/trainer.js';
import { echoLearner } from './echo-learner.js';

const modelSpec = { type: 'mlp', args: { hidden: [4], seed: 3 } };
const learnerIds = ['learner_0', 'learner_1', 'learner_2'];
const cleanups: Array<() => Promise<void>> = [];

beforeAll(async () => {
  registerBuiltinModels();
  await selectBackend('cpu');
});

afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

/** An echoing learner replying after `delayMs`, stopped after the test. */
function delayedLearner(hub: MemoryHub, nodeId: string, delayMs: number): MemoryTransport {
  const transport = echoLearner(hub, nodeId, { delayMs });
  cleanups.push(() => transport.stop());
  return transport;
}

/** A streaming rule that records the order in which the trainer folds updates into it. */
class OrderRecorder implements Aggregator {
  readonly type = 'order_recorder';
  readonly folds: string[][] = [];
  configureRound() {
    return { instructions: {} };
  }
  aggregate(ctx: RoundContext, updates: readonly ClientUpdate[]) {
    this.folds.push(updates.map((u) => u.clientId));
    return { weights: ctx.global.slice() };
  }
  createAccumulator(ctx: RoundContext): Accumulator {
    const order: string[] = [];
    this.folds.push(order);
    return { add: (u) => void order.push(u.clientId), finish: () => ({ weights: ctx.global.slice() }) };
  }
  getState(): AggregatorState {
    return {};
  }
  setState(_state: AggregatorState) {}
}

async function foldOrders(foldInLearnerOrder: boolean): Promise<string[][]> {
  const hub = new MemoryHub();
  const transport = new MemoryTransport({ hub, nodeId: 'trainer', role: 'trainer' });
  await transport.start();
  const model = createModel(modelSpec, { inputShape: [8], numClasses: 2 });
  cleanups.push(async () => {
    await transport.stop();
    model.dispose();
  });
  const recorder = new OrderRecorder();
  const trainer = new Trainer({
    nodeId: 'trainer',
    transport,
    model,
    modelSpec,
    aggregator: recorder,
    settings: { maxRounds: 2, localEpochs: 1, clientFraction: 1, minClients: 3, evalEvery: 0, roundTimeoutS: 20, registrationTimeoutS: 10 },
    seed: 5,
    foldInLearnerOrder,
    logger: { debug() {}, info() {}, warn() {}, error() {} },
  });
  // Reply delays fall with the id: arrival order is learner_2, learner_1, learner_0.
  const learners = learnerIds.map((id, i) => delayedLearner(hub, id, 150 * (learnerIds.length - i)));
  await Promise.all(learners.map((l) => l.start()));
  await trainer.run();
  return recorder.folds;
}

describe('the order in which the trainer folds updates', () => {
  it('follows arrival by default and learner ids with foldInLearnerOrder, whatever the arrival order', async () => {
    expect(await foldOrders(false)).toEqual([
      ['learner_2', 'learner_1', 'learner_0'],
      ['learner_2', 'learner_1', 'learner_0'],
    ]);
    expect(await foldOrders(true)).toEqual([learnerIds, learnerIds]);
  });
});
