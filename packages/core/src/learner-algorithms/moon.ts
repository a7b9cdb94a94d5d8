import type { LearnerAlgorithm, LearnerAlgorithmDefinition, LocalRoundContext, LocalTrainingOutcome, TrainingAdjustments } from './types.js';

/**
 * MOON, learner side (Li, He, Song 2021, "Model-Contrastive Federated Learning", CVPR, eq. 3-4):
 * local training minimises l_sup + mu * l_con with
 *   l_con = -log( e^{sim(z, z_glob)/tau} / (e^{sim(z, z_glob)/tau} + sum_prev e^{sim(z, z_prev)/tau}) )
 * where z is the representation of the model being trained, z_glob that of the round's global
 * model and z_prev those of this learner's previous local models (the last `buffer_size`), all on
 * the same batch; the other two are constants (inference mode), sim is cosine similarity. The
 * representation is the input of the model's head (MOON's projection-head output; our models'
 * last hidden layer). Before a learner has a previous model the term is left out, as the
 * paper's code does (its single positive logit gives zero loss). Server: `aggregator: {type: fedavg}`.
 * The paper uses mu = 5 (CIFAR-10), tau = 0.5, one previous model.
 */
export const moonLearner: LearnerAlgorithmDefinition = {
  type: 'moon',
  argsSchema: {
    type: 'object',
    additionalProperties: false,
    properties: {
      mu: { type: 'number', minimum: 0, default: 5, description: 'Weight of the model-contrastive loss.' },
      temperature: { type: 'number', exclusiveMinimum: 0, default: 0.5, description: 'tau.' },
      buffer_size: { type: 'integer', minimum: 1, default: 1, description: 'Previous local models used as negatives.' },
    },
  },
  create: (args) => new MoonLearner(args.mu as number, args.temperature as number, args.buffer_size as number),
};

class MoonLearner implements LearnerAlgorithm {
  readonly type = 'moon';
  /** This learner's previous local models, oldest first. */
  private readonly previous: Float32Array[] = [];

  constructor(
    private readonly mu: number,
    private readonly temperature: number,
    private readonly bufferSize: number,
  ) {}

  beforeTraining(ctx: LocalRoundContext): TrainingAdjustments | undefined {
    if (this.previous.length === 0 || this.mu === 0) return undefined;
    const term = { kind: 'contrastive' as const, mu: this.mu, temperature: this.temperature, positive: ctx.global, negatives: [...this.previous] };
    return { stepTerms: [term] };
  }

  afterTraining(outcome: LocalTrainingOutcome): undefined {
    this.previous.push(outcome.local.slice());
    if (this.previous.length > this.bufferSize) this.previous.shift();
    return undefined;
  }
}
