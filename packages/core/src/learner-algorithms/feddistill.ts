import { FEDDISTILL_KEYS } from '@oiafed/aggregators';
import { classVectorLearner } from './class-vectors.js';

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
export const feddistillLearner = classVectorLearner({
  type: 'feddistill',
  keys: FEDDISTILL_KEYS,
  of: 'logits',
  term: (lambda, targets, present) => ({ kind: 'soft_targets', lambda, targets, present }),
});
