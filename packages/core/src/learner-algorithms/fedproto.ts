import { FEDPROTO_GLOBAL, FEDPROTO_INSTRUCTION, FEDPROTO_LOCAL, packPrototypes, unpackPrototypes } from '@oiafed/aggregators';
import type { StepTerm } from '@oiafed/models';
import { PayloadMismatchError } from '../serde.js';
import { headClassifier } from './head-parts.js';
import type {
  LearnerAlgorithm,
  LearnerAlgorithmDefinition,
  LocalRoundContext,
  LocalTrainingOutcome,
  TrainingAdjustments,
  UpdateAdditions,
} from './types.js';

/**
 * FedProto, learner side (Tan, Long, Liu, Zhou, Lu, Jiang, Zhang 2022, "FedProto: Federated
 * Prototype Learning across Heterogeneous Clients", AAAI, eq. 8 and Algorithm 1): the whole model
 * stays local (keepsLocal: everything); learner i minimises
 *   L_S(F_i(x), y) + lambda * (1/|batch|) sum_x || f_i(x) - C_bar^(y) ||^2  (mean over dims too)
 * with f_i the representation (the input of the head) and C_bar the global prototypes, and sends
 * its local prototypes C_i^(j) = mean of f_i(x) over its samples of class j in the last local
 * epoch (the paper's code collects them from the training forward passes). A sample whose class
 * has no global prototype yet adds nothing. Server: `aggregator: {type: fedproto}` (prototype
 * averaging, which also sets lambda); the personalized model is the learner's own.
 */
export const fedprotoLearner: LearnerAlgorithmDefinition = {
  type: 'fedproto',
  argsSchema: {
    type: 'object',
    additionalProperties: false,
    properties: { lambda: { type: 'number', exclusiveMinimum: 0, default: 1, description: "lambda when the trainer's plan sets none." } },
  },
  instructions: { [FEDPROTO_INSTRUCTION]: { type: 'number', exclusiveMinimum: 0, description: 'lambda' } },
  create: (args) => new FedProtoLearner(args.lambda as number),
};

class FedProtoLearner implements LearnerAlgorithm {
  readonly type = 'fedproto';

  constructor(private readonly ownLambda: number) {}

  keepsLocal(): boolean {
    return true;
  }

  beforeTraining(ctx: LocalRoundContext): TrainingAdjustments {
    const terms: StepTerm[] = [{ kind: 'class_features' }];
    const packed = ctx.tensors[FEDPROTO_GLOBAL];
    if (packed) {
      const { classes, dim } = headClassifier(ctx.layout, 'fedproto');
      const { prototypes, counts } = unpackPrototypes(packed, classes, dim);
      const lambda = (ctx.instructions[FEDPROTO_INSTRUCTION] as number | undefined) ?? this.ownLambda;
      terms.push({ kind: 'prototype', lambda, prototypes, present: counts.map((c) => (c > 0 ? 1 : 0)) });
    }
    return { stepTerms: terms };
  }

  afterTraining(outcome: LocalTrainingOutcome): UpdateAdditions {
    const { classes, dim } = headClassifier(outcome.layout, 'fedproto');
    const sums = outcome.result.outputs?.class_feature_sums;
    const counts = outcome.result.outputs?.class_counts;
    if (!sums || !counts || counts.length !== classes || sums.length !== classes * dim) {
      throw new PayloadMismatchError(`fedproto: local training returned no class features of ${classes} x ${dim}`);
    }
    const prototypes = localPrototypes(sums, counts, dim);
    return {
      extras: { [FEDPROTO_LOCAL]: packPrototypes(prototypes, counts, outcome.global.length) },
      meta: { proto_classes: classes, proto_dim: dim },
    };
  }
}

/** C_i^(j): the mean feature of class j (zero where the learner saw none). */
export function localPrototypes(sums: Float32Array, counts: Float32Array, dim: number): Float32Array {
  const out = new Float32Array(sums.length);
  counts.forEach((n, j) => {
    if (n > 0) for (let k = 0; k < dim; k++) out[j * dim + k] = sums[j * dim + k]! / n;
  });
  return out;
}
