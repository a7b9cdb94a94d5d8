import { FEDDISTILL_GLOBAL, FEDDISTILL_INSTRUCTION, FEDDISTILL_LOCAL, packPrototypes, unpackPrototypes } from '@oiafed/aggregators';
import type { StepTerm } from '@oiafed/models';
import { PayloadMismatchError } from '../serde.js';
import { localPrototypes } from './fedproto.js';
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
 * FedDistill, learner side: federated distillation (Jeong, Oh, Kim, Bennis, Kim 2018,
 * "Communication-Efficient On-Device Machine Learning: Federated Distillation and Augmentation
 * under Non-IID Private Data", Sec. 2.1, as PFLlib's FedDistill runs it). The whole model stays
 * local; only per-label mean logits travel. Learner i minimises
 *   CE(F_i(x), y) + lambda * CE(softmax(T_y), softmax(F_i(x)))
 * with T_y the global mean logits of label y (a sample whose label has none adds nothing), and
 * sends its own per-label mean logits of the last local epoch. Server: `aggregator: {type:
 * feddistill}` (per-label plain mean over the learners holding it, which also sets lambda); the
 * personalized model is the learner's own.
 */
export const feddistillLearner: LearnerAlgorithmDefinition = {
  type: 'feddistill',
  argsSchema: {
    type: 'object',
    additionalProperties: false,
    properties: { lambda: { type: 'number', exclusiveMinimum: 0, default: 1, description: "lambda when the trainer's plan sets none." } },
  },
  instructions: { [FEDDISTILL_INSTRUCTION]: { type: 'number', exclusiveMinimum: 0, description: 'lambda' } },
  create: (args) => new FedDistillLearner(args.lambda as number),
};

class FedDistillLearner implements LearnerAlgorithm {
  readonly type = 'feddistill';

  constructor(private readonly ownLambda: number) {}

  keepsLocal(): boolean {
    return true;
  }

  beforeTraining(ctx: LocalRoundContext): TrainingAdjustments {
    const terms: StepTerm[] = [{ kind: 'class_features', of: 'logits' }];
    const packed = ctx.tensors[FEDDISTILL_GLOBAL];
    if (packed) {
      const { classes } = headClassifier(ctx.layout, 'feddistill');
      const { prototypes, counts } = unpackPrototypes(packed, classes, classes);
      const lambda = (ctx.instructions[FEDDISTILL_INSTRUCTION] as number | undefined) ?? this.ownLambda;
      terms.push({ kind: 'soft_targets', lambda, targets: prototypes, present: counts.map((c) => (c > 0 ? 1 : 0)) });
    }
    return { stepTerms: terms };
  }

  afterTraining(outcome: LocalTrainingOutcome): UpdateAdditions {
    const { classes } = headClassifier(outcome.layout, 'feddistill');
    const sums = outcome.result.outputs?.class_logit_sums;
    const counts = outcome.result.outputs?.class_counts;
    if (!sums || !counts || counts.length !== classes || sums.length !== classes * classes) {
      throw new PayloadMismatchError(`feddistill: local training returned no class logits of ${classes} x ${classes}`);
    }
    return {
      extras: { [FEDDISTILL_LOCAL]: packPrototypes(localPrototypes(sums, counts, classes), counts, outcome.global.length) },
      meta: { proto_classes: classes, proto_dim: classes },
    };
  }
}
