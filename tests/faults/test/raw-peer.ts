// A hostile peer that speaks the raw wire: the protocol's generated codecs (the .proto is the
// source of truth) over a grpc-js client whose serialisers pass bytes through, so a test can send
// frames no GrpcTransport would write (lying sizes, endless envelopes) and read what comes back.
import { readFileSync, writeFileSync } from 'node:fs';
import { connect as http2Connect, type ClientHttp2Session } from 'node:http2';
import * as grpc from '@grpc/grpc-js';
import { Envelope, EnvelopeKind, Frame, NodeServiceService } from '@oiafed/transport/wire';

const raw = (b: Buffer) => b;
export const RawClient = grpc.makeGenericClientConstructor(
  {
    call: { ...NodeServiceService.call, requestSerialize: raw, requestDeserialize: raw, responseSerialize: raw, responseDeserialize: raw },
    notify: { ...NodeServiceService.notify, requestSerialize: raw, requestDeserialize: raw, responseSerialize: raw, responseDeserialize: raw },
    connect: { ...NodeServiceService.connect, requestSerialize: raw, requestDeserialize: raw, responseSerialize: raw, responseDeserialize: raw },
  },
  'NodeService',
);
export type RawPeerClient = InstanceType<typeof RawClient> & Record<string, (...args: unknown[]) => unknown>;
export type RawStream = grpc.ClientDuplexStream<Buffer, Buffer>;

/** A client; `ownConnection` gives it its own HTTP/2 connection (grpc-js shares them by default). */
export function rawClient(port: number, o: { ownConnection?: boolean } = {}): RawPeerClient {
  const options = o.ownConnection ? { 'grpc.use_local_subchannel_pool': 1 } : {};
  return new RawClient(`127.0.0.1:${port}`, grpc.credentials.createInsecure(), options) as RawPeerClient;
}

export const encFrame = (f: Frame): Buffer => Buffer.from(Frame.encode(f).finish());
export const registerFrame = (nodeId: string, role = 'learner', metadata: Record<string, string> = {}): Buffer =>
  encFrame({ kind: { $case: 'register', register: { nodeId, role, metadata, expectedTarget: '' } } });
export const heartbeatFrame = (pong = false): Buffer => encFrame({ kind: { $case: 'heartbeat', heartbeat: { timestampMs: Date.now(), pong } } });
export const chunkFrame = (envelopeId: string, seq: number, last: boolean, data: Uint8Array, totalBytes: number): Buffer =>
  encFrame({ kind: { $case: 'chunk', chunk: { envelopeId, seq, last, data, totalBytes } } });

/** A whole envelope as one chunk frame (the way a GrpcTransport sends a small one). */
export function envelopeFrame(e: Partial<Envelope>): Buffer {
  const bytes = Envelope.encode({
    id: `raw-${Math.random().toString(36).slice(2)}`,
    method: 'train',
    source: 'raw',
    target: 'trainer',
    correlationId: '',
    timestampMs: Date.now(),
    metadata: {},
    body: new Uint8Array(0),
    tensors: [],
    kind: EnvelopeKind.ENVELOPE_KIND_REQUEST,
    timeoutMs: 0,
    ...e,
  }).finish();
  return chunkFrame(e.id ?? 'raw', 0, true, bytes, bytes.byteLength);
}

/** How a stream ended, from the raw client's side. */
export interface StreamEnd {
  code?: number;
  details?: string;
}

/** Opens Connect, registers as `nodeId` and resolves once the registerAck arrives. */
export function connectRegistered(client: RawPeerClient, nodeId: string, o: { role?: string; metadata?: Record<string, string>; onFrame?: (f: Frame) => void } = {}) {
  const stream = client.connect(new grpc.Metadata()) as RawStream;
  let settle: (e: StreamEnd) => void = () => undefined;
  const ended = new Promise<StreamEnd>((resolve) => (settle = resolve));
  stream.on('error', (err: grpc.ServiceError) => settle({ code: err.code, details: err.details }));
  stream.on('end', () => settle({}));
  stream.on('close', () => settle({}));
  const acked = new Promise<void>((resolve, reject) => {
    stream.on('data', (b: Buffer) => {
      const f = Frame.decode(b);
      if (f.kind?.$case === 'registerAck') resolve();
      o.onFrame?.(f);
    });
    void ended.then((e) => reject(new Error(`stream ended before registerAck: ${JSON.stringify(e)}`)));
  });
  acked.catch(() => undefined);
  stream.write(registerFrame(nodeId, o.role, o.metadata));
  return { stream, acked, ended };
}

/**
 * Writes `frame` and resolves once grpc-js has handed it to HTTP/2 (true), or with false once the
 * stream has ended: what a caller counts as sent has left this process, not sat in its buffers.
 */
export function writeFrame(stream: RawStream, frame: Buffer, ended: Promise<StreamEnd>): Promise<boolean> {
  return Promise.race([new Promise<boolean>((r) => stream.write(frame, (err: unknown) => r(!err))), ended.then(() => false)]);
}

