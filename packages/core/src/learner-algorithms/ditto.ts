import type { LearnerAlgorithm, LearnerAlgorithmDefinition, LocalRun, LocalTrainingContext, RunLocalTraining } from './types.js';

/**
 * Ditto, learner side (Li, Hu, Beirami, Smith 2021, "Ditto: Fair and Robust Federated Learning
 * Through Personalization", ICML, Algorithm 1): learner k trains the global model as FedAvg does
 * (w_k^t from w^t, sent to the server, which averages: `aggregator: {type: fedavg}`) and, in the
 * same round, its own personal model v_k on
 *   min_v F_k(v) + lambda/2 ||v - w^t||^2,   v_k <- v_k - eta (grad F_k(v_k) + lambda (v_k - w^t))
 * for `personal_epochs` (default: the round's local epochs), from its previous v_k (w^t the first
 * time). v_k never leaves the learner and is its personalized model. FedModel's proximal term with
 * mu = lambda and center w^t is exactly that gradient.
 */
export const dittoLearner: LearnerAlgorithmDefinition = {
  type: 'ditto',
  argsSchema: {
    type: 'object',
    additionalProperties: false,
    properties: {
      lambda: { type: 'number', minimum: 0, default: 0.1, description: 'Pull of the personal model towards the global one.' },
      personal_epochs: { type: 'integer', minimum: 1, description: "Epochs of the personal model per round (default: the round's)." },
    },
  },
  create: (args) => new DittoLearner(args.lambda as number, args.personal_epochs as number | undefined),
};

class DittoLearner implements LearnerAlgorithm {
  readonly type = 'ditto';
  /** v_k, this learner's personal model. */
  private personal: Float32Array | undefined;

  constructor(
    private readonly lambda: number,
    private readonly personalEpochs: number | undefined,
  ) {}

  async localTraining(ctx: LocalTrainingContext, train: RunLocalTraining): Promise<LocalRun> {
    const shared = await train({ start: ctx.start });
    if (this.personal && this.personal.length !== ctx.global.length) {
      throw new Error(`ditto: the model has ${ctx.global.length} weights but the personal model ${this.personal.length}`);
    }
    const personal = await train({
      start: this.personal ?? ctx.global,
      proximalMu: this.lambda,
      proximalCenter: ctx.global,
      ...(this.personalEpochs !== undefined ? { epochs: this.personalEpochs } : {}),
    });
    this.personal = personal.weights;
    return shared;
  }

  personalizedWeights(): Float32Array | undefined {
    return this.personal?.slice();
  }
}
