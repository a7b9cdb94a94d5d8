/**
 * The aggregator as a strategy (Flower's configure_fit / aggregate_fit(failures)): it may choose
 * the round's learners and sees which selected learners failed and why. Scripted learners on the
 * memory transport echo the global weights, so each round is fast and its outcome known.
 */
import type { Accumulator, Aggregator, AggregatorState, ClientUpdate, RoundContext, RoundFailure } from '@oiafed/aggregators';
import { createModel, registerBuiltinModels, selectBackend } from '@oiafed/models';
import { MemoryHub, MemoryTransport } from '@oiafed/transport';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Trainer, type TrainerSettings } from '../src/trainer.js';
import { echoLearner } from './echo-learner.js';

const settings: TrainerSettings = {
  maxRounds: 2,
  localEpochs: 1,
  clientFraction: 0.5,
  minClients: 1,
  evalEvery: 0,
  roundTimeoutS: 20,
  registrationTimeoutS: 10,
};
const modelSpec = { type: 'mlp', args: { hidden: [4], seed: 3 } };
const cleanups: Array<() => Promise<void>> = [];

beforeAll(async () => {
  registerBuiltinModels();
  await selectBackend('cpu');
});

afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

/** An echoing learner that the test stops afterwards. */
function scriptedLearner(hub: MemoryHub, nodeId: string, fail?: string): MemoryTransport {
  const transport = echoLearner(hub, nodeId, { fail });
  cleanups.push(() => transport.stop());
  return transport;
}

interface Seen {
  selections: Array<{ round: number; available: string[]; defaultSelection: string[] }>;
  configured: number[];
  aggregated: Array<{ round: number; selected: string[]; updates: string[]; failures: RoundFailure[] }>;
}

/** Picks its own learners (always `flaky` first, then by `pick`) and records what it was shown. */
class Picky implements Aggregator {
  readonly type = 'picky';
  readonly seen: Seen = { selections: [], configured: [], aggregated: [] };
  constructor(
    private readonly pick: (round: number, available: readonly string[]) => string[],
    private readonly streaming: boolean,
  ) {
    // A class method cannot be deleted from an instance: shadow it, as a rule without the hook would lack it.
    if (!streaming) Object.assign(this, { createAccumulator: undefined });
  }
  selectLearners(round: number, available: readonly string[], defaultSelection: readonly string[]): string[] {
    this.seen.selections.push({ round, available: [...available], defaultSelection: [...defaultSelection] });
    return this.pick(round, available);
  }
  configureRound(ctx: RoundContext) {
    this.seen.configured.push(ctx.round);
    return { instructions: {} };
  }
  aggregate(ctx: RoundContext, updates: readonly ClientUpdate[], failures: readonly RoundFailure[] = []) {
    this.note(ctx, updates.map((u) => u.clientId), failures);
    return { weights: ctx.global.slice() };
  }
  createAccumulator(ctx: RoundContext): Accumulator {
    const ids: string[] = [];
    return {
      add: (u) => void ids.push(u.clientId),
      finish: (failures: readonly RoundFailure[] = []) => {
        this.note(ctx, ids, failures);
        return { weights: ctx.global.slice() };
      },
    };
  }
  getState(): AggregatorState {
    return {};
  }
  setState(_state: AggregatorState) {}
  private note(ctx: RoundContext, updates: string[], failures: readonly RoundFailure[]): void {
    this.seen.aggregated.push({ round: ctx.round, selected: [...ctx.selectedClients], updates: [...updates].sort(), failures: [...failures] });
  }
}

async function federate(aggregator: Aggregator) {
  const hub = new MemoryHub();
  const transport = new MemoryTransport({ hub, nodeId: 'trainer', role: 'trainer' });
  await transport.start();
  const model = createModel(modelSpec, { inputShape: [8], numClasses: 2 });
  cleanups.push(async () => {
    await transport.stop();
    model.dispose();
  });
  const warnings: string[] = [];
  const trainer = new Trainer({
    nodeId: 'trainer',
    transport,
    model,
    modelSpec,
    aggregator,
    settings: { ...settings, minAvailableClients: 4 },
    seed: 5,
    logger: { debug() {}, info() {}, warn: (m) => warnings.push(m), error: (m) => warnings.push(m) },
  });
  const learners = [
    scriptedLearner(hub, 'flaky', 'disk full'),
    ...['learner_0', 'learner_1', 'learner_2'].map((id) => scriptedLearner(hub, id)),
  ];
  await Promise.all(learners.map((l) => l.start()));
  return { summary: await trainer.run(), warnings };
}

const everyone = ['flaky', 'learner_0', 'learner_1', 'learner_2'];

describe('an aggregator that chooses learners and sees the failures', () => {
  it.each([false, true])('selects through selectLearners and gets the failures in aggregate (streaming: %s)', async (streaming) => {
    // Round 1: flaky and learner_2; round 2: flaky, learner_0 and learner_1 (more than client_fraction's 2).
    const picky = new Picky((round) => (round === 1 ? ['learner_2', 'flaky'] : ['flaky', 'learner_1', 'learner_0']), streaming);
    const { summary } = await federate(picky);

    expect(picky.seen.selections.map((s) => s.available)).toEqual([everyone, everyone]);
    // The default selection is today's seeded sampling: client_fraction 0.5 of 4 learners.
    expect(picky.seen.selections.every((s) => s.defaultSelection.length === 2 && s.defaultSelection.every((id) => everyone.includes(id)))).toBe(true);
    expect(picky.seen.configured).toEqual([1, 2]);
    expect(summary.rounds.map((r) => [r.selected, r.participants])).toEqual([[2, 1], [3, 2]]);
    expect(picky.seen.aggregated.map(({ round, selected, updates }) => ({ round, selected, updates }))).toEqual([
      { round: 1, selected: ['flaky', 'learner_2'], updates: ['learner_2'] },
      { round: 2, selected: ['flaky', 'learner_0', 'learner_1'], updates: ['learner_0', 'learner_1'] },
    ]);
    for (const { failures } of picky.seen.aggregated) {
      expect(failures).toHaveLength(1);
      expect(failures[0]!.learner).toBe('flaky');
      expect(failures[0]!.reason).toMatch(/disk full/);
    }
  });

  it('drops learners it names that are not available, and logs them', async () => {
    const picky = new Picky(() => ['ghost', 'learner_0', 'learner_0'], false);
    const { summary, warnings } = await federate(picky);
    expect(summary.rounds.map((r) => [r.selected, r.participants])).toEqual([[1, 1], [1, 1]]);
    expect(picky.seen.aggregated.map((a) => a.failures)).toEqual([[], []]);
    expect(warnings.some((w) => /selectLearners named ghost/.test(w))).toBe(true);
  });
});

describe('an aggregator without selectLearners', () => {
  it('gets the default sampling', async () => {
    const picky = new Picky(() => [], false);
    Object.assign(picky, { selectLearners: undefined });
    const { summary } = await federate(picky);
    expect(summary.rounds.map((r) => r.selected)).toEqual([2, 2]);
    expect(picky.seen.selections).toEqual([]);
    expect(picky.seen.configured).toEqual([1, 2]);
  });
});
