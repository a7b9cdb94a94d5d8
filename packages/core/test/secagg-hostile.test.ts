/**
 * Hostile SecAgg+ replies over real gRPC on 127.0.0.1 (issue 16, "no gRPC test performs such an
 * attack yet"): a real Trainer with secure aggregation, five honest scripted learners and one
 * learner, "evil", that runs the real protocol (SecAggClient underneath) but corrupts one message
 * per case. Each case checks that the trainer keeps serving, names evil and the reason in the
 * round's record or log, and that the round ends as SecAgg+ says it must: with the weighted mean of
 * exactly the learners whose input is in the sum (compared with the plain mean computed here), or,
 * where the sum cannot be unmasked, failed with the model unchanged.
 */
import { createAggregator, registerBuiltins as registerBuiltinAggregators } from '@oiafed/aggregators';
import { createModel, registerBuiltinModels, selectBackend } from '@oiafed/models';
import {
  SHARE_INFO,
  agreeKey,
  generateX25519,
  levelsFor,
  quantizationStep,
  sealBox,
  shareAad,
  sharePoint,
  splitSecret,
  type SetupRequest,
  type ShareKeysReply,
  type ShareKeysRequest,
  type UnmaskReply,
} from '@oiafed/privacy';
import { GrpcTransport, type CallHandler, type Payload, type Transport } from '@oiafed/transport';
import { randomBytes } from 'node:crypto';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { SecureAggregationMethods, type SecureAggregationSettings } from '../src/secure-aggregation.js';
import { scriptedLearnerMetadata, serveScriptedLearner } from '../src/testing/scripted-learner.js';
import { Trainer, type TrainingSummary } from '../src/trainer.js';

const modelSpec = { type: 'mlp', args: { hidden: [8], seed: 3 } };
const EVIL = 'evil';
const HONEST = ['learner_0', 'learner_1', 'learner_2', 'learner_3', 'learner_4'];
const ALL = [...HONEST, EVIL];
// Six learners on the complete graph: t = 4 of 6, so the round survives losing evil at any stage.
const secure: SecureAggregationSettings = { threshold: 0.6, neighbours: 100, clipRange: 8, quantizationBits: 32, weighted: true };
const cleanups: Array<() => Promise<void>> = [];

beforeAll(async () => {
  registerBuiltinModels();
  registerBuiltinAggregators();
  await selectBackend('cpu');
});

afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

const samplesOf = (id: string) => (id === EVIL ? 100 : 40 + 20 * HONEST.indexOf(id));

/** Each learner's delta, the same every round; evil's is far from the others, so its presence in a mean shows. */
function deltaOf(id: string, length: number): Float32Array {
  if (id === EVIL) return new Float32Array(length).fill(0.5);
  const i = HONEST.indexOf(id);
  return Float32Array.from({ length }, (_, j) => 0.01 * (i + 1) + 0.002 * (j % 5) - 0.004);
}

type Stage = keyof typeof SecureAggregationMethods;
/** A corrupted stage: gets the trainer's request and a way to produce the honest reply. */
type Tamper = Partial<Record<Stage, (request: Payload, honest: () => Promise<Payload>) => Payload | Promise<Payload>>>;

