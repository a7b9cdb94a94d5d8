/**
 * Issue 12 item 2 and update_norm_clip, over real gRPC on 127.0.0.1: a rogue learner registers
 * like any other (announcing the capabilities and a huge sample count) and answers every train
 * call with crafted scalars; honest learners run the real learner code in this process.
 */
import { resolveConfig, type NodeConfig } from '@oiafed/config';
import {
  DEFAULT_LEARNER_CAPABILITIES,
  LearnerMethods,
  RegistrationKeys,
  Trainer,
  buildAggregator,
  buildModel,
  buildTransport,
  loadNodeData,
  readLatestCheckpoint,
  registerAllBuiltins,
  runLearnerNode,
  runTrainerNode,
  selectComputeBackend,
  silentLogger,
  type LearnerRunResult,
} from '@oiafed/core';
import type { Payload, Transport } from '@oiafed/transport';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { PROCESS_TEST_TIMEOUT_MS, summaryLine, tempDir } from './helpers.js';

const LEARNERS = 3; // two honest, one rogue
const cleanups: Array<() => Promise<unknown>> = [];

function nodeConfig(overrides: Record<string, unknown>): NodeConfig {
  return resolveConfig(
    {
      exp_name: 'poison',
      seed: 7,
      transport: { mode: 'grpc', grpc: { timeout: 5 } },
      heartbeat: { enabled: true, interval: 0.3, timeout: 3 },
      retry: { max_attempts: 50, initial_delay: 0.05, max_delay: 0.2 },
      model: { type: 'mlp', args: { hidden: [16] } },
      learner: { args: { batch_size: 32, lr: 0.05, momentum: 0.5, device: 'cpu' } },
      tracker: { backends: [{ type: 'console', level: 'error' }], run_dir: tempDir('poison-run') },
      ...overrides,
    },
    { file: 'poison.yaml', env: {} },
  );
}

const dataset = (partition: number, split?: 'train') => ({
  type: 'synthetic',
  args: { alpha: 0, beta: 0, samples_per_client: 100 },
  partition: { num_partitions: LEARNERS, partition_id: partition },
  ...(split ? { split } : {}),
});

function trainerConfig(aggregator: string, trainerArgs: Record<string, unknown>, checkpointDir: string): NodeConfig {
  return nodeConfig({
    node_id: 'trainer',
    role: 'trainer',
    listen: { host: '127.0.0.1', port: 0 },
    aggregator: { type: aggregator },
    trainer: { args: { max_rounds: 3, min_clients: 2, min_available_clients: LEARNERS, round_timeout: 30, registration_timeout: 60, checkpoint_every: 1, ...trainerArgs } },
    checkpoint: { dir: checkpointDir },
    datasets: [dataset(0)],
  });
}

function honestLearners(port: number): Promise<LearnerRunResult>[] {
  return [0, 1].map((i) =>
    runLearnerNode(nodeConfig({ node_id: `learner_${i}`, role: 'learner', connect_to: [`trainer@127.0.0.1:${port}`], datasets: [dataset(i, 'train')] })),
  );
}

/** A learner that registers with the default capabilities and answers train calls with `reply`. */
async function rogueLearner(port: number, reply: (request: Payload) => Payload): Promise<Transport> {
  const config = nodeConfig({ node_id: 'rogue', role: 'learner', connect_to: [`trainer@127.0.0.1:${port}`], datasets: [dataset(2, 'train')] });
  const transport = buildTransport(config, {
    metadata: {
      [RegistrationKeys.capabilities]: DEFAULT_LEARNER_CAPABILITIES.join(','),
      [RegistrationKeys.numSamples]: '1000000000',
    },
  });
  transport.handle(LearnerMethods.train, reply);
  transport.handle(LearnerMethods.evaluate, (request) => ({ body: { round: (request.body as { round: number }).round, num_samples: 100, loss: 1, accuracy: 0.1 } }));
  transport.handle(LearnerMethods.shutdown, () => ({ body: {} }));
  await transport.start();
  cleanups.push(() => transport.stop());
  return transport;
}

const roundOf = (request: Payload) => (request.body as { round: number }).round;
const onlyWeights = (request: Payload) => request.tensors!.filter((t) => t.name.startsWith('weights/'));
const metrics = { loss: 1, accuracy: 0.5, seconds: 0.1, samples_per_second: 1000 };

beforeAll(async () => {
  registerAllBuiltins();
  process.env.OIAFED_BACKEND = 'cpu';
  await selectComputeBackend(nodeConfig({ node_id: 'x', role: 'learner', connect_to: ['trainer@127.0.0.1:1'] }), silentLogger);
});

afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!().catch(() => undefined);
});

