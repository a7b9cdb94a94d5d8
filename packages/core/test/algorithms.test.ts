import * as tfl from '@tensorflow/tfjs-layers';
import { createModel, registerModel, type FedModel } from '@oiafed/models';
import { describe, expect, it } from 'vitest';
import { runSerial } from '../src/runner.js';
import { syntheticTrainerConfig } from './helpers.js';

/**
 * A label-skewed federation: one IID pool of synthetic(0, 0) data split so that each of the 4
 * learners sees only 2 of the 10 classes (NIID-Bench's #C=2), evaluated on the trainer's test split.
 */
function nonIidConfig(aggregator: Record<string, unknown>, model: Record<string, unknown> = { type: 'mlp', args: { hidden: [32] } }) {
  return syntheticTrainerConfig({
    aggregator,
    model,
    trainer: { args: { max_rounds: 5, min_clients: 4, local_epochs: 2, registration_timeout: 20, round_timeout: 60 } },
    learner: { args: { batch_size: 32, lr: 0.05, momentum: 0.5, device: 'cpu' } },
    datasets: [
      {
        type: 'synthetic',
        args: { iid: true, num_clients: 1, samples_per_client: 1500 },
        partition: { strategy: 'label_skew', config: { num_labels_per_client: 2, seed: 3 } },
      },
    ],
  });
}

const CHANCE = 0.1;

describe('algorithms on a label-skewed (#C=2) synthetic federation', () => {
  it.each([
    ['fedprox', { mu: 0.01 }],
    ['scaffold', {}],
    ['fednova', {}],
  ])('%s produces finite weights and beats chance clearly', async (type, args) => {
    const summary = await runSerial(nonIidConfig({ type, args }), { numClients: 4 });
    expect(summary.rounds).toHaveLength(5);
    expect(summary.rounds.every((r) => r.participants === 4 && r.aggregated)).toBe(true);
    expect(summary.weights.every(Number.isFinite)).toBe(true);
    expect(summary.finalAccuracy!).toBeGreaterThan(2 * CHANCE);
  });
});

/** dense 16 -> BatchNormalization -> relu -> dense classes: the smallest model with a BN layer. */
function registerTinyBn(): void {
  registerModel('tiny_bn_test', (_args, ctx) => {
    const seed = ctx.seed ?? 0;
    const model = tfl.sequential({ name: 'tiny_bn_test' });
    model.add(tfl.layers.dense({ name: 'fc1', units: 16, inputShape: ctx.inputShape, kernelInitializer: tfl.initializers.glorotUniform({ seed }) }));
    model.add(tfl.layers.batchNormalization({ name: 'bn1' }));
    model.add(tfl.layers.activation({ name: 'relu1', activation: 'relu' }));
    model.add(tfl.layers.dense({ name: 'fc2', units: ctx.numClasses, kernelInitializer: tfl.initializers.glorotUniform({ seed: seed + 1 }) }));
    return model;
  });
}

function slices(model: FedModel, weights: Float32Array, normalization: boolean): Float32Array[] {
  return model.layout
    .filter((spec) => spec.isNormalization === normalization)
    .map((spec) => weights.slice(spec.offset, spec.offset + spec.size));
}

describe('fedbn', () => {
  it('keeps normalization tensors local: the global BN parameters never move, unlike under fedavg', async () => {
    registerTinyBn();
    const model = { type: 'tiny_bn_test' };
    const fedbnConfig = nonIidConfig({ type: 'fedbn' }, model);
    // the same initial weights the trainer builds (model seed = config seed)
    const reference = createModel({ type: 'tiny_bn_test', args: { seed: fedbnConfig.seed } }, { inputShape: [60], numClasses: 10 });
    const initial = reference.getWeights();
    const bnSpecs = reference.layout.filter((s) => s.isNormalization);
    // gamma, beta, moving mean, moving variance
    expect(bnSpecs.length).toBe(4);

    const fedbn = await runSerial(fedbnConfig, { numClients: 4 });
    expect(fedbn.weights.every(Number.isFinite)).toBe(true);
    expect(slices(reference, fedbn.weights, true)).toEqual(slices(reference, initial, true));
    // the other layers did train
    const movedDense = slices(reference, fedbn.weights, false).some((s, i) => s.some((v, j) => v !== slices(reference, initial, false)[i]![j]));
    expect(movedDense).toBe(true);

    const fedavg = await runSerial(nonIidConfig({ type: 'fedavg' }, model), { numClients: 4 });
    const bnMoved = slices(reference, fedavg.weights, true).some((s, i) => s.some((v, j) => v !== slices(reference, initial, true)[i]![j]));
    expect(bnMoved).toBe(true);
    reference.dispose();
  });
});
