/**
 * Secure aggregation over real gRPC on 127.0.0.1 (issue 16 §1): a real Trainer and scripted
 * learners (known updates, real SecAgg+ code, real transports). Every reply the trainer receives
 * is recorded, and the tests show what the trainer can and cannot compute from it.
 */
import { createAggregator, registerBuiltins as registerBuiltinAggregators } from '@oiafed/aggregators';
import { createModel, registerBuiltinModels, selectBackend, type FedModel } from '@oiafed/models';
import { combineShares, expandMask, levelsFor, quantizationStep, type UnmaskReply } from '@oiafed/privacy';
import { GrpcTransport, type Payload, type Transport } from '@oiafed/transport';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_LEARNER_CAPABILITIES, RegistrationKeys } from '../src/protocol.js';
import { SecureAggregationMethods, type SecureAggregationSettings } from '../src/secure-aggregation.js';
import { interceptCalls } from '../src/testing/intercept-calls.js';
import { scriptedLearnerMetadata, serveScriptedLearner } from '../src/testing/scripted-learner.js';
import { Trainer, type TrainingSummary } from '../src/trainer.js';

const modelSpec = { type: 'mlp', args: { hidden: [256], seed: 3 } };
const cleanups: Array<() => Promise<void>> = [];
const secure: SecureAggregationSettings = { threshold: 0.7, neighbours: 100, clipRange: 8, quantizationBits: 32, weighted: true };

beforeAll(async () => {
  registerBuiltinModels();
  registerBuiltinAggregators();
  await selectBackend('cpu');
});

afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

/** Learner i's delta: a constant block (structure a curious trainer would spot) and a wave. */
function deltaOf(i: number, length: number): Float32Array {
  return Float32Array.from({ length }, (_, j) => (j < length / 2 ? 0.01 * (i + 1) : Math.sin(j * 0.1 * (i + 1)) * 0.2));
}

const samplesOf = (i: number) => 40 + 20 * i;

interface Received {
  learner: string;
  method: string;
  reply: Payload;
}

/** The trainer's transport, recording every reply it receives (what learners send in a round). */
function recording(transport: Transport, received: Received[]): Transport {
  return interceptCalls(transport, async (learner, method, _payload, next) => {
    const reply = await next();
    received.push({ learner, method, reply });
    return reply;
  });
}

async function startLearner(port: number, nodeId: string, index: number, model: FedModel, metadata = scriptedLearnerMetadata(samplesOf(index))) {
  const transport = new GrpcTransport({ nodeId, role: 'learner', connectTo: [{ nodeId: 'trainer', host: '127.0.0.1', port }], metadata });
  serveScriptedLearner(transport, {
    nodeId,
    numSamples: samplesOf(index),
    layout: model.layout,
    update: (_round, global) => {
      const d = deltaOf(index, global.length);
      return global.map((g, j) => g + d[j]!);
    },
  });
  cleanups.push(() => transport.stop());
  await transport.start();
}

async function runFederation(n: number, options: { extraLearner?: boolean } = {}) {
  const model = createModel(modelSpec, { inputShape: [64], numClasses: 4 });
  const server = new GrpcTransport({ nodeId: 'trainer', role: 'trainer', listen: { host: '127.0.0.1', port: 0 } });
  await server.start();
  cleanups.push(async () => {
    await server.stop();
    model.dispose();
  });
  const received: Received[] = [];
  const warnings: string[] = [];
  const initial = model.getWeights();
  const trainer = new Trainer({
    nodeId: 'trainer',
    transport: recording(server, received),
    model,
    modelSpec,
    aggregator: createAggregator({ type: 'fedavg' }),
    settings: { maxRounds: 1, localEpochs: 1, clientFraction: 1, minClients: n, evalEvery: 0, roundTimeoutS: 60, registrationTimeoutS: 30, secureAggregation: secure },
    seed: 5,
    logger: { debug() {}, info() {}, warn: (m) => warnings.push(m), error: (m) => warnings.push(m) },
  });
  const run = trainer.run();
  if (options.extraLearner) {
    // Announces only the default capabilities: it cannot run SecAgg+. Registers first.
    const metadata = { [RegistrationKeys.capabilities]: DEFAULT_LEARNER_CAPABILITIES.join(','), [RegistrationKeys.numSamples]: '50' };
    await startLearner(server.boundPort!, 'old_learner', n, model, metadata);
  }
  for (let i = 0; i < n; i++) await startLearner(server.boundPort!, `learner_${i}`, i, model);
  const summary: TrainingSummary = await run;
  return { summary, received, warnings, initial, n };
}