describe('a rogue learner poisoning the aggregate over gRPC', () => {
  it(
    'FedNova: an echo with local_steps 1e308, num_samples 1e9, momentum 0 is rejected; the model and its checkpoints stay finite',
    async () => {
      const checkpointDir = tempDir('poison-ckpt');
      let port = 0;
      let rogueStarted: Promise<Transport> | undefined;
      let honest: Promise<LearnerRunResult>[] = [];
      const summary = await runTrainerNode(trainerConfig('fednova', {}, checkpointDir), {
        onListening: (info) => {
          port = info.port!;
          honest = honestLearners(port);
          rogueStarted = rogueLearner(port, (request) => ({
            body: { round: roundOf(request), num_samples: 1e9, local_steps: 1e308, metrics, meta: { momentum: 0 } },
            tensors: onlyWeights(request),
          }));
        },
      });
      await rogueStarted;
      const results = await Promise.all(honest);
      expect(summary.stoppedBy).toBe('max_rounds');
      expect(summary.rounds.map((r) => [r.participants, r.aggregated])).toEqual([[2, true], [2, true], [2, true]]);
      for (const r of summary.rounds) {
        expect(r.failed).toHaveLength(1);
        expect(r.failed[0]!.learner).toBe('rogue');
        expect(r.failed[0]!.reason).toMatch(/local_steps must be an integer in 0..100000000000 .*got 1e\+308/);
      }
      expect(summary.weights.every(Number.isFinite)).toBe(true);
      expect(summary.finalAccuracy).toBeGreaterThan(0.2);
      const checkpoint = readLatestCheckpoint(checkpointDir)!;
      expect(checkpoint.round).toBe(3);
      expect(checkpoint.weights.every(Number.isFinite)).toBe(true);
      expect(results.map((r) => r.rounds)).toEqual([3, 3]);
      summaryLine('poison-fednova', { rounds: summary.rounds.length, rejected: summary.rounds.length, finite: 'yes', accuracy: summary.finalAccuracy!.toFixed(4) });
    },
    PROCESS_TEST_TIMEOUT_MS,
  );

  it(
    'FedAvg with update_norm_clip: a rogue pushing every weight by +1000 moves the global model by at most the clip per round',
    async () => {
      const clip = 0.5;
      const config = trainerConfig('fedavg', { max_rounds: 2, update_norm_clip: clip }, tempDir('clip-ckpt'));
      const data = await loadNodeData(config, silentLogger);
      const model = buildModel(config, data);
      const transport = buildTransport(config);
      await transport.start();
      cleanups.push(() => transport.stop());
      const perRound: Float32Array[] = [];
      const trainer = new Trainer({
        nodeId: 'trainer',
        transport,
        model,
        modelSpec: { type: 'mlp', args: { seed: 7, hidden: [16] } },
        aggregator: buildAggregator(config),
        settings: { maxRounds: 2, localEpochs: 1, clientFraction: 1, minClients: 3, evalEvery: 1, roundTimeoutS: 30, registrationTimeoutS: 60, updateNormClip: clip },
        seed: 7,
        testData: data.test,
        onRoundComplete: ({ weights }) => void perRound.push(weights.slice()),
      });
      const initial = trainer.globalWeights();
      const honest = honestLearners(transport.boundPort!);
      await rogueLearner(transport.boundPort!, (request) => {
        const tensors = onlyWeights(request).map((t) => ({ ...t, data: (t.data as Float32Array).map((v) => v + 1000) }));
        return { body: { round: roundOf(request), num_samples: 100, local_steps: 4, metrics, meta: {} }, tensors };
      });
      const summary = await trainer.run();
      await trainer.shutdownLearners('clip test finished');
      await Promise.all(honest);
      expect(summary.rounds.map((r) => r.participants)).toEqual([3, 3]);
      const steps = [initial, ...perRound].slice(1).map((w, i) => l2Distance(w, i === 0 ? initial : perRound[i - 1]!));
      // The mean of deltas each of norm <= clip has norm <= clip (float32 rounding aside).
      for (const step of steps) expect(step).toBeLessThanOrEqual(clip * (1 + 1e-4));
      expect(summary.weights.every(Number.isFinite)).toBe(true);
      // Without the clip the rogue alone would move the model by 1000/3 per weight.
      expect(1000 / 3 * Math.sqrt(initial.length)).toBeGreaterThan(1000 * clip);
      summaryLine('poison-clip', { clip, step1: steps[0]!.toFixed(4), step2: steps[1]!.toFixed(4), unclipped_rogue_norm: (1000 * Math.sqrt(initial.length)).toFixed(0) });
    },
    PROCESS_TEST_TIMEOUT_MS,
  );
});

function l2Distance(a: Float32Array, b: Float32Array): number {
  let sq = 0;
  for (let i = 0; i < a.length; i++) sq += (a[i]! - b[i]!) ** 2;
  return Math.sqrt(sq);
}
