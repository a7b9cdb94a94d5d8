import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  SecAggClient,
  SecAggServer,
  combineShares,
  levelsFor,
  neighbourGraph,
  quantizeWeighted,
  dequantizeWeightedMean,
  quantizationStep,
  splitSecret,
  thresholdCount,
} from '../src/index.js';

/** Runs a whole SecAgg+ round in-process; `dropAfter` names learners that stop answering after a stage. */
function runRound(
  inputs: Record<string, { values: Float32Array; weight: number }>,
  options: { neighbours: number; threshold: number; bits?: number; clip?: number; dropAfter?: Record<string, 'setup' | 'shares' | 'masked'> },
) {
  const ids = Object.keys(inputs).sort();
  const length = inputs[ids[0]!]!.values.length;
  const server = new SecAggServer({
    round: 3,
    ids,
    neighbours: options.neighbours,
    threshold: options.threshold,
    bits: options.bits ?? 32,
    clip: options.clip ?? 1,
    length,
    salt: randomBytes(16).toString('hex'),
  });
  const clients = new Map(ids.map((id) => [id, new SecAggClient(id, inputs[id]!.weight)]));
  const drop = options.dropAfter ?? {};
  for (const id of ids) server.receiveSetup(id, clients.get(id)!.setup(server.setupRequest(id)));
  for (const id of server.shareKeysTargets()) if (drop[id] !== 'setup') server.receiveShareKeys(id, clients.get(id)!.shareKeys(server.shareKeysRequest(id)));
  const masked: Record<string, Uint32Array> = {};
  for (const id of server.maskedInputTargets()) {
    if (drop[id] === 'shares') continue;
    masked[id] = clients.get(id)!.mask(server.maskedInputRequest(id), inputs[id]!.values);
    server.receiveMaskedInput(id, masked[id]!);
  }
  for (const id of server.unmaskTargets()) if (drop[id] !== 'masked') server.receiveUnmask(id, clients.get(id)!.unmask(server.unmaskRequest(id)));
  return { server, masked };
}

function randomInputs(n: number, length: number, seed = 1): Record<string, { values: Float32Array; weight: number }> {
  let s = seed;
  const next = () => ((s = (s * 1103515245 + 12345) % 2147483648) / 2147483648) * 2 - 1;
  const inputs: Record<string, { values: Float32Array; weight: number }> = {};
  for (let i = 0; i < n; i++) inputs[`learner_${i}`] = { values: Float32Array.from({ length }, () => next() * 0.9), weight: 10 + i * 7 };
  return inputs;
}