/** `transport`, with the handlers later registered for tampered stages wrapped by their tamper. */
function tampering(transport: Transport, tamper: Tamper): Transport {
  const byMethod = new Map(Object.entries(tamper).map(([stage, fn]) => [SecureAggregationMethods[stage as Stage] as string, fn]));
  return new Proxy(transport, {
    get(target, prop) {
      if (prop === 'handle') {
        return (method: string, handler: CallHandler) => {
          const fn = byMethod.get(method);
          target.handle(method, fn ? (payload, ctx) => fn(payload, async () => handler(payload, ctx)) : handler);
        };
      }
      const value = Reflect.get(target, prop, target) as unknown;
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  });
}

async function startLearner(port: number, id: string, tamper: Tamper): Promise<void> {
  const transport = new GrpcTransport({ nodeId: id, role: 'learner', connectTo: [{ nodeId: 'trainer', host: '127.0.0.1', port }], metadata: scriptedLearnerMetadata(samplesOf(id)) });
  serveScriptedLearner(tampering(transport, tamper), {
    nodeId: id,
    numSamples: samplesOf(id),
    update: (_round, global) => {
      const d = deltaOf(id, global.length);
      return global.map((g, j) => g + d[j]!);
    },
  });
  cleanups.push(() => transport.stop());
  await transport.start();
}

interface HostileRun {
  summary: TrainingSummary;
  warnings: string[];
  initial: Float32Array;
}

async function runWithHostile(tamper: Tamper, options: { rounds?: number; secure?: Partial<SecureAggregationSettings> } = {}): Promise<HostileRun> {
  const model = createModel(modelSpec, { inputShape: [6], numClasses: 3 });
  const server = new GrpcTransport({ nodeId: 'trainer', role: 'trainer', listen: { host: '127.0.0.1', port: 0 } });
  await server.start();
  cleanups.push(async () => {
    await server.stop();
    model.dispose();
  });
  const warnings: string[] = [];
  const initial = model.getWeights();
  const trainer = new Trainer({
    nodeId: 'trainer',
    transport: server,
    model,
    modelSpec,
    aggregator: createAggregator({ type: 'fedavg' }),
    settings: {
      maxRounds: options.rounds ?? 1,
      localEpochs: 1,
      clientFraction: 1,
      minClients: 2,
      minAvailableClients: ALL.length,
      evalEvery: 0,
      roundTimeoutS: 60,
      registrationTimeoutS: 30,
      secureAggregation: { ...secure, ...options.secure },
    },
    seed: 5,
    logger: { debug() {}, info() {}, warn: (m) => warnings.push(m), error: (m) => warnings.push(m) },
  });
  const run = trainer.run();
  for (const id of ALL) await startLearner(server.boundPort!, id, id === EVIL ? tamper : {});
  const summary = await run;
  // The trainer kept serving: every round ran and every honest learner is still registered.
  expect(summary.stoppedBy).toBe('max_rounds');
  expect(summary.rounds).toHaveLength(options.rounds ?? 1);
  expect(trainer.learners().map((p) => p.nodeId)).toEqual(expect.arrayContaining(HONEST));
  return { summary, warnings, initial };
}

/** Who a round's sum holds (`included`) and who advertised keys (their total weight W fixes the levels). */
interface RoundMembers {
  included: readonly string[];
  advertised: readonly string[];
}

/**
 * The final weights equal the initial ones plus, per round, the plain weighted mean of the
 * included learners' deltas, within the stated quantization bound of each round.
 */
function expectMeans(run: HostileRun, rounds: readonly RoundMembers[], bits = secure.quantizationBits): void {
  const expected = Float64Array.from(run.initial);
  let bound = 0;
  for (const { included, advertised } of rounds) {
    const weightOf = (ids: readonly string[]) => ids.reduce((sum, id) => sum + samplesOf(id), 0);
    for (const id of included) {
      const d = deltaOf(id, expected.length);
      for (let j = 0; j < expected.length; j++) expected[j]! += (samplesOf(id) * d[j]!) / weightOf(included);
    }
    const levels = levelsFor(bits, advertised.length, weightOf(advertised));
    bound += quantizationStep(secure.clipRange, levels, included.length, weightOf(advertised) / weightOf(included));
  }
  expect(run.summary.rounds.every((r) => r.aggregated)).toBe(true);
  let worst = 0;
  for (let j = 0; j < expected.length; j++) worst = Math.max(worst, Math.abs(run.summary.weights[j]! - expected[j]!));
  expect(worst).toBeLessThanOrEqual(bound);
}

/** Round `index` failed evil alone, at `stage`, with a reason matching `why`. */
function expectEvilRejected(run: HostileRun, stage: Stage, why: RegExp, index = 0): void {
  const { failed } = run.summary.rounds[index]!;
  expect(failed.map((f) => f.learner)).toEqual([EVIL]);
  expect(failed[0]!.reason).toMatch(new RegExp(`^secure aggregation ${stage}: `));
  expect(failed[0]!.reason).toMatch(why);
}

const honestRound: RoundMembers = { included: HONEST, advertised: HONEST };
/** Evil advertised keys (its weight is in W) but its input is not in the sum. */
const evilLeftAfterSetup: RoundMembers = { included: HONEST, advertised: ALL };
const everyone: RoundMembers = { included: ALL, advertised: ALL };

const b64 = (bytes: Uint8Array) => Buffer.from(bytes).toString('base64');
/** A reply whose body is the honest one, changed by `change`. */
const editBody =
  (change: (body: Record<string, unknown>, request: Payload) => Record<string, unknown>) =>
  async (request: Payload, honest: () => Promise<Payload>): Promise<Payload> => {
    const reply = await honest();
    return { ...reply, body: change(reply.body as Record<string, unknown>, request) };
  };

describe('secure aggregation facing a hostile learner over gRPC', () => {
  it.each<[string, Partial<Record<'c_pk' | 's_pk', string>>, RegExp]>([
    ['a 31-byte c_pk', { c_pk: b64(randomBytes(31)) }, /c_pk of evil has 31 bytes, expected 32/],
    ['an all-zero s_pk (a low-order point)', { s_pk: b64(new Uint8Array(32)) }, /s_pk of evil is not a usable X25519 public key/],
    // The order-8 point of Curve25519 (RFC 7748 test vectors' small-subgroup list).
    ['a c_pk of order 8', { c_pk: b64(Buffer.from('e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800', 'hex')) }, /c_pk of evil is not a usable X25519 public key/],
  ])('setup with %s: evil is refused at setup and the honest learners are averaged', async (_, keys, why) => {
    const run = await runWithHostile({ setup: editBody((body) => ({ ...body, ...keys })) });
    expectEvilRejected(run, 'setup', why);
    expectMeans(run, [honestRound]);
  });

  it('setup claiming a weight beyond the samples it announced: refused, as num_samples is in a plain round', async () => {
    const run = await runWithHostile({ setup: editBody((body) => ({ ...body, weight: 2 ** 31 })) });
    expectEvilRejected(run, 'setup', /setup weight of evil must be an integer in 1\.\.100, got 2147483648/);
    expectMeans(run, [honestRound]);
  });

  it.each<[string, (reply: ShareKeysReply, request: ShareKeysRequest) => Record<string, string>]>([
    [
      'moved from a neighbour to a learner that is not one',
      ({ ciphertexts }, request) => {
        const neighbours = Object.keys(request.keys).filter((id) => id !== EVIL);
        const stranger = HONEST.find((id) => !neighbours.includes(id))!;
        const { [neighbours[0]!]: moved, ...rest } = ciphertexts;
        return { ...rest, [stranger]: moved! };
      },
    ],
    ['addressed also to an id outside the round and to itself', ({ ciphertexts }) => ({ ...ciphertexts, ghost: ciphertexts[HONEST[0]!] ?? '', [EVIL]: 'AAAA' })],
  ])('share keys %s: evil is refused at share keys, on a sparse graph', async (_, readdress) => {
    // k = 4 of 5 others: each learner has exactly one stranger.
    const run = await runWithHostile(
      { shareKeys: editBody((body, request) => ({ ...body, ciphertexts: readdress(body as unknown as ShareKeysReply, request.body as ShareKeysRequest) })) },
      { secure: { neighbours: 4 } },
    );
    expectEvilRejected(run, 'shareKeys', /secagg: evil sent shares for \[.*\], expected \[/);
    expectMeans(run, [evilLeftAfterSetup]);
  });

  it('share keys with oversized ciphertexts: refused before they are routed to anyone', async () => {
    const huge = b64(randomBytes(48 * 1024));
    const run = await runWithHostile({
      shareKeys: editBody((body) => ({ ...body, ciphertexts: Object.fromEntries(Object.keys(body.ciphertexts as object).map((to) => [to, huge])) })),
    });
    expectEvilRejected(run, 'shareKeys', /evil's shares for learner_\d are not a string of at most 512 characters/);
    expectMeans(run, [evilLeftAfterSetup]);
  });

  it('share ciphertexts of the right size that do not open: the recipients name evil, and the round fails with the model unchanged', async () => {
    // The trainer cannot open shares, so it cannot tell these from good ones; each recipient can,
    // and semi-honest SecAgg+ has no way to drop evil from its masks after the fact: the round fails.
    const run = await runWithHostile({
      shareKeys: editBody((body) => {
        const sealed = body.ciphertexts as Record<string, string>;
        return { ...body, ciphertexts: Object.fromEntries(Object.entries(sealed).map(([to, text]) => [to, b64(randomBytes(Buffer.from(text, 'base64').length))])) };
      }),
    });
    const [round] = run.summary.rounds;
    expect(round!.aggregated).toBe(false);
    expect(run.summary.weights).toEqual(run.initial);
    expect(round!.failed.map((f) => f.learner).sort()).toEqual(HONEST);
    for (const { reason } of round!.failed) expect(reason).toMatch(/^secure aggregation maskedInput: .*the shares evil sent cannot be opened/);
  });

  it.each<[string, (points: Record<string, number>) => number]>([
    ['zero', () => 0],
    ['repeated (learner_1 point)', (points) => points.learner_1!],
    ['out of range', () => 1000],
  ])(
    'shares whose evaluation point for learner_0 is %s, then a dropout: that share is left out and the mask key still rebuilt',
    async (_, badPoint) => {
      // Evil shares secrets it knows (its own keys), sealed properly, with one point wrong, then leaves:
      // the trainer must rebuild its mask key from the other holders to cancel its pairwise masks.
      const c = generateX25519();
      const s = generateX25519();
      let setup: SetupRequest | undefined;
      const run = await runWithHostile({
        setup: editBody((body, request) => {
          setup = request.body as SetupRequest;
          return { ...body, c_pk: b64(c.publicKey), s_pk: b64(s.publicKey) };
        }),
        shareKeys: (request) => {
          const keys = (request.body as ShareKeysRequest).keys;
          const holders = Object.keys(keys).filter((id) => id !== EVIL);
          const points = Object.fromEntries(holders.map((id) => [id, sharePoint(setup!.neighbours, EVIL, id)]));
          const seedShares = splitSecret(randomBytes(32), setup!.threshold, Object.values(points));
          const keyShares = splitSecret(s.privateKey, setup!.threshold, Object.values(points));
          const ciphertexts: Record<string, string> = {};
          holders.forEach((to, i) => {
            const x = to === 'learner_0' ? badPoint(points) : points[to]!;
            const plain = Buffer.from(JSON.stringify({ x, seed: b64(seedShares[i]!.y), key: b64(keyShares[i]!.y) }));
            const key = agreeKey(c.privateKey, new Uint8Array(Buffer.from(keys[to]!.c_pk, 'base64')), setup!.salt, SHARE_INFO);
            ciphertexts[to] = b64(sealBox(key, plain, shareAad(setup!.round, EVIL, to)));
          });
          return { body: { round: setup!.round, ciphertexts } };
        },
        maskedInput: () => {
          throw new Error('evil leaves after sharing');
        },
      });
      expectEvilRejected(run, 'maskedInput', /evil leaves after sharing/);
      expect(run.warnings.some((w) => /left out shares not at their point or malformed: learner_0's share of evil$/.test(w))).toBe(true);
      expectMeans(run, [evilLeftAfterSetup]);
    },
  );

  it.each<[string, (tensor: { shape: number[]; data: Int32Array }) => Array<{ shape: number[]; data: Int32Array }>, RegExp, Partial<SecureAggregationSettings>]>([
    ['two masked inputs in one reply', (t) => [t, { shape: t.shape, data: t.data.slice() }], /masked input reply has 2 tensors "secagg\/masked"; one masked input per round/, {}],
    ['a vector one word short', (t) => [{ shape: [t.data.length - 1], data: t.data.slice(0, -1) }], /masked input of evil has \d+ elements, expected \d+/, {}],
    [
      'a word >= 2^24 in a 24-bit group',
      (t) => {
        const data = t.data.slice();
        data[3] = data[3]! + 2 ** 24;
        return [{ shape: t.shape, data }];
      },
      /masked input of evil has \d+ at index 3, outside Z_2\^24/,
      { quantizationBits: 24 },
    ],
  ])('masked input with %s: evil counts as dropped after sharing and its masks are cancelled', async (_, corrupt, why, settings) => {
    const run = await runWithHostile(
      {
        maskedInput: async (_request, honest) => {
          const reply = await honest();
          const [masked] = reply.tensors!;
          const tensors = corrupt({ shape: masked!.shape, data: masked!.data as Int32Array }).map((t) => ({ ...masked!, ...t }));
          return { ...reply, tensors };
        },
      },
      { secure: settings },
    );
    expectEvilRejected(run, 'maskedInput', why);
    expectMeans(run, [evilLeftAfterSetup], settings.quantizationBits);
  });

  it('unmask naming mask-key shares of survivors (the trainer must never hold both secrets of one learner): refused whole', async () => {
    const run = await runWithHostile({
      unmask: editBody((body) => ({ ...body, key_shares: { ...(body as unknown as UnmaskReply).seed_shares } })),
    });
    expect(run.summary.rounds[0]!.failed).toEqual([]);
    expect(run.warnings.some((w) => /evil did not return its shares \(secagg: evil's unmask reply holds mask-key shares of \[evil,learner_0,learner_1,learner_2,learner_3,learner_4\], which were not asked for; refused\)/.test(w))).toBe(
      true,
    );
    // Its masked input is in the sum; the honest holders' shares unmask it.
    expectMeans(run, [everyone]);
  });

  it('unmask with a survivor seed share at the wrong point: that share is left out, the rest unmask', async () => {
    const run = await runWithHostile({
      unmask: editBody((body) => {
        const seeds = (body as unknown as UnmaskReply).seed_shares;
        return { ...body, seed_shares: { ...seeds, learner_2: { ...seeds.learner_2!, x: 0 } } };
      }),
    });
    expect(run.warnings.some((w) => /left out shares not at their point or malformed: evil's share of learner_2$/.test(w))).toBe(true);
    expectMeans(run, [everyone]);
  });

  it.each<[Stage, RoundMembers, RegExp | undefined]>([
    ['setup', honestRound, /secagg: evil replied for round 1, the current round is 2/],
    ['shareKeys', evilLeftAfterSetup, /secagg: evil replied for round 1, the current round is 2/],
    ['maskedInput', evilLeftAfterSetup, /reply is for round 1, expected 2/],
    ['unmask', everyone, undefined],
  ])('a %s reply replayed from round 1 in round 2 is refused', async (stage, round2, why) => {
    let first: Payload | undefined;
    const run = await runWithHostile(
      {
        [stage]: async (_request: Payload, honest: () => Promise<Payload>) => {
          first ??= await honest();
          return first;
        },
      },
      { rounds: 2 },
    );
    expect(run.summary.rounds[0]!.failed).toEqual([]);
    if (why) expectEvilRejected(run, stage, why, 1);
    else expect(run.warnings.some((w) => w.includes('round 2: evil did not return its shares (secagg: evil replied for round 1, the current round is 2)'))).toBe(true);
    expectMeans(run, [everyone, round2]);
  });
});
