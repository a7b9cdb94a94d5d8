/**
 * The trainer's side of a SecAgg+ round, transport-free. It only routes: it sees public keys,
 * ciphertexts it cannot open, masked vectors, and at the end the shares that rebuild the self
 * masks of survivors and the mask keys of learners that dropped after sharing: enough to unmask
 * the sum, never one learner's input. Each stage: `xRequest(id)` for every live learner, then
 * `receiveX(id, reply)` for each that answered; learners that did not answer are dropped.
 */
import { MASK_INFO, sharePoint } from './client.js';
import { agreeKey, checkX25519PublicKey, expandMask, x25519PublicOf } from './crypto.js';
import { neighbourGraph, thresholdCount, type NeighbourGraph } from './graph.js';
import {
  fromBase64,
  type MaskedInputRequest,
  type PublicKeys,
  type SetupReply,
  type SetupRequest,
  type ShareKeysReply,
  type ShareKeysRequest,
  type UnmaskReply,
  type UnmaskRequest,
} from './messages.js';
import { addInto, dequantizeWeightedMean, levelsFor, quantizationStep, subtractInto } from './quantize.js';
import { SHARE_BYTES, combineShares, type Share } from './shamir.js';

/**
 * Longest share ciphertext (base64 characters) the trainer routes. An honest one is about 320:
 * AES-GCM (28 bytes) around {x, seed share, key share} as JSON with two 66-byte shares in base64.
 * Anything longer would only make the trainer forward a learner's bulk to its neighbours.
 */
export const MAX_SHARE_CIPHERTEXT_CHARS = 512;

export interface SecAggServerOptions {
  round: number;
  ids: readonly string[];
  /** Neighbours per learner (k); >= n - 1 gives the complete graph. */
  neighbours: number;
  /** Fraction of the neighbourhood in (0, 1) or a count. */
  threshold: number;
  bits: number;
  clip: number;
  /** Length of the plain vectors (the mask vectors are one longer: the weight). */
  length: number;
  salt: string;
}

export interface SecAggResult {
  /** Weighted mean of the survivors' inputs, decoded. */
  mean: Float32Array;
  /** Total weight of the learners whose input is in the sum. */
  totalWeight: number;
  /** Learners whose input is in the sum. */
  included: string[];
  /** Per-coordinate bound on |mean - exact weighted mean| from quantization (for values inside the clip range). */
  quantizationStep: number;
  /** The unmasked sum in the group (for tests). */
  sum: Uint32Array;
  /** Shares not interpolated because they were not at their holder's point or not SHARE_BYTES long ("holder's share of owner"). */
  leftOut: string[];
}

export class SecAggServer {
  readonly graph: NeighbourGraph;
  readonly thresholds: Record<string, number> = {};
  private readonly keys = new Map<string, PublicKeys & { weight: number }>();
  private readonly ciphertexts = new Map<string, Record<string, string>>();
  /** Learners whose masked input arrived; their vectors are folded into `sum` at once (O(model) memory). */
  private readonly masked = new Set<string>();
  private sum: Uint32Array | undefined;
  private readonly answers = new Map<string, UnmaskReply>();
  private readonly leftOut: string[] = [];
  levels = 0;
  /** W: total weight of the learners that advertised keys. */
  totalWeight = 0;

  constructor(private readonly options: SecAggServerOptions) {
    if (options.ids.length < 2) throw new Error('secagg: needs at least 2 learners in a round');
    this.graph = neighbourGraph(options.ids, options.neighbours);
    for (const id of options.ids) this.thresholds[id] = thresholdCount(options.threshold, this.graph[id]!.length + 1);
  }

  get round(): number {
    return this.options.round;
  }

  setupRequest(id: string): SetupRequest {
    const { round, salt, bits, clip } = this.options;
    return { round, salt, bits, clip, threshold: this.thresholds[id]!, neighbours: this.graph[id]! };
  }

  receiveSetup(id: string, reply: SetupReply): void {
    this.requireRound(id, reply);
    checkX25519PublicKey(fromBase64(reply.c_pk, `c_pk of ${id}`, 32), `c_pk of ${id}`);
    checkX25519PublicKey(fromBase64(reply.s_pk, `s_pk of ${id}`, 32), `s_pk of ${id}`);
    if (!Number.isInteger(reply.weight) || reply.weight < 1) throw new Error(`secagg: weight of ${id} is not a positive integer`);
    this.keys.set(id, { c_pk: reply.c_pk, s_pk: reply.s_pk, weight: reply.weight });
  }

