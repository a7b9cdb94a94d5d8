/**
 * One learner's side of a SecAgg+ round (Bell et al. 2020, semi-honest variant), transport-free:
 * setup -> shareKeys -> mask -> unmask, each taking the trainer's request and returning the reply.
 * A fresh instance per round: keys and seeds never outlive it.
 */
import { agreeKey, expandMask, generateX25519, openBox, randomSeed, sealBox, type X25519KeyPair } from './crypto.js';
import {
  fromBase64,
  toBase64,
  type MaskedInputRequest,
  type PublicKeys,
  type SetupReply,
  type SetupRequest,
  type ShareKeysReply,
  type ShareKeysRequest,
  type UnmaskReply,
  type UnmaskRequest,
  type WireShare,
} from './messages.js';
import { addInto, quantizeWeighted, subtractInto } from './quantize.js';
import { splitSecret, type Share } from './shamir.js';

export const SHARE_INFO = 'oiafed-secagg/share-encryption';
export const MASK_INFO = 'oiafed-secagg/pairwise-mask';

/** The evaluation point of `id`'s share of `owner`'s secrets: its place in owner's sorted neighbourhood, from 1. */
export function sharePoint(ownerNeighbours: readonly string[], owner: string, id: string): number {
  const index = [...ownerNeighbours, owner].sort().indexOf(id);
  if (index < 0) throw new Error(`secagg: ${id} is not in the neighbourhood of ${owner}`);
  return index + 1;
}

export function shareAad(round: number, from: string, to: string): string {
  return `oiafed-secagg|${round}|${from}|${to}`;
}

interface HeldShares {
  seed: Share;
  key: Share;
}

export class SecAggClient {
  private readonly cKeys: X25519KeyPair = generateX25519();
  private readonly sKeys: X25519KeyPair = generateX25519();
  private readonly seed = randomSeed();
  private setupRequest: SetupRequest | undefined;
  private levels = 0;
  private totalWeight = 0;
  private peerKeys: Record<string, PublicKeys> = {};
  /** Shares this learner holds, by owner (its own included). */
  private readonly held = new Map<string, HeldShares>();
  /** Neighbours that shared with us and whose pairwise mask we added. */
  private masked: string[] | undefined;
  private unmasked = false;

  constructor(
    readonly id: string,
    private readonly weight: number,
  ) {
    if (!Number.isInteger(weight) || weight < 1) throw new Error(`secagg: weight must be a positive integer, got ${weight}`);
  }

  setup(request: SetupRequest): SetupReply {
    if (request.neighbours.includes(this.id)) throw new Error('secagg: a learner cannot be its own neighbour');
    this.setupRequest = request;
    return { round: request.round, c_pk: toBase64(this.cKeys.publicKey), s_pk: toBase64(this.sKeys.publicKey), weight: this.weight };
  }

  /** Shares the self-mask seed and the mask private key among the neighbours that advertised keys. */
  shareKeys(request: ShareKeysRequest): ShareKeysReply {
    const setup = this.requireSetup(request.round);
    const recipients = Object.keys(request.keys).filter((id) => id !== this.id);
    for (const id of recipients) if (!setup.neighbours.includes(id)) throw new Error(`secagg: ${id} is not a neighbour of ${this.id}`);
    if (recipients.length + 1 < setup.threshold) throw new Error(`secagg: ${recipients.length + 1} of the neighbourhood left, threshold ${setup.threshold}`);
    this.peerKeys = request.keys;
    this.levels = request.levels;
    this.totalWeight = request.total_weight;
    const holders = [...recipients, this.id];
    const points = holders.map((id) => sharePoint(setup.neighbours, this.id, id));
    const seedShares = splitSecret(this.seed, setup.threshold, points);
    const keyShares = splitSecret(this.sKeys.privateKey, setup.threshold, points);
    const ciphertexts: Record<string, string> = {};
    holders.forEach((to, i) => {
      if (to === this.id) {
        this.held.set(this.id, { seed: seedShares[i]!, key: keyShares[i]! });
        return;
      }
      const plaintext = Buffer.from(JSON.stringify({ x: points[i], seed: toBase64(seedShares[i]!.y), key: toBase64(keyShares[i]!.y) }));
      const key = agreeKey(this.cKeys.privateKey, fromBase64(request.keys[to]!.c_pk, `c_pk of ${to}`, 32), setup.salt, SHARE_INFO);
      ciphertexts[to] = toBase64(sealBox(key, plaintext, shareAad(setup.round, this.id, to)));
    });
    return { round: request.round, ciphertexts };
  }

