import type { WeightLayout } from '@oiafed/aggregators';
import { headClassifier } from './head-parts.js';
import type { LearnerAlgorithm, LearnerAlgorithmDefinition, LocalRoundContext, LocalTrainingOutcome, TrainingAdjustments } from './types.js';

/**
 * FedRoD, learner side (Chen & Chao 2022, "On Bridging Generic and Personalized Federated
 * Learning for Image Classification", ICLR, Sec. 4, linear personalized head): the model's own
 * head is the generic head (G-head), trained with the body by the balanced risk (balanced
 * softmax, eq. 5: cross-entropy on logits + log n_c, n_c the learner's class counts) and
 * averaged by the server (`aggregator: {type: fedavg}`); each learner also keeps a linear
 * personalized head (P-head) phi_m trained, in the same steps, by empirical risk on
 * g(z; psi) + h(z; phi_m) with z = f(x; theta) and g both detached (as the authors' code). The
 * P-head starts at zero, so the personalized model starts as the generic one, and uses the
 * learner's lr. Personalized prediction: g(z) + h(z), which for two linear heads on the same z
 * is one linear head with summed weights: the personalized model is the global one with the
 * P-head added to its classifier.
 */
export const fedrodLearner: LearnerAlgorithmDefinition = {
  type: 'fedrod',
  argsSchema: { type: 'object', additionalProperties: false, properties: {} },
  create: () => new FedRodLearner(),
};

class FedRodLearner implements LearnerAlgorithm {
  readonly type = 'fedrod';
  /** phi_m: [dim * classes] kernel then [classes] bias. */
  private personalHead: Float32Array | undefined;

  beforeTraining(ctx: LocalRoundContext): TrainingAdjustments {
    const { dim, classes } = headClassifier(ctx.layout, 'fedrod');
    this.personalHead ??= new Float32Array(dim * classes + classes);
    return {
      stepTerms: [{ kind: 'balanced_softmax' }, { kind: 'aux_head', weights: this.personalHead, lr: ctx.settings.lr }],
    };
  }

  afterTraining(outcome: LocalTrainingOutcome): undefined {
    const trained = outcome.result.outputs?.aux_head;
    if (!trained || trained.length !== this.personalHead?.length) throw new Error('fedrod: local training returned no personalized head');
    this.personalHead = trained.slice();
    return undefined;
  }

  personalizedWeights(ctx: { weights: Float32Array; layout: WeightLayout }): Float32Array | undefined {
    if (!this.personalHead) return undefined;
    const { kernel, bias } = headClassifier(ctx.layout, 'fedrod');
    const out = ctx.weights.slice();
    for (let i = 0; i < kernel.size; i++) out[kernel.offset + i]! += this.personalHead[i]!;
    for (let c = 0; c < bias.size; c++) out[bias.offset + c]! += this.personalHead[kernel.size + c]!;
    return out;
  }
}