  /** Learners that advertised keys; fixes the round's quantization levels from their total weight. */
  shareKeysTargets(): string[] {
    const alive = [...this.keys.keys()].sort();
    this.requireQuorum(alive, 'advertised keys');
    this.totalWeight = alive.reduce((sum, id) => sum + this.keys.get(id)!.weight, 0);
    this.levels = levelsFor(this.options.bits, alive.length, this.totalWeight);
    return alive;
  }

  shareKeysRequest(id: string): ShareKeysRequest {
    const keys: Record<string, PublicKeys> = {};
    for (const peer of [...this.graph[id]!, id]) {
      const k = this.keys.get(peer);
      if (k) keys[peer] = { c_pk: k.c_pk, s_pk: k.s_pk };
    }
    return { round: this.options.round, keys, levels: this.levels, total_weight: this.totalWeight };
  }

  receiveShareKeys(id: string, reply: ShareKeysReply): void {
    this.requireRound(id, reply);
    const expected = this.graph[id]!.filter((peer) => this.keys.has(peer)).sort();
    const got = Object.keys(reply?.ciphertexts ?? {}).sort();
    if (got.join(',') !== expected.join(',')) throw new Error(`secagg: ${id} sent shares for [${got}], expected [${expected}]`);
    for (const [to, text] of Object.entries(reply.ciphertexts ?? {})) {
      if (typeof text !== 'string' || text.length > MAX_SHARE_CIPHERTEXT_CHARS) {
        throw new Error(`secagg: ${id}'s shares for ${to} are not a string of at most ${MAX_SHARE_CIPHERTEXT_CHARS} characters`);
      }
    }
    this.ciphertexts.set(id, reply.ciphertexts);
  }

  /** Learners that shared their secrets: they are asked for masked input. */
  maskedInputTargets(): string[] {
    const alive = [...this.ciphertexts.keys()].sort();
    this.requireQuorum(alive, 'shared their secrets');
    return alive;
  }

  /** The ciphertexts addressed to `id`, from each neighbour that shared (routed, never opened). */
  maskedInputRequest(id: string): MaskedInputRequest {
    const ciphertexts: Record<string, string> = {};
    for (const peer of this.graph[id]!) {
      const sent = this.ciphertexts.get(peer);
      if (sent?.[id] !== undefined) ciphertexts[peer] = sent[id]!;
    }
    return { round: this.options.round, ciphertexts };
  }

  receiveMaskedInput(id: string, vector: Uint32Array): void {
    if (vector.length !== this.options.length + 1) throw new Error(`secagg: masked input of ${id} has ${vector.length} elements, expected ${this.options.length + 1}`);
    if (this.masked.has(id)) throw new Error(`secagg: a second masked input from ${id}`);
    const { bits } = this.options;
    // Out-of-group words would be reduced mod 2^bits silently; a vector holding one is not a masked input.
    const outside = bits < 32 ? vector.findIndex((word) => word >= 2 ** bits) : -1;
    if (outside >= 0) throw new Error(`secagg: masked input of ${id} has ${vector[outside]} at index ${outside}, outside Z_2^${bits}`);
    this.sum ??= new Uint32Array(this.options.length + 1);
    addInto(this.sum, vector, this.options.bits);
    this.masked.add(id);
  }

  /** Survivors (sent masked input): each is asked for the shares that unmask the sum. */
  unmaskTargets(): string[] {
    const alive = [...this.masked.keys()].sort();
    this.requireQuorum(alive, 'sent masked input');
    return alive;
  }

  unmaskRequest(id: string): UnmaskRequest {
    const survivors = [...this.masked.keys()].sort();
    const neighbourhood = new Set([...this.graph[id]!, id]);
    const dropped = [...this.ciphertexts.keys()].filter((peer) => !this.masked.has(peer) && neighbourhood.has(peer)).sort();
    return { round: this.options.round, survivors: survivors.filter((peer) => neighbourhood.has(peer)), dropped };
  }

  receiveUnmask(id: string, reply: UnmaskReply): void {
    if (!reply || !isRecord(reply.seed_shares) || !isRecord(reply.key_shares)) throw new Error(`secagg: unmask reply of ${id} is malformed`);
    this.requireRound(id, reply);
    // Only what was asked: seed shares of survivors, key shares of learners that dropped after
    // sharing. A reply naming anything else is refused whole, so the trainer never holds both
    // secrets of one learner, which together would unmask its input.
    const asked = this.unmaskRequest(id);
    const unasked = (kind: string, owners: string[], allowed: readonly string[]) => {
      const extra = owners.filter((owner) => !allowed.includes(owner));
      if (extra.length > 0) throw new Error(`secagg: ${id}'s unmask reply holds ${kind} of [${extra}], which were not asked for; refused`);
    };
    unasked('self-mask seed shares', Object.keys(reply.seed_shares), asked.survivors);
    unasked('mask-key shares', Object.keys(reply.key_shares), asked.dropped);
    this.answers.set(id, reply);
  }

