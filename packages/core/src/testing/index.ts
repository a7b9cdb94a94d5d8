export { describeLearnerAlgorithmContract } from './learner-algorithm-contract.js';
export type { LearnerAlgorithmContractOptions } from './learner-algorithm-contract.js';
