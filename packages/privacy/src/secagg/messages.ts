/**
 * The SecAgg+ messages between trainer and learner, JSON-shaped (binary values as base64), one
 * request/reply pair per stage: setup (advertise keys), share keys, masked input, unmask.
 */

/** Stage 0, trainer -> learner: the round's parameters and this learner's neighbours. */
export interface SetupRequest {
  round: number;
  /** Random per round: binds keys, shares and masks to this round. */
  salt: string;
  bits: number;
  clip: number;
  /** Shares needed to rebuild one of this learner's secrets (count, > half the neighbourhood). */
  threshold: number;
  neighbours: string[];
}

/** Stage 0, learner -> trainer: two fresh X25519 public keys and the learner's integer weight. */
export interface SetupReply {
  /** The round the reply answers (replies for any other round are refused). */
  round: number;
  /** Key for encrypting shares to this learner (never revealed). */
  c_pk: string;
  /** Key for pairwise masks (its private half is shared, and rebuilt if the learner drops). */
  s_pk: string;
  weight: number;
}

export interface PublicKeys {
  c_pk: string;
  s_pk: string;
}

/** Stage 1, trainer -> learner: the public keys of the neighbours that advertised, and the round's levels. */
export interface ShareKeysRequest {
  round: number;
  keys: Record<string, PublicKeys>;
  levels: number;
  /** Sum of the weights of the learners that advertised keys (W). */
  total_weight: number;
}

/** Stage 1, learner -> trainer: one AES-GCM ciphertext of shares per neighbour, addressed by id. */
export interface ShareKeysReply {
  round: number;
  ciphertexts: Record<string, string>;
}

/** Stage 2, trainer -> learner: the ciphertexts addressed to this learner, by sender. */
export interface MaskedInputRequest {
  round: number;
  ciphertexts: Record<string, string>;
}

/** Stage 3, trainer -> learner: who sent masked input and which neighbours dropped before. */
export interface UnmaskRequest {
  round: number;
  survivors: string[];
  dropped: string[];
}

export interface WireShare {
  x: number;
  y: string;
}

/** Stage 3, learner -> trainer: self-mask seed shares of survivors, mask-key shares of the dropped. */
export interface UnmaskReply {
  round: number;
  seed_shares: Record<string, WireShare>;
  key_shares: Record<string, WireShare>;
}

export function toBase64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
}

export function fromBase64(text: unknown, what: string, length?: number): Uint8Array {
  if (typeof text !== 'string') throw new Error(`secagg: ${what} is not a base64 string`);
  const bytes = new Uint8Array(Buffer.from(text, 'base64'));
  if (length !== undefined && bytes.length !== length) throw new Error(`secagg: ${what} has ${bytes.length} bytes, expected ${length}`);
  return bytes;
}
