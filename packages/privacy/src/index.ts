export { DEFAULT_ORDERS, computeRdp, epsilonFromRdp, logErfc } from './rdp.js';
export type { EpsilonAtOrder, RdpConversion } from './rdp.js';
export { PrivacyAccountant, epsilonFor, noiseMultiplierFor } from './accountant.js';
export type { AccountantEntry, AccountantState } from './accountant.js';
export { adaptClipNorm, adaptiveUpdateNoiseMultiplier, addGaussianNoise, centralNoiseStd, clipL2, dpMean, l2Norm } from './dp-fedavg.js';
export type { AdaptiveClipOptions, ClipResult, DpMeanOptions, DpMeanResult } from './dp-fedavg.js';
export { boxMuller, cryptoNormal, cryptoUniform, seededNormal, seededUniform } from './random.js';
export type { NormalSource, UniformSource } from './random.js';
