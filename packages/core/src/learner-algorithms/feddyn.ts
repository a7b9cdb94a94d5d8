import { FEDDYN_INSTRUCTION } from '@oiafed/aggregators';
import type {
  LearnerAlgorithm,
  LearnerAlgorithmDefinition,
  LocalRoundContext,
  LocalTrainingOutcome,
  TrainingAdjustments,
} from './types.js';

/**
 * FedDyn, learner side (Acar et al. 2021, "Federated Learning Based on Dynamic Regularization",
 * ICLR, Algorithm 1): learner k minimises
 *   L_k(theta) - <grad L_k(theta_k^{t-1}), theta> + alpha/2 ||theta - theta^{t-1}||^2
 * and then sets grad L_k(theta_k^t) = grad L_k(theta_k^{t-1}) - alpha (theta_k^t - theta^{t-1})
 * (its first-order condition), zero before its first round. Per step the gradient becomes
 * grad L_k + alpha (theta - theta^{t-1}) - g_k: FedModel's proximal term with mu = alpha and a
 * gradient correction of -g_k. The correction is applied beside the optimizer (as SCAFFOLD's),
 * which is the paper's update for plain SGD. The aggregator `feddyn` sends alpha as
 * `instructions.feddyn`; `learner.args.alpha` is used when the plan sets none.
 */
export const feddynLearner: LearnerAlgorithmDefinition = {
  type: 'feddyn',
  argsSchema: {
    type: 'object',
    additionalProperties: false,
    properties: { alpha: { type: 'number', exclusiveMinimum: 0, description: "alpha when the trainer's plan sets none." } },
  },
  instructions: { [FEDDYN_INSTRUCTION]: { type: 'number', exclusiveMinimum: 0, description: 'alpha' } },
  create: (args) => new FedDynLearner(args.alpha as number | undefined),
};

class FedDynLearner implements LearnerAlgorithm {
  readonly type = 'feddyn';
  /** g_k = grad L_k(theta_k^{t-1}), this learner's state. */
  private gradient: Float32Array | undefined;

  constructor(private readonly ownAlpha: number | undefined) {}

  beforeTraining(ctx: LocalRoundContext): TrainingAdjustments {
    const alpha = this.alpha(ctx);
    const g = this.stateFor(ctx.global.length);
    return { proximalMu: alpha, proximalCenter: ctx.global, gradientCorrection: g.map((v) => -v) };
  }

  afterTraining(outcome: LocalTrainingOutcome): undefined {
    const alpha = this.alpha(outcome);
    const g = this.stateFor(outcome.global.length);
    for (let i = 0; i < g.length; i++) g[i] = g[i]! - alpha * (outcome.local[i]! - outcome.global[i]!);
    return undefined;
  }

  private alpha(ctx: LocalRoundContext): number {
    const alpha = (ctx.instructions[FEDDYN_INSTRUCTION] as number | undefined) ?? this.ownAlpha;
    if (alpha === undefined) throw new Error('feddyn: no alpha (set aggregator feddyn, or learner.args.alpha)');
    return alpha;
  }

  private stateFor(length: number): Float32Array {
    if (this.gradient && this.gradient.length !== length) {
      throw new Error(`feddyn: the model has ${length} weights but this learner's state has ${this.gradient.length}`);
    }
    this.gradient ??= new Float32Array(length);
    return this.gradient;
  }
}
