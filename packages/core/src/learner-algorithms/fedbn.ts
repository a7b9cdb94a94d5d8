import type { TensorSpec } from '@oiafed/aggregators';
import type { LearnerAlgorithm, LearnerAlgorithmDefinition } from './types.js';

/**
 * FedBN, learner side (Li et al. 2021, "FedBN: Federated Learning on Non-IID Features via Local
 * Batch Normalization"): normalization layers stay local; the learner trains and evaluates with
 * its own. The aggregator `fedbn` sets `keep_local: normalization` (and leaves those tensors out
 * of the average).
 */
export const fedbnLearner: LearnerAlgorithmDefinition = {
  type: 'fedbn',
  argsSchema: { type: 'object', additionalProperties: false, properties: {} },
  instructions: { keep_local: { type: 'string', enum: ['normalization'] } },
  create: () => new FedBnLearner(),
};

class FedBnLearner implements LearnerAlgorithm {
  readonly type = 'fedbn';

  keepsLocal(spec: TensorSpec): boolean {
    return spec.isNormalization;
  }
}
