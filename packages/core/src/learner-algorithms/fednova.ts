import type { LearnerAlgorithmDefinition } from './types.js';

/**
 * FedNova, learner side (Wang et al. 2020, "Tackling the Objective Inconsistency Problem"): the
 * aggregator normalizes each update by a_i, computed from the local step count tau_i and the
 * momentum rho. Every update already carries both (`local_steps`, `meta.momentum`), so the
 * learner side changes nothing in training; it owns the aggregator's `report_steps` instruction
 * so that a learner announcing it is known to send them.
 */
export const fednovaLearner: LearnerAlgorithmDefinition = {
  type: 'fednova',
  argsSchema: { type: 'object', additionalProperties: false, properties: {} },
  instructions: { report_steps: { type: 'boolean' } },
  create: () => ({ type: 'fednova' }),
};
