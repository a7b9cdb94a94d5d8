import type { TensorSpec, WeightLayout } from '@oiafed/aggregators';
import type { LearnerAlgorithm, LearnerAlgorithmDefinition } from './types.js';

/**
 * FedPer, learner side (Arivazhagan et al. 2019, "Federated Learning with Personalization
 * Layers", Sec. 3): the last `personal_layers` layers (the classifier by default) are
 * personalization layers that never leave the learner's control: it trains and evaluates with
 * its own, while the base layers are federated. The server side is plain averaging
 * (`aggregator: {type: fedavg}`); the global model's copy of the personal layers is never used
 * by a learner. A layer is the tensors sharing a name prefix (`fc2/kernel`, `fc2/bias`), in
 * layout order.
 */
export const fedperLearner: LearnerAlgorithmDefinition = {
  type: 'fedper',
  argsSchema: {
    type: 'object',
    additionalProperties: false,
    properties: { personal_layers: { type: 'integer', minimum: 1, default: 1, description: 'Last layers kept local.' } },
  },
  create: (args) => new FedPerLearner(args.personal_layers as number),
};

/** The layer a tensor belongs to: `fc2/kernel` -> `fc2`. */
function layerOf(name: string): string {
  const slash = name.lastIndexOf('/');
  return slash < 0 ? name : name.slice(0, slash);
}

class FedPerLearner implements LearnerAlgorithm {
  readonly type = 'fedper';
  private personal: { layout: WeightLayout; layers: Set<string> } | undefined;

  constructor(private readonly personalLayers: number) {}

  keepsLocal(spec: TensorSpec, layout: WeightLayout): boolean {
    if (this.personal?.layout !== layout) this.personal = { layout, layers: lastLayers(layout, this.personalLayers) };
    return this.personal.layers.has(layerOf(spec.name));
  }
}

/** Names of the last `count` distinct layers in layout order. */
function lastLayers(layout: WeightLayout, count: number): Set<string> {
  const order: string[] = [];
  for (const spec of layout) {
    const layer = layerOf(spec.name);
    if (order[order.length - 1] !== layer) order.push(layer);
  }
  return new Set(order.slice(-count));
}
