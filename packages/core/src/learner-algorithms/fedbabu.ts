import type { WeightLayout } from '@oiafed/aggregators';
import type { TrainOptions } from '@oiafed/models';
import { headAndBody } from './head-parts.js';
import type { LearnerAlgorithm, LearnerAlgorithmDefinition, LocalRoundContext, TrainingAdjustments } from './types.js';

/** What FedBABU's fine-tuning needs of the learner's personalized evaluation. */
interface FineTuneContext {
  /** The global weights with this learner's kept tensors (none for FedBABU): the model to fine-tune. */
  weights: Float32Array;
  layout: WeightLayout;
  train(start: Float32Array, options?: Partial<TrainOptions>): Promise<Float32Array>;
}

/**
 * FedBABU, learner side (Oh, Kim, Yun 2022, "FedBABU: Toward Enhanced Representation for
 * Federated Image Classification", ICLR, Algorithm 1): during federated training the head stays
 * at its random initialisation, the same on every learner (only the body is updated:
 * theta_body <- theta_body - alpha grad_body L_i, theta_head fixed), and the server averages
 * (`aggregator: {type: fedavg}`; the identical heads average to themselves). The personalized
 * model is the global model fine-tuned on the learner's own data for `finetune_epochs` (the
 * whole model, as the paper's main results; `finetune_part: head` tunes the head alone) before
 * it is evaluated; the fine-tuned weights are not kept.
 */
export const fedbabuLearner: LearnerAlgorithmDefinition = {
  type: 'fedbabu',
  argsSchema: {
    type: 'object',
    additionalProperties: false,
    properties: {
      finetune_epochs: { type: 'integer', minimum: 0, default: 5, description: 'Fine-tuning epochs before personalized evaluation.' },
      finetune_part: { type: 'string', enum: ['full', 'head'], default: 'full', description: 'What fine-tuning updates.' },
    },
  },
  create: (args) => new FedBabuLearner(args.finetune_epochs as number, args.finetune_part as 'full' | 'head'),
};

class FedBabuLearner implements LearnerAlgorithm {
  readonly type = 'fedbabu';

  constructor(
    private readonly finetuneEpochs: number,
    private readonly finetunePart: 'full' | 'head',
  ) {}

  beforeTraining(ctx: LocalRoundContext): TrainingAdjustments {
    return { frozen: headAndBody(ctx.layout, 'fedbabu').head };
  }

  async personalizedWeights(ctx: FineTuneContext): Promise<Float32Array | undefined> {
    if (this.finetuneEpochs === 0) return undefined;
    const frozen = this.finetunePart === 'head' ? headAndBody(ctx.layout, 'fedbabu').body : [];
    return ctx.train(ctx.weights, { epochs: this.finetuneEpochs, frozen });
  }
}