/** Reassembles chunk frames into envelopes (what a learner's StreamLink does, minus its checks). */
export function envelopeReader(onEnvelope: (env: Envelope) => void): (f: Frame) => void {
  const parts = new Map<string, Uint8Array[]>();
  return (f) => {
    if (f.kind?.$case !== 'chunk') return;
    const c = f.kind.chunk;
    const list = c.seq === 0 ? [] : (parts.get(c.envelopeId) ?? []);
    list.push(c.data);
    parts.set(c.envelopeId, list);
    if (!c.last) return;
    parts.delete(c.envelopeId);
    onEnvelope(Envelope.decode(Buffer.concat(list)));
  };
}

/**
 * A learner that registers, heartbeats every 500 ms and answers each train request with the
 * envelope bytes `answer(request)` returns, in 4 MB chunks. `stop()` ends its heartbeat.
 */
export async function answeringLearner(
  client: RawPeerClient,
  nodeId: string,
  answer: (request: Envelope) => Uint8Array,
): Promise<{ replies: number; stop(): void }> {
  const CHUNK = 4 * 1024 * 1024;
  const state = { replies: 0, stop: () => undefined as void };
  let stream: RawStream | undefined;
  const reply = (req: Envelope) => {
    if (req.kind !== EnvelopeKind.ENVELOPE_KIND_REQUEST || !/train/.test(req.method)) return;
    const bytes = answer(req);
    const id = `${nodeId}-reply-${state.replies++}`;
    for (let off = 0, seq = 0; off < bytes.length || seq === 0; off += CHUNK, seq++)
      stream!.write(chunkFrame(id, seq, off + CHUNK >= bytes.length, bytes.subarray(off, off + CHUNK), seq === 0 ? bytes.length : 0));
  };
  const conn = connectRegistered(client, nodeId, { onFrame: envelopeReader(reply) });
  stream = conn.stream;
  await conn.acked;
  const timer = setInterval(() => stream!.write(heartbeatFrame()), 500);
  state.stop = () => clearInterval(timer);
  return state;
}

/** The RESPONSE envelope fields answering `req` from `nodeId`. */
export function responseTo(req: Envelope, nodeId: string): Envelope {
  return {
    id: `${nodeId}-${Math.random().toString(36).slice(2)}`, method: req.method, source: nodeId, target: req.source, correlationId: req.id,
    timestampMs: Date.now(), metadata: {}, body: new Uint8Array(0), tensors: [], kind: EnvelopeKind.ENVELOPE_KIND_RESPONSE, timeoutMs: 0,
  };
}

/** A message in gRPC's length-prefixed framing (uncompressed). */
function grpcMessage(bytes: Buffer): Buffer {
  const head = Buffer.alloc(5);
  head.writeUInt32BE(bytes.byteLength, 1);
  return Buffer.concat([head, bytes]);
}

/**
 * A learner that registers, heartbeats every 500 ms and never reads anything after the first
 * bytes of its reply: plain HTTP/2 with the stream paused, so flow control really stops the
 * sender (a paused grpc-js client would still buffer 16 messages for its application).
 */
export async function silentHttp2Peer(port: number, nodeId: string): Promise<{ session: ClientHttp2Session; ended: Promise<void>; stop(): void }> {
  const session = http2Connect(`http://127.0.0.1:${port}`);
  session.on('error', () => undefined);
  const req = session.request({ ':method': 'POST', ':path': NodeServiceService.connect.path, 'content-type': 'application/grpc', te: 'trailers' });
  req.on('error', () => undefined);
  const ended = new Promise<void>((resolve) => {
    req.on('close', () => resolve());
    session.on('close', () => resolve());
  });
  req.write(grpcMessage(registerFrame(nodeId)));
  await new Promise<void>((resolve, reject) => {
    req.once('data', () => resolve());
    void ended.then(() => reject(new Error(`${nodeId}: stream closed before the registerAck`)));
  });
  req.pause();
  const timer = setInterval(() => {
    if (!req.closed) req.write(grpcMessage(heartbeatFrame()));
  }, 500);
  return {
    session,
    ended,
    stop: () => {
      clearInterval(timer);
      session.destroy();
    },
  };
}

/** A process's resident set size in MB (Linux /proc). */
export function rssMb(pid: number, field: 'VmRSS' | 'VmHWM' = 'VmRSS'): number {
  const m = readFileSync(`/proc/${pid}/status`, 'utf8').match(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm'));
  if (!m) throw new Error(`no ${field} in /proc/${pid}/status`);
  return Number(m[1]) / 1024;
}

/**
 * Peak RSS of `pid` while `during` runs: the kernel's high-water mark, reset first (clear_refs 5),
 * so short spikes between two samples count too; sampling is the fallback where reset is refused.
 */
export async function peakRssMb<T>(pid: number, during: () => Promise<T>): Promise<{ peakMb: number; result: T }> {
  let reset = true;
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
  } catch {
    reset = false;
  }
  let sampled = rssMb(pid);
  const timer = setInterval(() => {
    try {
      sampled = Math.max(sampled, rssMb(pid));
    } catch {
      // the process exited; the test notices that itself
    }
  }, 20);
  try {
    const result = await during();
    const peakMb = reset ? Math.max(sampled, rssMb(pid, 'VmHWM')) : sampled;
    return { peakMb, result };
  } finally {
    clearInterval(timer);
  }
}
