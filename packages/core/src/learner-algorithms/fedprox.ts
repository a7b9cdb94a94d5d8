import type { LearnerAlgorithm, LearnerAlgorithmDefinition, LocalRoundContext, TrainingAdjustments } from './types.js';

/**
 * FedProx, learner side (Li et al. 2020, "Federated Optimization in Heterogeneous Networks",
 * eq. 2): the local objective gains mu/2 * ||w - w_global||^2 over the trainable tensors. The
 * aggregator `fedprox` sets `proximal_mu` each round; `learner: {type: fedprox, args: {mu}}`
 * asks for it with any aggregator (its server side is plain averaging).
 */
export const fedproxLearner: LearnerAlgorithmDefinition = {
  type: 'fedprox',
  argsSchema: {
    type: 'object',
    additionalProperties: false,
    properties: { mu: { type: 'number', minimum: 0, description: "Proximal coefficient when the trainer's plan sets none." } },
  },
  instructions: { proximal_mu: { type: 'number', minimum: 0, description: 'mu of the proximal term' } },
  create: (args) => new FedProxLearner(args.mu as number | undefined),
};

class FedProxLearner implements LearnerAlgorithm {
  readonly type = 'fedprox';

  constructor(private readonly mu: number | undefined) {}

  beforeTraining(ctx: LocalRoundContext): TrainingAdjustments | undefined {
    const mu = (ctx.instructions.proximal_mu as number | undefined) ?? this.mu;
    if (mu === undefined || !(mu > 0)) return undefined;
    return { proximalMu: mu, proximalCenter: ctx.global };
  }
}
