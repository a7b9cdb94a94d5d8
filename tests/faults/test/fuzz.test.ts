import * as grpc from '@grpc/grpc-js';
import { resolveConfig, type NodeConfig } from '@oiafed/config';
import {
  Trainer,
  buildAggregator,
  buildModel,
  buildTransport,
  loadNodeData,
  registerAllBuiltins,
  runLearnerNode,
  selectComputeBackend,
  silentLogger,
  type TrainingSummary,
} from '@oiafed/core';
import type { Transport } from '@oiafed/transport';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
// The fuzzer plays a hostile client that speaks the raw wire, so it uses the protocol's generated
// codecs (the .proto is the source of truth) rather than anything of GrpcTransport's.
import { Ack, Envelope, EnvelopeKind, Frame, NodeServiceService } from '@oiafed/transport/wire';
import { seededRandom, summaryLine, tempDir } from './helpers.js';

const MAX_MESSAGE_MB = 1;

function nodeConfig(overrides: Record<string, unknown>): NodeConfig {
  return resolveConfig(
    {
      exp_name: 'fuzz',
      seed: 5,
      transport: { mode: 'grpc', grpc: { timeout: 5, max_message_mb: MAX_MESSAGE_MB } },
      heartbeat: { enabled: true, interval: 0.3, timeout: 1.5 },
      retry: { max_attempts: 3, initial_delay: 0.05, max_delay: 0.2 },
      model: { type: 'mlp', args: { hidden: [16] } },
      learner: { args: { batch_size: 32, lr: 0.05, device: 'cpu' } },
      datasets: [{ type: 'synthetic', args: { alpha: 0, beta: 0, samples_per_client: 100 }, partition: { num_partitions: 2, partition_id: 0 } }],
      tracker: { backends: [{ type: 'console', level: 'error' }], run_dir: tempDir('fuzz-run') },
      ...overrides,
    },
    { file: 'fuzz.yaml', env: {} },
  );
}

/** Seeded xorshift so a failing fuzz run can be replayed. */
function rng(seed: number) {
  const next = seededRandom(seed);
  return { next, int: (n: number) => Math.floor(next() * n), bytes: (n: number) => Buffer.from(Array.from({ length: n }, () => Math.floor(next() * 256))) };
}

const raw = (b: Buffer) => b;
const RawClient = grpc.makeGenericClientConstructor(
  {
    call: { ...NodeServiceService.call, requestSerialize: raw, requestDeserialize: raw, responseSerialize: raw, responseDeserialize: raw },
    notify: { ...NodeServiceService.notify, requestSerialize: raw, requestDeserialize: raw, responseSerialize: raw, responseDeserialize: raw },
    connect: { ...NodeServiceService.connect, requestSerialize: raw, requestDeserialize: raw, responseSerialize: raw, responseDeserialize: raw },
  },
  'NodeService',
);
type Raw = InstanceType<typeof RawClient> & Record<string, (...args: unknown[]) => unknown>;

interface Outcome {
  grpcCode?: number;
  error?: string;
}

function unary(client: Raw, method: 'call' | 'notify', bytes: Buffer): Promise<Outcome> {
  return new Promise((resolve) => {
    client[method](bytes, new grpc.Metadata(), { deadline: Date.now() + 5000 }, (err: grpc.ServiceError | null, reply?: Buffer) => {
      if (err) return resolve({ grpcCode: err.code, error: err.details });
      if (method === 'call') {
        const env = Envelope.decode(reply!);
        return resolve({ error: env.error ? `${env.error.code}: ${env.error.message}` : undefined });
      }
      const ack = Ack.decode(reply!);
      resolve({ error: ack.error ? `${ack.error.code}: ${ack.error.message}` : undefined });
    });
  });
}

/** Writes frames on a Connect stream and resolves with how the server ended it (or undefined if it kept it open). */
function stream(client: Raw, frames: Buffer[], holdMs = 150): Promise<Outcome & { acked: boolean }> {
  return new Promise((resolve) => {
    const s = client.connect(new grpc.Metadata()) as grpc.ClientDuplexStream<Buffer, Buffer>;
    let acked = false;
    let done = false;
    const finish = (o: Outcome) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      s.cancel();
      resolve({ ...o, acked });
    };
    s.on('data', (b: Buffer) => {
      if (Frame.decode(b).kind?.$case === 'registerAck') acked = true;
    });
    s.on('error', (err: grpc.ServiceError) => finish({ grpcCode: err.code, error: err.details }));
    s.on('end', () => finish({}));
    const timer = setTimeout(() => finish({}), holdMs);
    for (const f of frames) s.write(f);
  });
}

