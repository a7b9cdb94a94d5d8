/**
 * Shamir t-of-n secret sharing over the prime field GF(2^521 - 1) (a Mersenne prime, so every
 * 32-byte secret is a field element). Polynomial coefficients come from node:crypto's CSPRNG by
 * rejection sampling (no modulo bias). Used by SecAgg+ to share each learner's self-mask seed and
 * mask private key among its neighbours.
 */
import { randomBytes } from 'node:crypto';

/** p = 2^521 - 1. */
export const SHAMIR_PRIME = (1n << 521n) - 1n;
/** Bytes of one encoded field element (521 bits). */
export const SHARE_BYTES = 66;

export interface Share {
  /** Evaluation point, 1..n (never 0: f(0) is the secret). */
  x: number;
  /** f(x) as SHARE_BYTES big-endian bytes. */
  y: Uint8Array;
}

function mod(a: bigint): bigint {
  const r = a % SHAMIR_PRIME;
  return r < 0n ? r + SHAMIR_PRIME : r;
}

function modPow(base: bigint, exp: bigint): bigint {
  let result = 1n;
  let b = mod(base);
  let e = exp;
  while (e > 0n) {
    if (e & 1n) result = (result * b) % SHAMIR_PRIME;
    b = (b * b) % SHAMIR_PRIME;
    e >>= 1n;
  }
  return result;
}

function modInverse(a: bigint): bigint {
  if (mod(a) === 0n) throw new Error('shamir: no inverse of 0 (repeated evaluation point)');
  return modPow(a, SHAMIR_PRIME - 2n);
}

export function bytesToBigInt(bytes: Uint8Array): bigint {
  let value = 0n;
  for (const byte of bytes) value = (value << 8n) | BigInt(byte);
  return value;
}

export function bigIntToBytes(value: bigint, length: number): Uint8Array {
  const out = new Uint8Array(length);
  let v = value;
  for (let i = length - 1; i >= 0; i--) {
    out[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  if (v !== 0n) throw new Error(`shamir: value does not fit in ${length} bytes`);
  return out;
}

/** A uniform field element from the CSPRNG (rejection sampling over 521-bit draws). */
function randomFieldElement(): bigint {
  for (;;) {
    const bytes = randomBytes(SHARE_BYTES);
    bytes[0]! &= 0x01; // keep 521 bits
    const value = bytesToBigInt(bytes);
    if (value < SHAMIR_PRIME) return value;
  }
}

/**
 * Splits `secret` (at most 64 bytes) into one share per point in `xs` (distinct, 1..2^31);
 * any `threshold` of them recover it, fewer reveal nothing about it.
 */
export function splitSecret(secret: Uint8Array, threshold: number, xs: readonly number[]): Share[] {
  if (!Number.isInteger(threshold) || threshold < 1) throw new Error(`shamir: threshold must be an integer >= 1, got ${threshold}`);
  if (threshold > xs.length) throw new Error(`shamir: threshold ${threshold} exceeds the ${xs.length} shares`);
  if (secret.length > 64) throw new Error('shamir: secret longer than 64 bytes');
  if (new Set(xs).size !== xs.length || xs.some((x) => !Number.isInteger(x) || x < 1)) {
    throw new Error('shamir: evaluation points must be distinct integers >= 1');
  }
  const coefficients = [bytesToBigInt(secret)];
  for (let k = 1; k < threshold; k++) coefficients.push(randomFieldElement());
  return xs.map((x) => {
    const bx = BigInt(x);
    let y = 0n;
    for (let k = coefficients.length - 1; k >= 0; k--) y = (y * bx + coefficients[k]!) % SHAMIR_PRIME;
    return { x, y: bigIntToBytes(y, SHARE_BYTES) };
  });
}

/**
 * Recovers the secret (as `length` bytes) from at least `threshold` shares by Lagrange
 * interpolation at 0. Throws when fewer than `threshold` shares are given: with fewer, any secret
 * is equally likely, so no answer would be meaningful.
 */
export function combineShares(shares: readonly Share[], threshold: number, length: number): Uint8Array {
  if (shares.length < threshold) {
    throw new Error(`shamir: ${shares.length} shares given, ${threshold} needed to reconstruct`);
  }
  const used = shares.slice(0, threshold);
  if (new Set(used.map((s) => s.x)).size !== used.length) throw new Error('shamir: repeated evaluation point');
  const xs = used.map((s) => BigInt(s.x));
  let secret = 0n;
  used.forEach((share, i) => {
    let numerator = 1n;
    let denominator = 1n;
    xs.forEach((xj, j) => {
      if (j === i) return;
      numerator = (numerator * mod(-xj)) % SHAMIR_PRIME;
      denominator = (denominator * mod(xs[i]! - xj)) % SHAMIR_PRIME;
    });
    const term = (bytesToBigInt(share.y) * numerator) % SHAMIR_PRIME;
    secret = (secret + term * modInverse(denominator)) % SHAMIR_PRIME;
  });
  return bigIntToBytes(secret, length);
}
