import { packPrototypes, unpackPrototypes, type ClassVectorKeys, type WeightLayout } from '@oiafed/aggregators';
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
 * The learner side FedProto and FedDistill share: the whole model stays local; the learner sums
 * one vector per class over its last local epoch (the head's input for FedProto, the logits for
 * FedDistill), sends their means packed as an extra, and trains against the trainer's global
 * per-class vectors through a step term weighted by lambda (the plan's, else its own). The server
 * side is one rule too (@oiafed/aggregators' FedProto with the method's keys).
 */
export interface ClassVectorMethod {
  type: string;
  /** Instruction key (lambda), learner extra and plan tensor. */
  keys: ClassVectorKeys;
  /** What is averaged per class. */
  of: 'features' | 'logits';
  /** The step term pulling training towards the global vectors, for the classes `present` (1/0). */
  term: (lambda: number, vectors: Float32Array, present: Float32Array) => StepTerm;
}

export function classVectorLearner(method: ClassVectorMethod): LearnerAlgorithmDefinition {
  return {
    type: method.type,
    argsSchema: {
      type: 'object',
      additionalProperties: false,
      properties: { lambda: { type: 'number', exclusiveMinimum: 0, default: 1, description: "lambda when the trainer's plan sets none." } },
    },
    instructions: { [method.keys.instruction]: { type: 'number', exclusiveMinimum: 0, description: 'lambda' } },
    create: (args) => new ClassVectorLearner(method, args.lambda as number),
  };
}

class ClassVectorLearner implements LearnerAlgorithm {
  readonly type: string;

  constructor(
    private readonly method: ClassVectorMethod,
    private readonly ownLambda: number,
  ) {
    this.type = method.type;
  }

  keepsLocal(): boolean {
    return true;
  }

  beforeTraining(ctx: LocalRoundContext): TrainingAdjustments {
    const { keys, of } = this.method;
    const terms: StepTerm[] = [of === 'logits' ? { kind: 'class_features', of } : { kind: 'class_features' }];
    const packed = ctx.tensors[keys.global];
    if (packed) {
      const { classes, dim } = this.shape(ctx.layout);
      const { prototypes, counts } = unpackPrototypes(packed, classes, dim);
      const lambda = (ctx.instructions[keys.instruction] as number | undefined) ?? this.ownLambda;
      terms.push(this.method.term(lambda, prototypes, counts.map((c) => (c > 0 ? 1 : 0))));
    }
    return { stepTerms: terms };
  }

  afterTraining(outcome: LocalTrainingOutcome): UpdateAdditions {
    const { classes, dim } = this.shape(outcome.layout);
    const outputs = outcome.result.outputs;
    const sums = this.method.of === 'logits' ? outputs?.class_logit_sums : outputs?.class_feature_sums;
    const counts = outputs?.class_counts;
    if (!sums || !counts || counts.length !== classes || sums.length !== classes * dim) {
      throw new PayloadMismatchError(`${this.type}: local training returned no class ${this.method.of} of ${classes} x ${dim}`);
    }
    return {
      extras: { [this.method.keys.local]: packPrototypes(localPrototypes(sums, counts, dim), counts, outcome.global.length) },
      meta: { proto_classes: classes, proto_dim: dim },
    };
  }

  /** Classes and per-class vector size: the head's input size, or the classes for logits. */
  private shape(layout: WeightLayout): { classes: number; dim: number } {
    const { classes, dim } = headClassifier(layout, this.type);
    return { classes, dim: this.method.of === 'logits' ? classes : dim };
  }
}

/** The mean vector of each class (zero where the learner saw none): FedProto's C_i^(j). */
function localPrototypes(sums: Float32Array, counts: Float32Array, dim: number): Float32Array {
  const out = new Float32Array(sums.length);
  counts.forEach((n, j) => {
    if (n > 0) for (let k = 0; k < dim; k++) out[j * dim + k] = sums[j * dim + k]! / n;
  });
  return out;
}