const encEnvelope = (e: Partial<Envelope>) =>
  Buffer.from(
    Envelope.encode({
      id: 'x',
      method: 'train',
      source: 'fuzzer',
      target: 'trainer',
      correlationId: '',
      timestampMs: Date.now(),
      metadata: {},
      body: new Uint8Array(0),
      tensors: [],
      kind: EnvelopeKind.ENVELOPE_KIND_REQUEST,
      timeoutMs: 1000,
      ...e,
    }).finish(),
  );
const encFrame = (f: Frame) => Buffer.from(Frame.encode(f).finish());
const register = (nodeId: string, role = 'fuzzer') => encFrame({ kind: { $case: 'register', register: { nodeId, role, metadata: {}, expectedTarget: '' } } });

function mutate(r: ReturnType<typeof rng>, bytes: Buffer): Buffer {
  const out = Buffer.from(bytes);
  switch (r.int(4)) {
    case 0:
      for (let i = 0, n = 1 + r.int(8); i < n && out.length > 0; i++) out[r.int(out.length)] = r.int(256);
      return out;
    case 1:
      return out.subarray(0, r.int(out.length + 1));
    case 2:
      return Buffer.concat([out, r.bytes(1 + r.int(64))]);
    default: {
      const at = r.int(out.length + 1);
      return Buffer.concat([out.subarray(0, at), r.bytes(1 + r.int(16)), out.subarray(at)]);
    }
  }
}

