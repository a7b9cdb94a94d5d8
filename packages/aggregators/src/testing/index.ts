export { describeAggregatorContract } from './contract.js';
export type { AggregatorContractOptions } from './contract.js';
export { makeContext, makeLayout, makeUpdate, randomUpdates, randomVector, seededRandom } from './fixtures.js';