  /**
   * Stores the shares addressed to this learner, then returns its masked input: the weighted,
   * quantized values plus its self mask plus +/- one pairwise mask per neighbour that shared.
   */
  mask(request: MaskedInputRequest, values: Float32Array): Uint32Array {
    const setup = this.requireSetup(request.round);
    if (this.levels === 0) throw new Error('secagg: masked input requested before share keys');
    const senders = Object.keys(request.ciphertexts);
    for (const from of senders) this.storeShare(setup, from, request.ciphertexts[from]!);
    const vector = quantizeWeighted(values, setup.clip, this.levels, this.weight, this.totalWeight, setup.bits);
    addInto(vector, expandMask(this.seed, vector.length), setup.bits);
    for (const peer of senders) {
      const mask = expandMask(this.pairwiseSeed(peer, setup.salt), vector.length);
      if (this.id < peer) addInto(vector, mask, setup.bits);
      else subtractInto(vector, mask, setup.bits);
    }
    this.masked = senders;
    return vector;
  }

  /**
   * Reveals, for each survivor, its self-mask seed share and, for each neighbour that dropped
   * after sharing, its mask-key share; never both for one learner, and only once per round.
   */
  unmask(request: UnmaskRequest): UnmaskReply {
    this.requireSetup(request.round);
    if (this.masked === undefined) throw new Error('secagg: unmask requested before masked input');
    if (this.unmasked) throw new Error('secagg: unmask was already answered this round');
    const survivors = new Set(request.survivors);
    if (request.dropped.some((id) => survivors.has(id))) throw new Error('secagg: a learner cannot be both a survivor and dropped');
    if (!survivors.has(this.id)) throw new Error('secagg: unmask asked of a learner that is not a survivor');
    this.unmasked = true;
    const reply: UnmaskReply = { round: request.round, seed_shares: {}, key_shares: {} };
    for (const id of request.survivors) {
      const held = this.held.get(id);
      if (held) reply.seed_shares[id] = wireShare(held.seed);
    }
    for (const id of request.dropped) {
      const held = this.held.get(id);
      if (held && id !== this.id) reply.key_shares[id] = wireShare(held.key);
    }
    return reply;
  }

  private storeShare(setup: SetupRequest, from: string, ciphertext: string): void {
    const peer = this.peerKeys[from];
    if (!peer || !setup.neighbours.includes(from)) throw new Error(`secagg: shares from ${from}, not a neighbour that advertised keys`);
    const key = agreeKey(this.cKeys.privateKey, fromBase64(peer.c_pk, `c_pk of ${from}`, 32), setup.salt, SHARE_INFO);
    let plain: { x: number; seed: string; key: string };
    try {
      plain = JSON.parse(Buffer.from(openBox(key, fromBase64(ciphertext, `shares from ${from}`), shareAad(setup.round, from, this.id))).toString()) as typeof plain;
    } catch (error) {
      // Name the sender: this learner fails the round because of what `from` sent it.
      throw new Error(`secagg: the shares ${from} sent cannot be opened (${(error as Error).message})`);
    }
    this.held.set(from, { seed: { x: plain.x, y: fromBase64(plain.seed, 'seed share') }, key: { x: plain.x, y: fromBase64(plain.key, 'key share') } });
  }

  private pairwiseSeed(peer: string, salt: string): Uint8Array {
    const keys = this.peerKeys[peer];
    if (!keys) throw new Error(`secagg: no mask key of ${peer}`);
    return agreeKey(this.sKeys.privateKey, fromBase64(keys.s_pk, `s_pk of ${peer}`, 32), salt, MASK_INFO);
  }

  private requireSetup(round: number): SetupRequest {
    const setup = this.setupRequest;
    if (!setup) throw new Error('secagg: no setup for this round');
    if (setup.round !== round) throw new Error(`secagg: request for round ${round}, this exchange is for round ${setup.round}`);
    return setup;
  }
}

function wireShare(share: Share): WireShare {
  return { x: share.x, y: toBase64(share.y) };
}