describe('a running trainer under hostile traffic', () => {
  let transport: Transport;
  let trainer: Trainer;
  let run: Promise<TrainingSummary>;
  let runError: unknown;
  let port: number;
  let initial: Float32Array;

  beforeAll(async () => {
    registerAllBuiltins();
    const config = nodeConfig({ node_id: 'trainer', role: 'trainer', listen: { host: '127.0.0.1', port: 0 }, trainer: { args: { max_rounds: 1, min_clients: 1, registration_timeout: 60, round_timeout: 30 } } });
    process.env.OIAFED_BACKEND = 'cpu';
    await selectComputeBackend(config, silentLogger);
    const data = await loadNodeData(config, silentLogger);
    const model = buildModel(config, data);
    transport = buildTransport(config);
    await transport.start();
    port = transport.boundPort!;
    trainer = new Trainer({
      nodeId: 'trainer',
      transport,
      model,
      modelSpec: { type: 'mlp', args: { seed: 5, hidden: [16] } },
      aggregator: buildAggregator(config),
      settings: { maxRounds: 1, localEpochs: 1, clientFraction: 1, minClients: 1, evalEvery: 1, roundTimeoutS: 30, registrationTimeoutS: 60 },
      seed: 5,
      testData: data.test,
    });
    initial = trainer.globalWeights();
    run = trainer.run();
    run.catch((e: unknown) => (runError = e));
  });

  afterAll(async () => {
    await transport?.stop();
  });

  it('answers 1,000+ random and mutated messages with errors, keeps serving and keeps its global model', async () => {
    const r = rng(20261129);
    const client = new RawClient(`127.0.0.1:${port}`, grpc.credentials.createInsecure()) as Raw;
    const valid = encEnvelope({ body: new TextEncoder().encode('{"round":1}') });
    const tallies = new Map<string, number>();
    const tally = (o: Outcome) => {
      const key = o.grpcCode !== undefined ? `grpc:${grpc.status[o.grpcCode]}` : o.error ? o.error.split(':')[0]! : 'accepted';
      tallies.set(key, (tallies.get(key) ?? 0) + 1);
    };
    let sent = 0;
    const jobs: Array<() => Promise<Outcome>> = [];
    for (let i = 0; i < 400; i++) jobs.push(() => unary(client, r.next() < 0.5 ? 'call' : 'notify', r.bytes(r.int(600))));
    for (let i = 0; i < 400; i++) jobs.push(() => unary(client, r.next() < 0.7 ? 'call' : 'notify', mutate(r, valid)));
    for (let i = 0; i < 100; i++) {
      const method = ['train', 'evaluate', '', 'no.such.method', r.bytes(8).toString('latin1')][r.int(5)]!;
      const target = ['trainer', '', 'learner_0', 'nobody'][r.int(4)]!;
      jobs.push(() => unary(client, 'call', encEnvelope({ method, target, body: r.bytes(r.int(40)), kind: r.int(4) as EnvelopeKind })));
    }
    for (let i = 0; i < 120; i++) {
      const frames = [r.next() < 0.5 ? r.bytes(r.int(200)) : mutate(r, register(`fz${i}`))];
      if (r.next() < 0.5) {
        // After a (possibly) valid register: chunks with lying sizes, sequence gaps, garbage envelopes.
        const total = [0, 5, 1 << 20, 2 ** 40, 2 ** 53][r.int(5)]!;
        frames.unshift(register(`fz-chunks-${i}`));
        frames.push(encFrame({ kind: { $case: 'chunk', chunk: { envelopeId: `e${i}`, seq: r.int(3), last: r.next() < 0.5, data: r.bytes(r.int(64)), totalBytes: total } } }));
      }
      jobs.push(() => stream(client, frames, 50));
    }
    // Oversized: over max_message_mb on a unary call.
    jobs.push(() => unary(client, 'call', encEnvelope({ body: Buffer.alloc(3 * MAX_MESSAGE_MB * 1024 * 1024, 1) })));
    for (let i = 0; i < jobs.length; i += 40) {
      const batch = await Promise.all(jobs.slice(i, i + 40).map((job) => job()));
      batch.forEach(tally);
      sent += batch.length;
    }
    client.close();
    expect(sent).toBeGreaterThanOrEqual(1000);
    expect(runError).toBeUndefined();
    expect(trainer.globalWeights()).toEqual(initial);
    // Known rejections with clear codes, never a crash.
    expect(tallies.get('UNKNOWN_METHOD')).toBeGreaterThan(0);
    expect(tallies.get('grpc:RESOURCE_EXHAUSTED')).toBeGreaterThan(0);
    summaryLine('fuzz', { messages: sent, outcomes: JSON.stringify(Object.fromEntries(tallies)).replace(/ /g, '') });
  });

  it('rejects unknown methods, a learner claiming the trainer id and a duplicate id with clear errors', async () => {
    const client = new RawClient(`127.0.0.1:${port}`, grpc.credentials.createInsecure()) as Raw;
    const unknown = await unary(client, 'call', encEnvelope({ method: 'steal_weights' }));
    expect(unknown.error).toMatch(/UNKNOWN_METHOD: node 'trainer' has no handler for method 'steal_weights'/);
    const wrongTarget = await unary(client, 'call', encEnvelope({ target: 'learner_9' }));
    expect(wrongTarget.error).toMatch(/UNKNOWN_PEER: message for 'learner_9' reached node 'trainer'/);
    const garbage = await unary(client, 'call', Buffer.from([0xff, 0xff, 0xff, 0xff]));
    expect(garbage.grpcCode).toBe(grpc.status.INTERNAL);

    const impostor = await stream(client, [register('trainer', 'learner')], 2000);
    expect(impostor).toMatchObject({ grpcCode: grpc.status.ALREADY_EXISTS, acked: false });
    expect(impostor.error).toMatch(/node id 'trainer' is this server's own id/);

    const first = client.connect(new grpc.Metadata()) as grpc.ClientDuplexStream<Buffer, Buffer>;
    first.on('error', () => undefined);
    first.write(register('twin'));
    await new Promise((resolve) => first.once('data', resolve));
    const second = await stream(client, [register('twin')], 2000);
    expect(second).toMatchObject({ grpcCode: grpc.status.ALREADY_EXISTS, acked: false });
    expect(second.error).toMatch(/node id 'twin' is already registered/);
    first.cancel();

    const noFirstRegister = await stream(client, [encFrame({ kind: { $case: 'heartbeat', heartbeat: { timestampMs: 1, pong: false } } })], 2000);
    expect(noFirstRegister.error).toMatch(/first frame must be register, got heartbeat/);
    client.close();
    expect(trainer.globalWeights()).toEqual(initial);
  });

  it('still trains with a real learner afterwards', async () => {
    const learner = nodeConfig({ node_id: 'learner_0', role: 'learner', connect_to: [`trainer@127.0.0.1:${port}`] });
    const learnerRun = runLearnerNode(learner);
    const summary = await run;
    await trainer.shutdownLearners('fuzz test finished');
    const result = await learnerRun;
    expect(summary.rounds).toHaveLength(1);
    expect(summary.rounds[0]!.participants).toBe(1);
    expect(summary.weights).not.toEqual(initial);
    expect(result.rounds).toBe(1);
  });
});
