/**
 * Personalized evaluation (issue 15 §2): learners holding their own test split
 * (`partition.test_fraction`) evaluate their personalized models there at evaluation rounds, and
 * the trainer reports the sample-weighted mean and the spread beside the global accuracy.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createAggregator } from '@oiafed/aggregators';
import { loadPartition } from '@oiafed/datasets';
import { createModel, registerBuiltinModels, selectBackend } from '@oiafed/models';
import { createNodeMetrics, renderReport } from '@oiafed/tracker';
import { MemoryHub, MemoryTransport, type Payload } from '@oiafed/transport';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { deriveLearnerConfig } from '../src/derive.js';
import { registerLearnerAlgorithm } from '../src/learner-algorithms/registry.js';
import { summarizePersonalized } from '../src/personalized-eval.js';
import { DEFAULT_LEARNER_CAPABILITIES, LearnerMethods, RegistrationKeys } from '../src/protocol.js';
import { runSerial } from '../src/runner.js';
import { Trainer } from '../src/trainer.js';
import { syntheticTrainerConfig } from './helpers.js';

const cleanups: Array<() => Promise<void>> = [];
beforeAll(async () => {
  registerBuiltinModels();
  await selectBackend('cpu');
});
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

describe('summarizePersonalized', () => {
  it('weights the mean and the std by test samples; min and max are per learner', () => {
    // mean = (10 * 0.9 + 30 * 0.5) / 40 = 0.6; variance = (10 * 0.3^2 + 30 * 0.1^2) / 40 = 0.03.
    const p = summarizePersonalized([
      { num_samples: 10, accuracy: 0.9, loss: 0.2 },
      { num_samples: 30, accuracy: 0.5, loss: 1 },
    ])!;
    expect(p.accuracy).toBeCloseTo(0.6, 12);
    expect(p.std).toBeCloseTo(Math.sqrt(0.03), 12);
    expect(p.loss).toBeCloseTo((10 * 0.2 + 30 * 1) / 40, 12);
    expect([p.min, p.max, p.learners, p.samples]).toEqual([0.5, 0.9, 2, 40]);
    expect(summarizePersonalized([])).toBeUndefined();
  });
});

const trainer = (rounds: number, evalEvery = 1) => ({
  args: { max_rounds: rounds, min_clients: 3, local_epochs: 1, eval_every: evalEvery, registration_timeout: 20, round_timeout: 60 },
});
const withTestFraction = (fraction: number) => [
  { type: 'synthetic', args: { alpha: 0, beta: 0, samples_per_client: 200 }, partition: { test_fraction: fraction } },
];

/** Each learner's own test split, loaded the way serial mode's learners load theirs. */
async function localTestSplits(config: ReturnType<typeof syntheticTrainerConfig>, numClients: number) {
  return Promise.all(
    Array.from({ length: numClients }, async (_, i) => {
      const derived = deriveLearnerConfig(config, i, numClients, { host: 'memory', port: 0 });
      const loaded = await loadPartition(derived.datasets[0]!, { seed: config.seed });
      return loaded.localTest!;
    }),
  );
}

