/**
 * The primitives SecAgg+ needs, all from node:crypto: X25519 key pairs and agreement, HKDF-SHA256,
 * AES-256-GCM for the shares routed through the trainer, and AES-256-CTR as the PRG that expands a
 * 32-byte seed into a mask vector.
 */
import { createCipheriv, createDecipheriv, createPrivateKey, createPublicKey, diffieHellman, generateKeyPairSync, hkdfSync, randomBytes } from 'node:crypto';
import type { KeyObject } from 'node:crypto';

// DER prefixes of an X25519 key (RFC 8410): the raw 32 bytes follow them.
const PKCS8_PREFIX = Buffer.from('302e020100300506032b656e04220420', 'hex');
const SPKI_PREFIX = Buffer.from('302a300506032b656e032100', 'hex');

export interface X25519KeyPair {
  /** Raw 32-byte private scalar (the secret SecAgg shares for the mask key). */
  privateKey: Uint8Array;
  /** Raw 32-byte public key (what a learner advertises). */
  publicKey: Uint8Array;
}

export function generateX25519(): X25519KeyPair {
  const { privateKey, publicKey } = generateKeyPairSync('x25519');
  return {
    privateKey: new Uint8Array(privateKey.export({ format: 'der', type: 'pkcs8' }).subarray(PKCS8_PREFIX.length)),
    publicKey: new Uint8Array(publicKey.export({ format: 'der', type: 'spki' }).subarray(SPKI_PREFIX.length)),
  };
}

function privateKeyObject(raw: Uint8Array): KeyObject {
  if (raw.length !== 32) throw new Error(`x25519: private key must be 32 bytes, got ${raw.length}`);
  return createPrivateKey({ key: Buffer.concat([PKCS8_PREFIX, raw]), format: 'der', type: 'pkcs8' });
}

function publicKeyObject(raw: Uint8Array): KeyObject {
  if (raw.length !== 32) throw new Error(`x25519: public key must be 32 bytes, got ${raw.length}`);
  return createPublicKey({ key: Buffer.concat([SPKI_PREFIX, raw]), format: 'der', type: 'spki' });
}

let probeKey: KeyObject | undefined;

/**
 * Throws unless `raw` is an X25519 public key a peer can agree with: 32 bytes and not one of the
 * low-order points, whose shared secret is all zeros (OpenSSL refuses to derive it). The trainer
 * checks this at setup: a learner advertising such a key would otherwise make every neighbour's
 * key agreement with it throw, knocking honest learners out of the round.
 */
export function checkX25519PublicKey(raw: Uint8Array, what: string): void {
  if (raw.length !== 32) throw new Error(`secagg: ${what} has ${raw.length} bytes, expected 32`);
  probeKey ??= generateKeyPairSync('x25519').privateKey;
  try {
    diffieHellman({ privateKey: probeKey, publicKey: publicKeyObject(raw) });
  } catch {
    throw new Error(`secagg: ${what} is not a usable X25519 public key (a low-order point: key agreement with it fails)`);
  }
}

/** The public key of a raw private key (to check a reconstructed key against the advertised one). */
export function x25519PublicOf(privateKey: Uint8Array): Uint8Array {
  return new Uint8Array(createPublicKey(privateKeyObject(privateKey)).export({ format: 'der', type: 'spki' }).subarray(SPKI_PREFIX.length));
}

/**
 * A 32-byte key both sides derive from X25519(ours, theirs): HKDF-SHA256 with `salt` (the round's
 * context) and `info` (the purpose), so share-encryption and mask keys never coincide.
 */
export function agreeKey(privateKey: Uint8Array, peerPublicKey: Uint8Array, salt: string, info: string): Uint8Array {
  const shared = diffieHellman({ privateKey: privateKeyObject(privateKey), publicKey: publicKeyObject(peerPublicKey) });
  return new Uint8Array(hkdfSync('sha256', shared, Buffer.from(salt), Buffer.from(info), 32));
}

/** AES-256-GCM: 12-byte random IV || ciphertext || 16-byte tag; `aad` binds sender, recipient and round. */
export function sealBox(key: Uint8Array, plaintext: Uint8Array, aad: string): Uint8Array {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(Buffer.from(aad));
  const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return new Uint8Array(Buffer.concat([iv, body, cipher.getAuthTag()]));
}

/** Opens a sealBox; throws when the key, the AAD or any byte is wrong. */
export function openBox(key: Uint8Array, sealed: Uint8Array, aad: string): Uint8Array {
  if (sealed.length < 28) throw new Error('secagg: ciphertext too short');
  const iv = sealed.subarray(0, 12);
  const tag = sealed.subarray(sealed.length - 16);
  const decipher = createDecipheriv('aes-256-gcm', key, iv);
  decipher.setAAD(Buffer.from(aad));
  decipher.setAuthTag(tag);
  return new Uint8Array(Buffer.concat([decipher.update(sealed.subarray(12, sealed.length - 16)), decipher.final()]));
}

/** 32 fresh random bytes (a self-mask seed). */
export function randomSeed(): Uint8Array {
  return new Uint8Array(randomBytes(32));
}

const ZERO_IV = Buffer.alloc(16);

/**
 * Expands `seed` into `length` 32-bit words (AES-256-CTR keystream, zero IV: each seed is used for
 * one vector only). A seeded PRG is what lets the trainer recompute a dropped learner's masks.
 */
export function expandMask(seed: Uint8Array, length: number): Uint32Array {
  const cipher = createCipheriv('aes-256-ctr', seed, ZERO_IV);
  const stream = cipher.update(Buffer.alloc(length * 4));
  const out = new Uint32Array(length);
  // Copied bytewise: the keystream Buffer may sit at an unaligned offset of Node's pool.
  new Uint8Array(out.buffer).set(stream.subarray(0, length * 4));
  return out;
}
