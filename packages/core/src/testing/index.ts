export { describeLearnerAlgorithmContract } from './learner-algorithm-contract.js';
export type { LearnerAlgorithmContractOptions } from './learner-algorithm-contract.js';
export { scriptedLearnerMetadata, serveScriptedLearner } from './scripted-learner.js';
export type { ScriptedLearnerOptions } from './scripted-learner.js';
