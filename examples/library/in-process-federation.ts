/**
 * OiaFed as a library: a federation assembled by hand from the packages, no YAML, no CLI.
 * Three learners on the FedProx paper's synthetic data train an MLP with FedProx over the
 * in-memory transport; swap MemoryTransport for GrpcTransport to spread it over machines.
 *
 *   node --conditions=@oiafed/source --import tsx examples/library/in-process-federation.ts
 */
import { createAggregator, registerBuiltins } from '@oiafed/aggregators';
import { DEFAULT_LEARNER_CAPABILITIES, Learner, RegistrationKeys, Trainer } from '@oiafed/core';
import { loadDataset, loadPartition } from '@oiafed/datasets';
import { createModel, registerBuiltinModels, selectBackend } from '@oiafed/models';
import { MemoryHub, MemoryTransport } from '@oiafed/transport';

export async function main(numLearners = 3, rounds = 5): Promise<number[]> {
  registerBuiltins();
  registerBuiltinModels();
  await selectBackend('cpu');

  const modelSpec = { type: 'mlp', args: { hidden: [32], seed: 1 } };
  const dataset = { type: 'synthetic', args: { alpha: 1, beta: 1, samples_per_client: 300 }, partition: { num_partitions: numLearners } };
  const hub = new MemoryHub();

  const trainerTransport = new MemoryTransport({ hub, nodeId: 'trainer', role: 'trainer' });
  await trainerTransport.start();
  const { test } = await loadDataset({ ...dataset, split: 'test' }, { seed: 1 });
  const trainer = new Trainer({
    nodeId: 'trainer',
    transport: trainerTransport,
    model: createModel(modelSpec, { inputShape: [60], numClasses: 10 }),
    modelSpec,
    aggregator: createAggregator({ type: 'fedprox', args: { mu: 0.01 } }),
    settings: { maxRounds: rounds, localEpochs: 1, clientFraction: 1, minClients: numLearners, evalEvery: 1, roundTimeoutS: 60, registrationTimeoutS: 10 },
    seed: 1,
    testData: test,
    report: (line) => process.stdout.write(`${line}\n`),
  });

  const learnerTransports = [];
  for (let id = 0; id < numLearners; id++) {
    const { train } = await loadPartition({ ...dataset, partition: { ...dataset.partition, partition_id: id } }, { seed: 1 });
    const transport = new MemoryTransport({
      hub,
      nodeId: `learner_${id}`,
      role: 'learner',
      connectTo: ['trainer'],
      metadata: { [RegistrationKeys.capabilities]: DEFAULT_LEARNER_CAPABILITIES.join(',') },
    });
    new Learner({
      nodeId: `learner_${id}`,
      transport,
      model: createModel(modelSpec, { inputShape: [60], numClasses: 10 }),
      trainData: train!,
      settings: { batchSize: 32, lr: 0.02, optimizer: 'sgd', momentum: 0.5, weightDecay: 0 },
      seed: id,
    });
    await transport.start();
    learnerTransports.push(transport);
  }

  const summary = await trainer.run();
  await trainer.shutdownLearners('done');
  await Promise.all([trainerTransport, ...learnerTransports].map((t) => t.stop()));
  return summary.rounds.map((r) => r.accuracy ?? NaN);
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
