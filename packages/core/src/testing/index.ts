export { describeLearnerAlgorithmContract } from './learner-algorithm-contract.js';
export type { LearnerAlgorithmContractOptions } from './learner-algorithm-contract.js';
export { scriptedLearnerMetadata, serveScriptedLearner } from './scripted-learner.js';
export type { ScriptedLearnerOptions } from './scripted-learner.js';
export { interceptCalls } from './intercept-calls.js';
export type { CallInterceptor } from './intercept-calls.js';
