import { FEDPROTO_KEYS } from '@oiafed/aggregators';
import { classVectorLearner } from './class-vectors.js';

/**
 * FedProto, learner side (Tan, Long, Liu, Zhou, Lu, Jiang, Zhang 2022, "FedProto: Federated
 * Prototype Learning across Heterogeneous Clients", AAAI, eq. 8 and Algorithm 1): the whole model
 * stays local (keepsLocal: everything); learner i minimises
 *   L_S(F_i(x), y) + lambda * (1/|batch|) sum_x || f_i(x) - C_bar^(y) ||^2  (mean over dims too)
 * with f_i the representation (the input of the head) and C_bar the global prototypes, and sends
 * its local prototypes C_i^(j) = mean of f_i(x) over its samples of class j in the last local
 * epoch (the paper's code collects them from the training forward passes). A sample whose class
 * has no global prototype yet adds nothing. Server: `aggregator: {type: fedproto}` (prototype
 * averaging, which also sets lambda); the personalized model is the learner's own.
 */
export const fedprotoLearner = classVectorLearner({
  type: 'fedproto',
  keys: FEDPROTO_KEYS,
  of: 'features',
  term: (lambda, prototypes, present) => ({ kind: 'prototype', lambda, prototypes, present }),
});
