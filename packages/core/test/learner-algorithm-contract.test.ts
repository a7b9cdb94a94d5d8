import { describeLearnerAlgorithmContract } from '@oiafed/core/testing';

/** The built-in learner algorithms against the contract plugin authors run. */
describeLearnerAlgorithmContract('default');
describeLearnerAlgorithmContract('fedprox', { args: { mu: 0.1 } });
describeLearnerAlgorithmContract('fedprox', { instructions: { proximal_mu: 0.01 } });
describeLearnerAlgorithmContract('scaffold', {
  instructions: { scaffold: true },
  tensors: (global) => ({ server_control: global.map((v) => v / 10) }),
});
describeLearnerAlgorithmContract('fedbn', { instructions: { keep_local: 'normalization' } });
describeLearnerAlgorithmContract('fednova', { instructions: { report_steps: true } });
