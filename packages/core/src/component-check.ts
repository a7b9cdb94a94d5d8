/**
 * What `oiafed validate` checks beyond the config schema: that `aggregator.type`,
 * `learner.type` and `callbacks[].type` name registered components and that their args pass the
 * components' own schemas. Exported as `@oiafed/core/component-check`, which loads no tfjs, so validate stays
 * fast; a caller whose config names plugins imports them first (prepareNode). `model.type` and
 * each `datasets[].type` and their args are checked too, the model through the tfjs-free
 * `@oiafed/models/catalog`.
 */
import { createAggregator, registerBuiltins as registerBuiltinAggregators } from '@oiafed/aggregators';
import type { NodeConfig } from '@oiafed/config';
import { datasetSpecProblems } from '@oiafed/datasets';
import { modelSpecProblems } from '@oiafed/models/catalog';
import { callbackArgs, registerBuiltinCallbacks } from './callbacks.js';
import { withDifferentialPrivacy } from './central-dp.js';
import { registerBuiltinLearnerAlgorithms } from './learner-algorithms/builtins.js';
import { secureAggregationSettings } from './secure-aggregation.js';
import { LearnerAlgorithms } from './learner-algorithms/learner-algorithms.js';
import { learnerAlgorithmArgs } from './learner-algorithms/registry.js';

/** One problem, located like a config issue: the section and what is wrong. */
export interface ComponentProblem {
  path:
    | 'aggregator'
    | 'learner'
    | 'differential_privacy'
    | 'secure_aggregation'
    | `callbacks[${number}]`
    | 'model'
    | `datasets.${number}`;
  message: string;
}

/** Unknown component types and bad args in a resolved config; empty when all are fine. */
export function componentProblems(
  config: Pick<NodeConfig, 'aggregator' | 'learner'> &
    Partial<Pick<NodeConfig, 'differential_privacy' | 'trainer' | 'secure_aggregation' | 'callbacks' | 'model' | 'datasets'>>,
): ComponentProblem[] {
  registerBuiltinAggregators();
  registerBuiltinLearnerAlgorithms();
  registerBuiltinCallbacks();
  const problems: ComponentProblem[] = [];
  const check = (path: ComponentProblem['path'], build: () => unknown) => {
    try {
      build();
    } catch (error) {
      problems.push({ path, message: error instanceof Error ? error.message : String(error) });
    }
  };
  check('aggregator', () => createAggregator({ type: config.aggregator.type, args: config.aggregator.args }));
  const { differential_privacy: dp, trainer } = config;
  // The rule must average updates and the noise must fit target_epsilon: said by validate, not at round 1.
  if (dp && trainer) {
    check('differential_privacy', () =>
      withDifferentialPrivacy(createAggregator({ type: config.aggregator.type, args: config.aggregator.args }), dp, trainer.args, config),
    );
  }
  // A rule that needs individual updates cannot run on the masked sum: said by validate, not at round 1.
  if (config.secure_aggregation?.enabled) check('secure_aggregation', () => secureAggregationSettings(config));
  check('learner', () => new LearnerAlgorithms({ type: config.learner.type, args: learnerAlgorithmArgs(config.learner.args, config.learner.type) }));
  (config.callbacks ?? []).forEach((callback, i) => check(`callbacks[${i}]`, () => callbackArgs(callback)));
  return [...problems, ...modelAndDataProblems(config)];
}

/** `model` and `datasets[]`: unknown types and args their schemas refuse, each message naming its key path. */
function modelAndDataProblems(config: Partial<Pick<NodeConfig, 'model' | 'datasets'>>): ComponentProblem[] {
  const problems: ComponentProblem[] = [];
  if (config.model) for (const message of modelSpecProblems(config.model)) problems.push({ path: 'model', message });
  (config.datasets ?? []).forEach((spec, i) => {
    for (const message of datasetSpecProblems(spec, `datasets.${i}`)) problems.push({ path: `datasets.${i}`, message });
  });
  return problems;
}