describe('personalized evaluation in a serial federation', () => {
  it('FedAvg: the weighted mean and std of the global model on each learner\'s own split, by hand', async () => {
    const config = syntheticTrainerConfig({ trainer: trainer(2), datasets: withTestFraction(0.25) });
    const lines: string[] = [];
    const summary = await runSerial(config, { numClients: 3, report: (line) => lines.push(line) });
    const last = summary.rounds[summary.rounds.length - 1]!;

    // FedAvg keeps nothing local: each learner's personalized model is the final global model.
    const splits = await localTestSplits(config, 3);
    // synthetic gives each device 200 samples, 160 of them train: a quarter of those is held out.
    expect(splits.map((s) => s.length)).toEqual([40, 40, 40]);
    const model = createModel({ type: 'mlp', args: { hidden: [32], seed: 7 } }, { inputShape: [...splits[0]!.sampleShape], numClasses: splits[0]!.numClasses });
    cleanups.push(async () => model.dispose());
    model.setWeights(summary.weights);
    const own = await Promise.all(splits.map((s) => model.evaluate(s, { batchSize: 256 })));
    const total = own.reduce((sum, r) => sum + r.numSamples, 0);
    const mean = own.reduce((sum, r) => sum + r.accuracy * r.numSamples, 0) / total;
    const std = Math.sqrt(own.reduce((sum, r) => sum + r.numSamples * (r.accuracy - mean) ** 2, 0) / total);
    expect(last.personalized_accuracy).toBeCloseTo(mean, 12);
    expect(last.personalized_accuracy_std).toBeCloseTo(std, 12);
    expect(last.personalized_accuracy_min).toBe(Math.min(...own.map((r) => r.accuracy)));
    expect(last.personalized_accuracy_max).toBe(Math.max(...own.map((r) => r.accuracy)));
    expect(last.personalized_learners).toBe(3);
    expect(last.personalized_loss).toBeCloseTo(own.reduce((sum, r) => sum + r.loss * r.numSamples, 0) / total, 5);
    // Global accuracy (the trainer's test split) is still there, beside it.
    expect(last.accuracy).toBeTypeOf('number');
    expect(last.eval_source).toBe('trainer');

    const roundLines = lines.filter((l) => l.startsWith('round '));
    expect(roundLines).toHaveLength(2);
    expect(roundLines[1]).toContain(
      `personalized ${(mean * 100).toFixed(2)}% sd ${(std * 100).toFixed(2)} [${(last.personalized_accuracy_min! * 100).toFixed(2)}..${(last.personalized_accuracy_max! * 100).toFixed(2)}]`,
    );
    expect(lines[lines.length - 1]).toContain(`personalized accuracy ${(mean * 100).toFixed(2)}%`);
    const history = readFileSync(join(config.tracker.run_dir!, 'history.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(history.map((r) => typeof r.personalized_accuracy)).toEqual(['number', 'number']);
    const stored = JSON.parse(readFileSync(join(config.tracker.run_dir!, 'summary.json'), 'utf8'));
    expect(stored.final_personalized_accuracy).toBeCloseTo(mean, 12);

    // The report shows both accuracies: the chart series and the summary rows.
    const html = readFileSync(renderReport(config.tracker.run_dir!), 'utf8');
    expect(html).toContain('data-series="global"');
    expect(html).toContain('data-series="personalized (mean)"');
    expect(html).toContain(`<th>Final personalized accuracy</th><td>${Number((mean * 100).toFixed(2))}% (round 2; 3 learners on their own test splits, weighted sd ${Number((std * 100).toFixed(2))}%`);
    expect(html).toContain('<th>Final accuracy</th>');
  });

  it('uses an algorithm\'s personalizedWeights: all-zero weights predict class 0, so accuracy is the share of label 0', async () => {
    registerLearnerAlgorithm(
      {
        type: 'test-zero-personal',
        argsSchema: { type: 'object', additionalProperties: false, properties: {} },
        create: () => ({
          type: 'test-zero-personal',
          // Fine-tunes first (through the hook's train), then evaluates zeros: training must not leak into the next round.
          personalizedWeights: async (ctx) => {
            const tuned = await ctx.train(ctx.weights, { epochs: 1 });
            expect(tuned).not.toEqual(ctx.weights);
            return new Float32Array(ctx.weights.length);
          },
        }),
      },
      { replace: true },
    );
    const learner = { type: 'test-zero-personal', args: { batch_size: 32, lr: 0.05, momentum: 0.5, device: 'cpu' } };
    const config = syntheticTrainerConfig({ trainer: trainer(2), learner, datasets: withTestFraction(0.2) });
    const summary = await runSerial(config, { numClients: 3 });
    const splits = await localTestSplits(config, 3);
    const zeros = splits.map((s) => s.labels.filter((l) => l === 0).length);
    const accuracies = zeros.map((z, i) => z / splits[i]!.length);
    const n = splits.map((s) => s.length);
    const total = n.reduce((a, b) => a + b, 0);
    const mean = zeros.reduce((a, b) => a + b, 0) / total;
    for (const record of summary.rounds) {
      expect(record.personalized_accuracy).toBeCloseTo(mean, 12);
      expect(record.personalized_accuracy_std).toBeCloseTo(Math.sqrt(accuracies.reduce((s, a, i) => s + n[i]! * (a - mean) ** 2, 0) / total), 12);
      // Equal logits: cross-entropy ln(numClasses) on every sample.
      expect(record.personalized_loss).toBeCloseTo(Math.log(splits[0]!.numClasses), 5);
    }
    // Same training as plain FedAvg: the evaluation's fine-tuning did not change what learners sent.
    const fedavg = await runSerial(syntheticTrainerConfig({ trainer: trainer(2), datasets: withTestFraction(0.2) }), { numClients: 3 });
    expect(summary.weights).toEqual(fedavg.weights);
  });

  it('without test_fraction nothing is asked and the round line is unchanged', async () => {
    const config = syntheticTrainerConfig({ trainer: trainer(1) });
    const lines: string[] = [];
    const summary = await runSerial(config, { numClients: 3, report: (line) => lines.push(line) });
    expect(summary.rounds[0]!.personalized_accuracy).toBeUndefined();
    expect(lines.join('\n')).not.toContain('personalized');
    expect(existsSync(join(config.tracker.run_dir!, 'history.jsonl'))).toBe(true);
  });
});

describe('the trainer side of personalized evaluation', () => {
  /** A scripted learner that echoes the global weights, announces `announced` local test samples and answers with `reply`. */
  function holder(hub: MemoryHub, nodeId: string, announced: number, reply: { num_samples: number; accuracy: number; loss: number }) {
    const metadata = {
      [RegistrationKeys.capabilities]: DEFAULT_LEARNER_CAPABILITIES.join(','),
      [RegistrationKeys.numSamples]: '100',
      [RegistrationKeys.localTestSamples]: String(announced),
    };
    const own = new MemoryTransport({ hub, nodeId, role: 'learner', connectTo: ['trainer'], metadata });
    own.handle(LearnerMethods.train, (request: Payload) => ({
      body: { round: (request.body as { round: number }).round, num_samples: 100, local_steps: 4, metrics: { loss: 1, accuracy: 0.5, seconds: 0.1, samples_per_second: 1000 }, meta: {} },
      tensors: request.tensors!.filter((t) => t.name.startsWith('weights/')),
    }));
    own.handle(LearnerMethods.evaluatePersonalized, (request: Payload) => ({ body: { round: (request.body as { round: number }).round, ...reply } }));
    cleanups.push(() => own.stop());
    return own;
  }

  it('reports the weighted mean and spread to /metrics, and leaves out a learner claiming more samples than it announced', async () => {
    const hub = new MemoryHub();
    const transport = new MemoryTransport({ hub, nodeId: 'trainer', role: 'trainer' });
    await transport.start();
    const model = createModel({ type: 'mlp', args: { hidden: [4], seed: 3 } }, { inputShape: [8], numClasses: 2 });
    cleanups.push(async () => {
      await transport.stop();
      model.dispose();
    });
    const metrics = createNodeMetrics({ nodeId: 'trainer', role: 'trainer' });
    const warnings: string[] = [];
    const learners = [
      holder(hub, 'a', 20, { num_samples: 20, accuracy: 0.9, loss: 0.3 }),
      holder(hub, 'b', 60, { num_samples: 60, accuracy: 0.7, loss: 0.6 }),
      holder(hub, 'liar', 10, { num_samples: 1000, accuracy: 0, loss: 9 }),
    ];
    await Promise.all(learners.map((l) => l.start()));
    const summary = await new Trainer({
      nodeId: 'trainer',
      transport,
      model,
      modelSpec: { type: 'mlp', args: { hidden: [4], seed: 3 } },
      aggregator: createAggregator({ type: 'fedavg' }),
      settings: { maxRounds: 1, localEpochs: 1, clientFraction: 1, minClients: 3, evalEvery: 1, roundTimeoutS: 20, registrationTimeoutS: 10 },
      seed: 1,
      metrics,
      logger: { debug() {}, info() {}, warn: (m) => warnings.push(m), error: (m) => warnings.push(m) },
    }).run();
    // mean = (20 * 0.9 + 60 * 0.7) / 80 = 0.75; variance = (20 * 0.15^2 + 60 * 0.05^2) / 80 = 0.0075.
    const record = summary.rounds[0]!;
    expect(record.personalized_accuracy).toBeCloseTo(0.75, 12);
    expect(record.personalized_accuracy_std).toBeCloseTo(Math.sqrt(0.0075), 12);
    expect([record.personalized_accuracy_min, record.personalized_accuracy_max, record.personalized_learners]).toEqual([0.7, 0.9, 2]);
    expect(warnings.join('\n')).toContain('personalized evaluation on liar failed: num_samples 1000 is outside 1..10 (the split it announced)');
    const text = await metrics.render();
    const value = (name: string) => Number(new RegExp(`^${name}\\{[^}]*\\} (\\S+)$`, 'm').exec(text)?.[1]);
    expect(value('oiafed_personalized_accuracy')).toBeCloseTo(0.75, 12);
    expect(value('oiafed_personalized_accuracy_std')).toBeCloseTo(Math.sqrt(0.0075), 12);
    expect(value('oiafed_personalized_accuracy_min')).toBe(0.7);
    expect(value('oiafed_personalized_accuracy_max')).toBe(0.9);
  });
});
