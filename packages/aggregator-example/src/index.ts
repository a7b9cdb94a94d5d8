import { registerAggregator } from '@oiafed/aggregators';
import { MY_ALGO_TYPE, MyAlgo, myAlgoSchema } from './my-algo.js';

/**
 * Registers `my_algo` with the shared @oiafed/aggregators registry. Safe to call repeatedly.
 * Importing this package calls it once (a documented side effect), so naming the package in a
 * config's `aggregator.package` is enough for the trainer to find the type.
 */
export function register(): void {
  registerAggregator(MY_ALGO_TYPE, createMyAlgo, myAlgoSchema);
}

/** One factory for every call: registering the same factory again is a no-op, another one an error. */
function createMyAlgo(args: Record<string, unknown>): MyAlgo {
  return new MyAlgo(args);
}

register();

export { MY_ALGO_TYPE, MyAlgo, myAlgoSchema } from './my-algo.js';
export type { MyAlgoArgs } from './my-algo.js';
