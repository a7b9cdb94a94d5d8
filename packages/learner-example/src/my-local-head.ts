import type {
  LearnerAlgorithm,
  LearnerAlgorithmDefinition,
  LocalTrainingOutcome,
  UpdateAdditions,
} from '@oiafed/core';

/** The config name: `learner: {type: my_local_head, args: {layers: [fc2]}}`. */
export const MY_LOCAL_HEAD_TYPE = 'my_local_head';

/** `learner.args` of `my_local_head` (beside the local training settings). */
export interface MyLocalHeadArgs {
  /** Layer names whose tensors stay on the learner (`fc2` keeps `fc2/kernel` and `fc2/bias`). */
  layers: string[];
}

/**
 * A personalization in the style of FedPer: the named layers (usually the classifier head) never
 * take the global values; each learner trains and evaluates with its own. The server side is
 * plain averaging (`aggregator: {type: fedavg}`). After each round it reports `meta.local_drift`,
 * the L2 distance between its trained and the global shared tensors, for its aggregator or logs.
 */
export const myLocalHead: LearnerAlgorithmDefinition = {
  type: MY_LOCAL_HEAD_TYPE,
  argsSchema: {
    type: 'object',
    required: ['layers'],
    additionalProperties: false,
    properties: { layers: { type: 'array', description: 'Names of the layers kept local.' } },
  },
  create: (args) => new MyLocalHead(parseLayers(args.layers)),
};

function parseLayers(value: unknown): string[] {
  if (!Array.isArray(value) || value.length === 0 || !value.every((v) => typeof v === 'string' && v.length > 0)) {
    throw new Error(`learner algorithm "${MY_LOCAL_HEAD_TYPE}": args.layers must be a non-empty list of layer names, got ${JSON.stringify(value)}`);
  }
  return value as string[];
}

/** The layer a tensor belongs to: `fc2/kernel` -> `fc2`. */
function layerOf(tensorName: string): string {
  const slash = tensorName.lastIndexOf('/');
  return slash < 0 ? tensorName : tensorName.slice(0, slash);
}

export class MyLocalHead implements LearnerAlgorithm {
  readonly type = MY_LOCAL_HEAD_TYPE;
  private readonly layers: ReadonlySet<string>;

  constructor(layers: readonly string[]) {
    this.layers = new Set(layers);
  }

  keepsLocal(spec: { name: string }): boolean {
    return this.layers.has(layerOf(spec.name));
  }

  afterTraining(outcome: LocalTrainingOutcome): UpdateAdditions {
    let sum = 0;
    for (const spec of outcome.layout) {
      if (this.keepsLocal(spec)) continue;
      for (let i = spec.offset; i < spec.offset + spec.size; i++) sum += (outcome.local[i]! - outcome.global[i]!) ** 2;
    }
    return { meta: { local_drift: Math.sqrt(sum) } };
  }
}
