/**
 * Secure aggregation with learners killed (kill -9) mid-round, over real gRPC (issue 16 §1). The
 * trainer runs here (its transport wrapped to kill a learner process right after that learner's
 * masked input arrived); the learners are separate processes with scripted updates, so the right
 * weighted mean is known.
 */
import { join } from 'node:path';
import { createAggregator, registerBuiltins as registerBuiltinAggregators } from '@oiafed/aggregators';
import { SecureAggregationMethods, Trainer, type TrainingSummary } from '@oiafed/core';
import { interceptCalls } from '@oiafed/core/testing';
import { createModel, registerBuiltinModels, selectBackend } from '@oiafed/models';
import { levelsFor, quantizationStep } from '@oiafed/privacy';
import { GrpcTransport, type Transport } from '@oiafed/transport';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { sourceNodeFlags } from '../../source-node.js';
import { killAll, startProc, summaryLine, PROCESS_TEST_TIMEOUT_MS, type Proc } from './helpers.js';
import { secaggDelta, secaggSamples } from './secagg-updates.js';

const cleanups: Array<() => Promise<void>> = [];
const modelSpec = { type: 'mlp', args: { hidden: [64], seed: 3 } };
const clipRange = 8;

beforeAll(async () => {
  registerBuiltinModels();
  registerBuiltinAggregators();
  await selectBackend('cpu');
});

afterEach(async () => {
  await killAll();
  while (cleanups.length > 0) await cleanups.pop()!();
});

interface Kills {
  /** Killed when the trainer asks for its masked input, before it can answer. */
  beforeMasking?: string[];
  /** Killed right after its masked input reached the trainer (before the unmask stage). */
  afterMasking?: string[];
}

/** The trainer's transport; kills learner processes around the masked-input stage as `kills` says. */
function killing(transport: Transport, procs: Map<string, Proc>, kills: Kills): Transport {
  const kill = async (id: string) => {
    procs.get(id)!.kill('SIGKILL');
    await procs.get(id)!.exited;
  };
  return interceptCalls(transport, async (to, method, _payload, next) => {
    const masking = method === SecureAggregationMethods.maskedInput;
    if (masking && kills.beforeMasking?.includes(to)) await kill(to);
    const reply = await next();
    if (masking && kills.afterMasking?.includes(to)) await kill(to);
    return reply;
  });
}

async function secureRound(n: number, threshold: number, kills: Kills) {
  const model = createModel(modelSpec, { inputShape: [32], numClasses: 4 });
  const server = new GrpcTransport({ nodeId: 'trainer', role: 'trainer', listen: { host: '127.0.0.1', port: 0 } });
  await server.start();
  cleanups.push(async () => {
    await server.stop();
    model.dispose();
  });
  const procs = new Map<string, Proc>();
  const initial = model.getWeights();
  const errors: string[] = [];
  const trainer = new Trainer({
    nodeId: 'trainer',
    transport: killing(server, procs, kills),
    model,
    modelSpec,
    aggregator: createAggregator({ type: 'fedavg' }),
    settings: {
      maxRounds: 1,
      localEpochs: 1,
      clientFraction: 1,
      // All n register before round 1; the round aggregates with fewer (the dropouts).
      minAvailableClients: n,
      minClients: 2,
      evalEvery: 0,
      roundTimeoutS: 120,
      registrationTimeoutS: 180,
      secureAggregation: { threshold, neighbours: n - 1, clipRange, quantizationBits: 32, weighted: true },
    },
    seed: 5,
    logger: { debug() {}, info() {}, warn() {}, error: (m) => errors.push(m) },
  });
  const run = trainer.run();
  const script = join(import.meta.dirname, 'secagg-learner.ts');
  for (let i = 0; i < n; i++) {
    const id = `learner_${i}`;
    procs.set(id, startProc(id, process.execPath, [...sourceNodeFlags(), script, String(server.boundPort), id, String(i)]));
  }
  const summary: TrainingSummary = await run;
  return { summary, initial, errors, procs };
}

/** The exact weighted mean update of `included` learners, applied to `initial`. */
function expectedWeights(initial: Float32Array, included: number[]): Float32Array {
  const total = included.reduce((s, i) => s + secaggSamples(i), 0);
  const deltas = included.map((i) => secaggDelta(i, initial.length));
  return initial.map((g, j) => g + deltas.reduce((s, d, k) => s + (secaggSamples(included[k]!) * d[j]!) / total, 0));
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  let worst = 0;
  for (let j = 0; j < a.length; j++) worst = Math.max(worst, Math.abs(a[j]! - b[j]!));
  return worst;
}

describe('secure aggregation with learners killed (kill -9)', () => {
  it(
    'n - t learners killed after sending masked input: the round completes with their inputs in the sum',
    async () => {
      const { summary, initial, procs } = await secureRound(5, 3, { afterMasking: ['learner_1', 'learner_3'] });
      expect(procs.get('learner_1')!.exit?.signal).toBe('SIGKILL');
      expect(summary.rounds[0]).toMatchObject({ aggregated: true, participants: 5 });
      const bound = quantizationStep(clipRange, levelsFor(32, 5), 5);
      const error = maxAbsDiff(summary.weights, expectedWeights(initial, [0, 1, 2, 3, 4]));
      expect(error).toBeLessThanOrEqual(bound);
      summaryLine('secagg n-t killed after masking', { learners: 5, threshold: 3, killed: 2, max_error: error.toExponential(2), bound: bound.toExponential(2) });
    },
    PROCESS_TEST_TIMEOUT_MS,
  );

  it(
    'more than n - t learners killed after masking: the round fails cleanly and the model is unchanged',
    async () => {
      const { summary, initial, errors } = await secureRound(5, 3, { afterMasking: ['learner_0', 'learner_2', 'learner_4'] });
      const [round] = summary.rounds;
      expect(round).toMatchObject({ aggregated: false });
      expect(round!.aggregation_error).toMatch(/only 2 of .*'s neighbourhood sent masked input|shares of .* came back, 3 needed/);
      expect(errors.some((e) => /secure aggregation failed/.test(e))).toBe(true);
      expect(Array.from(summary.weights)).toEqual(Array.from(initial));
    },
    PROCESS_TEST_TIMEOUT_MS,
  );

  it(
    'a learner killed after sharing but before masking is left out: its pairwise masks are rebuilt from shares',
    async () => {
      const { summary, initial } = await secureRound(7, 4, { beforeMasking: ['learner_5'], afterMasking: ['learner_0', 'learner_6'] });
      const [round] = summary.rounds;
      expect(round).toMatchObject({ aggregated: true, participants: 6 });
      expect(round!.failed.map((f) => f.learner)).toEqual(['learner_5']);
      const included = [0, 1, 2, 3, 4, 6];
      const bound = quantizationStep(clipRange, levelsFor(32, 7), 6, 1 + secaggSamples(5) / included.reduce((s, i) => s + secaggSamples(i), 0));
      expect(maxAbsDiff(summary.weights, expectedWeights(initial, included))).toBeLessThanOrEqual(bound);
    },
    PROCESS_TEST_TIMEOUT_MS,
  );
});
