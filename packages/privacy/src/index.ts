export { DEFAULT_ORDERS, computeRdp, epsilonFromRdp, logErfc } from './rdp.js';
export type { EpsilonAtOrder, RdpConversion } from './rdp.js';
export { PrivacyAccountant, epsilonFor, noiseMultiplierFor } from './accountant.js';
export type { AccountantEntry, AccountantState } from './accountant.js';
export { adaptClipNorm, adaptiveUpdateNoiseMultiplier, addGaussianNoise, centralNoiseStd, clipL2, dpMean, l2Norm } from './dp-fedavg.js';
export type { AdaptiveClipOptions, ClipResult, DpMeanOptions, DpMeanResult } from './dp-fedavg.js';
export { boxMuller, cryptoNormal, cryptoUniform, seededNormal, seededUniform } from './random.js';
export type { NormalSource, UniformSource } from './random.js';
export { dpSgdSamplingRate, dpSgdStepsPerRound, localDpEpsilon, privatizeUpdate } from './local-dp.js';
export type { LocalDpResult } from './local-dp.js';
export {
  MAX_SHARE_CIPHERTEXT_CHARS,
  SHARE_INFO,
  SecAggClient,
  SecAggServer,
  agreeKey,
  checkX25519PublicKey,
  combineShares,
  dequantizeWeightedMean,
  expandMask,
  generateX25519,
  levelsFor,
  neighbourGraph,
  quantizationStep,
  quantizeWeighted,
  sealBox,
  shareAad,
  sharePoint,
  splitSecret,
  thresholdCount,
} from './secagg/index.js';
export type {
  MaskedInputRequest,
  SecAggResult,
  SecAggServerOptions,
  SetupReply,
  SetupRequest,
  Share,
  ShareKeysReply,
  ShareKeysRequest,
  UnmaskReply,
  UnmaskRequest,
} from './secagg/index.js';
