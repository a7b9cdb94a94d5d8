export { SHARE_INFO, SecAggClient, shareAad, sharePoint } from './client.js';
export { MAX_SHARE_CIPHERTEXT_CHARS, SecAggServer } from './server.js';
export type { SecAggResult, SecAggServerOptions } from './server.js';
export { agreeKey, checkX25519PublicKey, expandMask, generateX25519, openBox, sealBox, x25519PublicOf } from './crypto.js';
export { neighbourGraph, thresholdCount } from './graph.js';
export type { NeighbourGraph } from './graph.js';
export { fromBase64, toBase64 } from './messages.js';
export type {
  MaskedInputRequest,
  PublicKeys,
  SetupReply,
  SetupRequest,
  ShareKeysReply,
  ShareKeysRequest,
  UnmaskReply,
  UnmaskRequest,
  WireShare,
} from './messages.js';
export { MAX_GROUP_BITS, addInto, dequantizeWeightedMean, groupMask, levelsFor, quantizationStep, quantizeWeighted, subtractInto } from './quantize.js';
export { SHAMIR_PRIME, combineShares, splitSecret } from './shamir.js';
export type { Share } from './shamir.js';
