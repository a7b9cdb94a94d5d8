import { dittoLearner } from './ditto.js';
import { fedbabuLearner } from './fedbabu.js';
import { fedbnLearner } from './fedbn.js';
import { feddistillLearner } from './feddistill.js';
import { feddynLearner } from './feddyn.js';
import { fednovaLearner } from './fednova.js';
import { fedperLearner } from './fedper.js';
import { fedprotoLearner } from './fedproto.js';
import { fedproxLearner } from './fedprox.js';
import { fedrepLearner } from './fedrep.js';
import { fedrodLearner } from './fedrod.js';
import { moonLearner } from './moon.js';
import { dpSgdLearner, localDpLearner } from '../local-dp-learner.js';
import { registerLearnerAlgorithm } from './registry.js';
import { scaffoldLearner } from './scaffold.js';
import type { LearnerAlgorithmDefinition } from './types.js';

/** Plain local SGD: the learner side of FedAvg and of every rule that needs nothing more. */
const defaultLearner: LearnerAlgorithmDefinition = {
  type: 'default',
  argsSchema: { type: 'object', additionalProperties: false, properties: {} },
  create: () => ({ type: 'default' }),
};

/** The learner algorithms core ships. */
export const BUILTIN_LEARNER_ALGORITHMS: readonly LearnerAlgorithmDefinition[] = [
  defaultLearner,
  fedproxLearner,
  scaffoldLearner,
  fedbnLearner,
  fednovaLearner,
  feddynLearner,
  fedperLearner,
  dittoLearner,
  fedrepLearner,
  fedbabuLearner,
  fedrodLearner,
  moonLearner,
  fedprotoLearner,
  feddistillLearner,
  localDpLearner,
  dpSgdLearner,
];

/** Registers the built-in learner algorithms; safe to call repeatedly. */
export function registerBuiltinLearnerAlgorithms(): void {
  for (const definition of BUILTIN_LEARNER_ALGORITHMS) registerLearnerAlgorithm(definition, { replace: true });
}

/** The instruction keys the built-ins own: what a learner with only the built-ins announces. */
export function builtinCapabilities(): string[] {
  return BUILTIN_LEARNER_ALGORITHMS.flatMap((definition) => Object.keys(definition.instructions ?? {}));
}