  /**
   * Unmasks the sum of the survivors' inputs: removes each survivor's self mask (seed rebuilt from
   * `t` shares) and the pairwise masks survivors share with learners that dropped after sharing
   * (mask key rebuilt, checked against the advertised public key). Throws when some secret has
   * fewer than its threshold of shares: the round fails and reveals nothing.
   */
  finish(): SecAggResult {
    const { bits, clip } = this.options;
    const survivors = [...this.masked.keys()].sort();
    const sum = (this.sum ?? new Uint32Array(this.options.length + 1)).slice();
    for (const id of survivors) subtractInto(sum, expandMask(this.rebuild(id, 'seed_shares', 32), sum.length), bits);
    const dropped = [...this.ciphertexts.keys()].filter((id) => !this.masked.has(id));
    for (const gone of dropped) this.removePairwiseMasks(sum, gone, survivors);
    const { mean, includedWeight } = dequantizeWeightedMean(sum, clip, this.levels, survivors.length, this.totalWeight);
    const bound = quantizationStep(clip, this.levels, survivors.length, this.totalWeight / includedWeight);
    return { mean, totalWeight: includedWeight, included: survivors, quantizationStep: bound, sum, leftOut: [...this.leftOut] };
  }

  private removePairwiseMasks(sum: Uint32Array, gone: string, survivors: readonly string[]): void {
    const maskingPeers = survivors.filter((id) => this.graph[gone]!.includes(id));
    if (maskingPeers.length === 0) return;
    const privateKey = this.rebuild(gone, 'key_shares', 32);
    if (Buffer.compare(Buffer.from(x25519PublicOf(privateKey)), Buffer.from(fromBase64(this.keys.get(gone)!.s_pk, 's_pk', 32))) !== 0) {
      throw new Error(`secagg: the rebuilt mask key of ${gone} does not match its public key (inconsistent shares)`);
    }
    for (const id of maskingPeers) {
      const mask = expandMask(agreeKey(privateKey, fromBase64(this.keys.get(id)!.s_pk, 's_pk', 32), this.options.salt, MASK_INFO), sum.length);
      // The survivor added the mask when its id sorts first, subtracted it otherwise: undo that.
      if (id < gone) subtractInto(sum, mask, this.options.bits);
      else addInto(sum, mask, this.options.bits);
    }
  }

  /** One secret of `owner` from the shares the responders returned. */
  private rebuild(owner: string, kind: 'seed_shares' | 'key_shares', length: number): Uint8Array {
    const shares: Share[] = [];
    const misplaced: string[] = [];
    for (const [holder, reply] of this.answers) {
      const wire = reply[kind][owner];
      if (!wire) continue;
      // The graph fixes each holder's point: a share at any other (zero, repeated, out of range:
      // an owner that shared inconsistently or a holder that lies) is left out, never interpolated.
      const y = wire.x === sharePoint(this.graph[owner]!, owner, holder) && typeof wire.y === 'string' ? fromBase64(wire.y, 'share') : undefined;
      if (y?.length !== SHARE_BYTES) {
        misplaced.push(holder);
        this.leftOut.push(`${holder}'s share of ${owner}`);
        continue;
      }
      shares.push({ x: wire.x, y });
    }
    const t = this.thresholds[owner]!;
    if (shares.length < t) {
      const what = kind === 'seed_shares' ? 'self-mask seed' : 'mask key';
      const bad = misplaced.length > 0 ? ` (plus ${misplaced.length} left out, not at their point or not ${SHARE_BYTES} bytes, from [${misplaced}])` : '';
      throw new Error(`secagg: only ${shares.length} shares of ${owner}'s ${what} came back${bad}, ${t} needed; the sum stays masked`);
    }
    return combineShares(shares, t, length);
  }

  private requireRound(id: string, reply: unknown): void {
    const round = isRecord(reply) ? reply.round : undefined;
    if (round !== this.options.round) throw new Error(`secagg: ${id} replied for round ${String(round)}, the current round is ${this.options.round}`);
  }

  /** Every learner in `alive` must still have `t` of its neighbourhood alive, or the round cannot finish. */
  private requireQuorum(alive: readonly string[], stage: string): void {
    const set = new Set(alive);
    if (alive.length < 2) throw new Error(`secagg: only ${alive.length} learners ${stage}; at least 2 are needed`);
    for (const id of alive) {
      const live = [...this.graph[id]!, id].filter((peer) => set.has(peer)).length;
      if (live < this.thresholds[id]!) {
        throw new Error(`secagg: only ${live} of ${id}'s neighbourhood ${stage}, threshold ${this.thresholds[id]}; the round cannot be unmasked`);
      }
    }
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
