import { registerLearnerAlgorithm } from '@oiafed/core';
import { myLocalHead } from './my-local-head.js';

/**
 * Registers `my_local_head` with @oiafed/core's learner-algorithm registry. Safe to call
 * repeatedly. Importing this package calls it once (a documented side effect), so naming the
 * package in a config's `plugins` is enough for a learner to find the type.
 */
export function register(): void {
  registerLearnerAlgorithm(myLocalHead, { replace: true });
}

register();

export { MY_LOCAL_HEAD_TYPE, MyLocalHead, myLocalHead } from './my-local-head.js';
export type { MyLocalHeadArgs } from './my-local-head.js';
