import type { TensorSpec } from '@oiafed/aggregators';
import { headAndBody, isHeadTensor } from './head-parts.js';
import type { LearnerAlgorithm, LearnerAlgorithmDefinition, LocalRun, LocalTrainingContext, RunLocalTraining } from './types.js';

/**
 * FedRep, learner side (Collins, Hassani, Mokhtari, Shakkottai 2021, "Exploiting Shared
 * Representations for Personalized Federated Learning", ICML, Algorithm 1): learner i keeps its
 * head h_i; each round, with the received body phi^t,
 *   h_i <- GRD(f_i(phi^t, h_i), h_i, alpha)   for head_epochs   (body fixed)
 *   phi_i <- GRD(f_i(phi, h_i), phi, alpha)   for the round's local epochs (head fixed)
 * and sends phi_i; the server averages the bodies (`aggregator: {type: fedavg}`; the average of
 * the heads it also computes is never used by a learner). The personalized model is the global
 * body with the learner's own head (keepsLocal). The paper runs 10 head epochs and 1 body epoch.
 */
export const fedrepLearner: LearnerAlgorithmDefinition = {
  type: 'fedrep',
  argsSchema: {
    type: 'object',
    additionalProperties: false,
    properties: {
      head_epochs: { type: 'integer', minimum: 1, default: 10, description: 'Local epochs of the head phase (body fixed).' },
    },
  },
  create: (args) => new FedRepLearner(args.head_epochs as number),
};

class FedRepLearner implements LearnerAlgorithm {
  readonly type = 'fedrep';

  constructor(private readonly headEpochs: number) {}

  keepsLocal(spec: TensorSpec): boolean {
    return isHeadTensor(spec);
  }

  async localTraining(ctx: LocalTrainingContext, train: RunLocalTraining): Promise<LocalRun> {
    const { head, body } = headAndBody(ctx.layout, 'fedrep');
    const headPhase = await train({ start: ctx.start, frozen: body, epochs: this.headEpochs });
    const bodyPhase = await train({ start: headPhase.weights, frozen: head });
    const { result } = bodyPhase;
    return {
      weights: bodyPhase.weights,
      result: { ...result, steps: headPhase.result.steps + result.steps, seconds: headPhase.result.seconds + result.seconds },
    };
  }
}