function chiSquareBytes(vector: Uint32Array, shift: number): number {
  const bins = new Float64Array(256);
  for (const v of vector) bins[(v >>> shift) & 0xff]! += 1;
  const expected = vector.length / 256;
  return bins.reduce((s, c) => s + (c - expected) ** 2 / expected, 0);
}

/** 255 degrees of freedom: under uniformity P(chi2 > 340) < 3e-4. */
function looksUniform(vector: Uint32Array): boolean {
  return chiSquareBytes(vector, 0) < 340 && chiSquareBytes(vector, 24) < 340;
}

function maskedOf(received: Received[], learner: string): Uint32Array {
  const reply = received.find((r) => r.learner === learner && r.method === SecureAggregationMethods.maskedInput)!.reply;
  const data = reply.tensors![0]!.data as Int32Array;
  return new Uint32Array(data.buffer, data.byteOffset, data.length);
}

/** The self-mask seed of `owner`, rebuilt from the seed shares the trainer received at unmasking. */
function rebuiltSeed(received: Received[], owner: string, threshold: number): Uint8Array {
  const shares = received
    .filter((r) => r.method === SecureAggregationMethods.unmask)
    .map((r) => (r.reply.body as UnmaskReply).seed_shares[owner])
    .filter((s) => s !== undefined)
    .map((s) => ({ x: s!.x, y: new Uint8Array(Buffer.from(s!.y, 'base64')) }));
  return combineShares(shares, threshold, 32);
}

describe('secure aggregation over gRPC', () => {
  it('the trainer gets the weighted mean within the quantization bound, and no single update from what it receives', async () => {
    const { summary, received, warnings, initial, n } = await runFederation(5, { extraLearner: true });
    // A learner without the capability is refused before round 1 and never selected.
    expect(warnings.some((w) => /refusing learner old_learner: .*secure_aggregation/.test(w))).toBe(true);
    const [round] = summary.rounds;
    expect(round).toMatchObject({ aggregated: true, participants: n, selected: n });

    const total = Array.from({ length: n }, (_, i) => samplesOf(i)).reduce((a, b) => a + b, 0);
    const deltas = Array.from({ length: n }, (_, i) => deltaOf(i, initial.length));
    const expected = initial.map((g, j) => g + deltas.reduce((sum, d, i) => sum + (samplesOf(i) * d[j]!) / total, 0));
    const bound = quantizationStep(secure.clipRange, levelsFor(32, n), n);
    let worst = 0;
    for (let j = 0; j < expected.length; j++) worst = Math.max(worst, Math.abs(summary.weights[j]! - expected[j]!));
    expect(worst).toBeLessThanOrEqual(bound);

    // What the trainer received: no weights, masked vectors uniform in Z_2^32, no mask key of a survivor.
    expect(received.every((r) => !(r.reply.tensors ?? []).some((t) => t.name.startsWith('weights/')))).toBe(true);
    const ids = Array.from({ length: n }, (_, i) => `learner_${i}`);
    for (const id of ids) expect(looksUniform(maskedOf(received, id))).toBe(true);
    const unmaskReplies = received.filter((r) => r.method === SecureAggregationMethods.unmask).map((r) => r.reply.body as UnmaskReply);
    expect(unmaskReplies.every((reply) => Object.keys(reply.key_shares).length === 0)).toBe(true);

    // Removing learner_0's own self mask still leaves its pairwise masks: its update stays hidden.
    const t = Math.ceil(0.7 * n);
    const y0 = maskedOf(received, 'learner_0').slice();
    const mask0 = expandMask(rebuiltSeed(received, 'learner_0', t), y0.length);
    for (let j = 0; j < y0.length; j++) y0[j] = (y0[j]! - mask0[j]!) >>> 0;
    expect(looksUniform(y0)).toBe(true);

    // The sum with every self mask removed decodes; with one learner's seed missing it is noise.
    const unmaskWithout = (missing: string | undefined) => {
      const sum = new Uint32Array(y0.length);
      for (const id of ids) {
        const y = maskedOf(received, id);
        const mask = id === missing ? undefined : expandMask(rebuiltSeed(received, id, t), sum.length);
        for (let j = 0; j < sum.length; j++) sum[j] = (sum[j]! + y[j]! - (mask?.[j] ?? 0)) >>> 0;
      }
      return sum;
    };
    expect(unmaskWithout(undefined)[y0.length - 1]).toBe(total);
    expect(looksUniform(unmaskWithout(undefined))).toBe(false);
    expect(looksUniform(unmaskWithout('learner_2'))).toBe(true);
  });
});