function weightedMean(inputs: Record<string, { values: Float32Array; weight: number }>, ids: readonly string[]): Float64Array {
  const length = inputs[ids[0]!]!.values.length;
  const out = new Float64Array(length);
  const total = ids.reduce((s, id) => s + inputs[id]!.weight, 0);
  for (const id of ids) for (let i = 0; i < length; i++) out[i] += (inputs[id]!.values[i]! * inputs[id]!.weight) / total;
  return out;
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

describe('Shamir t-of-n over GF(2^521 - 1)', () => {
  it('any t shares rebuild the secret; t - 1 shares refuse', () => {
    const secret = new Uint8Array(randomBytes(32));
    const shares = splitSecret(secret, 3, [1, 2, 3, 4, 5]);
    expect(Buffer.from(combineShares([shares[4]!, shares[0]!, shares[2]!], 3, 32)).equals(Buffer.from(secret))).toBe(true);
    expect(Buffer.from(combineShares(shares.slice(1, 4), 3, 32)).equals(Buffer.from(secret))).toBe(true);
    expect(() => combineShares(shares.slice(0, 2), 3, 32)).toThrow(/2 shares given, 3 needed/);
  });

  it('t - 1 shares are consistent with any other secret (fresh CSPRNG coefficients each split)', () => {
    const a = splitSecret(new Uint8Array(32).fill(1), 2, [1, 2]);
    const b = splitSecret(new Uint8Array(32).fill(1), 2, [1, 2]);
    expect(Buffer.from(a[0]!.y).equals(Buffer.from(b[0]!.y))).toBe(false);
  });
});

describe('SecAgg+ graph and threshold', () => {
  it('builds a symmetric k-regular graph over a random ring, complete when k >= n - 1', () => {
    const ids = Array.from({ length: 20 }, (_, i) => `l${String(i).padStart(2, '0')}`);
    const graph = neighbourGraph(ids, 6);
    for (const id of ids) {
      expect(graph[id]).toHaveLength(6);
      expect(graph[id]).not.toContain(id);
      for (const peer of graph[id]!) expect(graph[peer]).toContain(id);
    }
    expect(neighbourGraph(ids.slice(0, 5), 10)['l00']).toEqual(['l01', 'l02', 'l03', 'l04']);
  });

  it('takes a fraction or a count, and refuses a threshold of half the neighbourhood or less', () => {
    expect(thresholdCount(0.6, 10)).toBe(6);
    expect(thresholdCount(7, 10)).toBe(7);
    expect(() => thresholdCount(5, 10)).toThrow(/more than half/);
    expect(() => thresholdCount(11, 10)).toThrow(/exceeds the neighbourhood/);
  });
});

describe('SecAgg+ round (in-process)', () => {
  it('unmasks the weighted mean within one quantization step, on a sparse graph', () => {
    const inputs = randomInputs(12, 500);
    const { server } = runRound(inputs, { neighbours: 6, threshold: 5 });
    const result = server.finish();
    const ids = Object.keys(inputs).sort();
    expect(result.included).toEqual(ids);
    expect(result.totalWeight).toBe(ids.reduce((s, id) => s + inputs[id]!.weight, 0));
    expect(maxAbsDiff(result.mean, weightedMean(inputs, ids))).toBeLessThanOrEqual(result.quantizationStep);
  });

  it('recovers the masks of learners that dropped after sharing, and keeps those that dropped after masking', () => {
    const inputs = randomInputs(8, 200, 7);
    const dropAfter = { learner_1: 'shares', learner_5: 'masked', learner_6: 'masked' } as const;
    const { server } = runRound(inputs, { neighbours: 7, threshold: 5, dropAfter });
    const result = server.finish();
    const included = Object.keys(inputs).filter((id) => id !== 'learner_1').sort();
    expect(result.included).toEqual(included);
    expect(maxAbsDiff(result.mean, weightedMean(inputs, included))).toBeLessThanOrEqual(result.quantizationStep);
  });

  it('fails, unmasking nothing, when more than n - t learners are gone before unmasking', () => {
    const inputs = randomInputs(6, 50, 3);
    const dropAfter = { learner_0: 'masked', learner_1: 'masked', learner_2: 'masked' } as const;
    const { server } = runRound(inputs, { neighbours: 5, threshold: 4, dropAfter });
    expect(() => server.finish()).toThrow(/3 shares of learner_0's self-mask seed came back, 4 needed/);
  });

  it('masked vectors are uniform in Z_2^32 (chi-square on residues) even for a constant input', () => {
    const length = 20_000;
    const inputs: Record<string, { values: Float32Array; weight: number }> = {};
    for (let i = 0; i < 4; i++) inputs[`l${i}`] = { values: new Float32Array(length).fill(0.25), weight: 1 };
    const { masked } = runRound(inputs, { neighbours: 3, threshold: 3 });
    for (const vector of Object.values(masked)) {
      for (const shift of [0, 24]) {
        const bins = new Float64Array(256);
        for (let i = 0; i < length; i++) bins[(vector[i]! >>> shift) & 0xff]! += 1;
        const expected = length / 256;
        const chi2 = bins.reduce((s, c) => s + (c - expected) ** 2 / expected, 0);
        // 255 degrees of freedom: P(chi2 > 340) < 3e-4 under uniformity; the plain encoding is one bin.
        expect(chi2).toBeLessThan(340);
      }
    }
  });

  it('quantization round-trips a weighted mean within one step', () => {
    const levels = levelsFor(32, 2, 30);
    const a = quantizeWeighted(Float32Array.from([0.5, -1, 1, 0]), 1, levels, 10, 30, 32);
    const b = quantizeWeighted(Float32Array.from([-0.5, 1, 1, 0.2]), 1, levels, 20, 30, 32);
    const sum = new Uint32Array(5);
    for (let i = 0; i < 5; i++) sum[i] = (a[i]! + b[i]!) >>> 0;
    const { mean, includedWeight } = dequantizeWeightedMean(sum, 1, levels, 2, 30);
    expect(includedWeight).toBe(30);
    expect(maxAbsDiff(mean, [-1 / 6, 1 / 3, 1, 0.4 / 3])).toBeLessThanOrEqual(quantizationStep(1, levels, 2));
  });

  it('with 8 quantization bits the error is visible but stays within the stated bound', () => {
    const inputs = randomInputs(5, 300, 11);
    const { server } = runRound(inputs, { neighbours: 4, threshold: 3, bits: 8 });
    const result = server.finish();
    const error = maxAbsDiff(result.mean, weightedMean(inputs, Object.keys(inputs).sort()));
    expect(error).toBeGreaterThan(1e-3);
    expect(error).toBeLessThanOrEqual(result.quantizationStep);
  });

  it('a learner answers one unmask request per round and never reveals both secrets of one peer', () => {
    const inputs = randomInputs(4, 10, 5);
    const ids = Object.keys(inputs).sort();
    const server = new SecAggServer({ round: 1, ids, neighbours: 3, threshold: 3, bits: 32, clip: 1, length: 10, salt: 'salt' });
    const clients = new Map(ids.map((id) => [id, new SecAggClient(id, inputs[id]!.weight)]));
    for (const id of ids) server.receiveSetup(id, clients.get(id)!.setup(server.setupRequest(id)));
    for (const id of server.shareKeysTargets()) server.receiveShareKeys(id, clients.get(id)!.shareKeys(server.shareKeysRequest(id)));
    for (const id of server.maskedInputTargets()) server.receiveMaskedInput(id, clients.get(id)!.mask(server.maskedInputRequest(id), inputs[id]!.values));
    const client = clients.get(ids[0]!)!;
    // A trainer claiming a learner both survived and dropped would get its seed and its mask key.
    expect(() => client.unmask({ round: 1, survivors: [ids[0]!, ids[1]!], dropped: [ids[1]!] })).toThrow(/both a survivor and dropped/);
    const first = client.unmask({ round: 1, survivors: [ids[0]!, ids[2]!, ids[3]!], dropped: [ids[1]!] });
    expect(Object.keys(first.key_shares)).toEqual([ids[1]]);
    expect(Object.keys(first.seed_shares)).not.toContain(ids[1]);
    // Asked again with another story (ids[1] survived), it refuses: the seed of ids[1] stays hidden.
    expect(() => client.unmask({ round: 1, survivors: ids, dropped: [] })).toThrow(/already answered/);
  });

  it('shares are sealed for their recipient: another sender, recipient or round fails AES-GCM', () => {
    const ids = ['a', 'b', 'c'];
    const server = new SecAggServer({ round: 2, ids, neighbours: 2, threshold: 2, bits: 32, clip: 1, length: 4, salt: 's' });
    const clients = new Map(ids.map((id) => [id, new SecAggClient(id, 1)]));
    for (const id of ids) server.receiveSetup(id, clients.get(id)!.setup(server.setupRequest(id)));
    server.shareKeysTargets();
    const replies = new Map(ids.map((id) => [id, clients.get(id)!.shareKeys(server.shareKeysRequest(id))]));
    const forC = { a: replies.get('a')!.ciphertexts.c!, b: replies.get('b')!.ciphertexts.c! };
    // What a sent to c, relabelled as coming from b, does not open.
    expect(() => clients.get('c')!.mask({ round: 2, ciphertexts: { b: forC.a } }, new Float32Array(4))).toThrow();
    // What a sent to b does not open at c.
    expect(() => clients.get('c')!.mask({ round: 2, ciphertexts: { a: replies.get('a')!.ciphertexts.b! } }, new Float32Array(4))).toThrow();
    expect(clients.get('c')!.mask({ round: 2, ciphertexts: forC }, new Float32Array(4))).toHaveLength(5);
  });
});
