import type { Server as HttpServer } from 'node:http';
import type { Server as HttpsServer } from 'node:https';
import { endianness } from 'node:os';
import * as grpc from '@grpc/grpc-js';
import { constants as http2Constants, type ServerHttp2Stream } from 'node:http2';
import { EnvelopeKind, type Ack, type Envelope, type Frame } from './generated/oiafed/v1/node.js';
import { errorMessage, isTransportErrorCode, RemoteError, TransportError } from './errors.js';
import {
  authMetadata,
  channelOptions,
  clientCredentials,
  fromGrpcError,
  nodeServiceDefinition,
  PATHS,
  serverCredentials,
  serverOptions,
  toGrpcStatus,
  type TlsOptions,
  type WireOptions,
} from './grpc-wire.js';
import { dialWarning, listenWarnings, nodeIdProblem, PeerAuth, registrationFieldsProblem } from './peer-auth.js';
import { RateLimitedLog, sanitizeForLog } from './rate-limited-log.js';
import { DEFAULT_RETRY, RetryPolicy, sleep, type RetryOptions } from './retry-policy.js';
import { DEFAULT_BODY_LIMITS, encodeEnvelope, errorToWire, newId, payloadFromWire, payloadToWire, type BodyLimits } from './serde.js';
import { MAX_STREAM_ENVELOPE_BYTES, StreamLink, type FrameStream, type StreamLimits } from './stream-link.js';
import { encodeEnvelopeParts } from './wire-codec.js';
import { DEFAULT_TIMEOUT_MS, HandlerFailure, resolveTimeout, TransportBase, withDeadline } from './transport-base.js';
import { WebSocketAcceptor, type WebLinkHost } from './web-socket-link.js';
import type { CallOptions, Logger, Payload, PeerInfo, Transport } from './types.js';

export interface GrpcTransportOptions {
  nodeId: string;
  role: string;
  /** Listen for Call/Notify/Connect (the trainer). Port 0 picks a free port: see boundPort. */
  listen?: { host: string; port: number };
  /** Nodes to dial and register with (a learner's trainer). */
  connectTo?: Array<{ nodeId: string; host: string; port: number }>;
  /** Sent with registration; the other side sees it in PeerInfo.metadata. */
  metadata?: Record<string, string>;
  /** Default call deadline in ms (60 000). */
  timeoutMs?: number;
  keepaliveTimeMs?: number;
  keepaliveTimeoutMs?: number;
  /**
   * Largest encoded envelope (256 MB): unary Call/Notify messages, and each envelope reassembled from
   * Connect stream chunks (plus 64 KB for ids and metadata; see streamLimits).
   */
  maxMessageBytes?: number;
  /** Slice size of envelopes on the Connect stream (4 MB). */
  chunkBytes?: number;
  compression?: 'none' | 'gzip';
  /**
   * What one Connect stream may hold for its peer; each default derives from the options above:
   * maxEnvelopeBytes = maxMessageBytes + 64 KB, maxInFlightBytes = maxEnvelopeBytes, maxPartials 4,
   * reassemblyTimeoutMs = max(timeoutMs, 30 s), maxQueuedBytes = chunkBytes + 64 KB.
   */
  streamLimits?: Partial<StreamLimits>;
  /** Largest JSON body of a received message (1 MB); it also may not nest deeper than 64 levels. */
  maxJsonBodyBytes?: number;
  /** Both sides ping every intervalMs; a side silent for timeoutMs is declared gone. 0/undefined disables. */
  heartbeat?: { intervalMs: number; timeoutMs: number };
  /** Backoff for start()'s dialing, reconnects and `retry: true` calls. */
  retry?: RetryOptions;
  /**
   * Sent as `authorization: Bearer <token>` when dialing; required on every incoming call and
   * stream unless `authTokens` is given. Must not be empty (an empty token is refused, never "no auth").
   */
  authToken?: string;
  /**
   * Listening side: one token per node id. A peer must present the token issued to the node id it
   * registers (or sends calls) as, so a token holder cannot take another learner's id.
   */
  authTokens?: Record<string, string>;
  tls?: TlsOptions;
  logger?: Logger;
}

const MB = 1024 * 1024;

/** Calls to a dialed peer whose encoded envelope reaches this size travel on the Connect stream. */
const STREAM_CALL_BYTES = 1 * MB;

function encodedSize(env: Envelope): number {
  return encodeEnvelopeParts(env, 0).byteLength;
}

interface Outbound {
  target: { nodeId: string; host: string; port: number };
  client: grpc.Client;
  stream?: grpc.ClientDuplexStream<Frame, Frame>;
  link?: StreamLink;
  peer?: PeerInfo;
  registeredOnce: boolean;
}

interface Inbound {
  peer: PeerInfo;
  link: StreamLink;
  /** Ends the peer's stream (gRPC) or socket (WebSocket) from this side. */
  end(): void;
}

function positiveInt(value: number | undefined, fallback: number, name: string): number {
  const v = value ?? fallback;
  if (!Number.isInteger(v) || v <= 0) throw new TransportError('INVALID_ARGUMENT', `GrpcTransport: ${name} must be a positive integer, got ${v}`);
  return v;
}

/**
 * Ends a peer's server stream now with RESOURCE_EXHAUSTED. grpc-js queues the status behind frames
 * the peer has not read, so for a peer that never reads, the stream and those frames would live
 * forever: after a grace second the HTTP/2 stream underneath is reset. grpc-js has no public call
 * for that, hence the defensive reach into its call object (skipped if its shape changes).
 */
function resetServerStream(stream: grpc.ServerDuplexStream<Frame, Frame>, reason: string): void {
  stream.emit('error', { code: grpc.status.RESOURCE_EXHAUSTED, details: `stream closed by the receiver: ${reason}` });
  let call = (stream as unknown as { call?: { nextCall?: unknown; stream?: ServerHttp2Stream } }).call;
  while (call?.nextCall) call = call.nextCall as typeof call;
  const h2 = call?.stream;
  if (!h2 || typeof h2.close !== 'function') return;
  const timer = setTimeout(() => {
    if (!h2.closed && !h2.destroyed) h2.close(http2Constants.NGHTTP2_CANCEL);
  }, 1_000);
  timer.unref?.();
}

/**
 * Transport over gRPC. A listening node serves NodeService; a dialing node opens one Connect
 * stream per connectTo peer and registers. Dialer -> listener calls are unary Call/Notify;
 * listener -> dialer calls travel as chunked envelopes over the dialer's stream.
 */
export class GrpcTransport extends TransportBase implements Transport {
  private readonly o: GrpcTransportOptions;
  private readonly role: string;
  private readonly timeoutMs: number;
  private readonly maxMessageBytes: number;
  private readonly chunkBytes: number;
  private readonly streamLimits: StreamLimits;
  private readonly bodyLimits: BodyLimits;
  private readonly policy: RetryPolicy;
  private readonly wire: WireOptions;
  private server?: grpc.Server;
  private port?: number;
  private readonly inbound = new Map<string, Inbound>();
  private readonly outbound = new Map<string, Outbound>();
  private stopping?: AbortController;
  private started = false;
  private readonly auth: PeerAuth;
  /** Refusals and stream errors caused by peers: one line per (peer, reason) per 10 s. */
  private readonly refusals: RateLimitedLog;
  /** Node ids whose stream broke its limits, refused at registration until `until`. */
  private readonly penalties = new Map<string, { until: number; strikes: number }>();
  /** HTTP servers learners may join through over WebSocket (acceptWebSockets). */
  private readonly webAcceptors = new Set<WebSocketAcceptor>();

  constructor(o: GrpcTransportOptions) {
    super(o?.nodeId, o?.logger, 'GrpcTransport');
    if (endianness() !== 'LE') throw new TransportError('INTERNAL', 'GrpcTransport: tensors are sent as host bytes, which requires a little-endian host');
    this.o = o;
    this.role = o.role ?? '';
    this.timeoutMs = resolveTimeout(o.timeoutMs, DEFAULT_TIMEOUT_MS, 'GrpcTransport');
    this.maxMessageBytes = positiveInt(o.maxMessageBytes, 256 * MB, 'maxMessageBytes');
    // A chunk frame must itself fit the per-message cap.
    this.chunkBytes = Math.min(positiveInt(o.chunkBytes, 4 * MB, 'chunkBytes'), this.maxMessageBytes);
    this.streamLimits = this.defaultStreamLimits(o.streamLimits);
    this.bodyLimits = { ...DEFAULT_BODY_LIMITS, maxBytes: positiveInt(o.maxJsonBodyBytes, DEFAULT_BODY_LIMITS.maxBytes, 'maxJsonBodyBytes') };
    if (o.compression !== undefined && o.compression !== 'none' && o.compression !== 'gzip')
      throw new TransportError('INVALID_ARGUMENT', `GrpcTransport: compression must be 'none' or 'gzip', got '${o.compression}'`);
    const hb = o.heartbeat;
    if (hb && (hb.intervalMs > 0 || hb.timeoutMs > 0) && !(hb.intervalMs > 0 && hb.timeoutMs > hb.intervalMs))
      throw new TransportError('INVALID_ARGUMENT', `GrpcTransport: heartbeat needs 0 < intervalMs < timeoutMs, got ${JSON.stringify(hb)}`);
    if (o.listen && (!Number.isInteger(o.listen.port) || o.listen.port < 0 || o.listen.port > 65535))
      throw new TransportError('INVALID_ARGUMENT', `GrpcTransport: listen.port must be an integer in 0..65535, got ${o.listen.port}`);
    const ids = new Set<string>();
    for (const [i, t] of (o.connectTo ?? []).entries()) {
      if (!t?.nodeId || !t.host || !Number.isInteger(t.port) || t.port <= 0 || t.port > 65535)
        throw new TransportError('INVALID_ARGUMENT', `GrpcTransport: connectTo[${i}] must be {nodeId, host, port 1..65535}, got ${JSON.stringify(t)}`);
      if (t.nodeId === this.nodeId) throw new TransportError('INVALID_ARGUMENT', `GrpcTransport: connectTo[${i}] names this node '${t.nodeId}' itself`);
      if (ids.has(t.nodeId)) throw new TransportError('INVALID_ARGUMENT', `GrpcTransport: connectTo lists '${t.nodeId}' twice`);
      ids.add(t.nodeId);
    }
    this.policy = new RetryPolicy(o.retry ?? DEFAULT_RETRY);
    this.auth = new PeerAuth({
      authToken: o.authToken,
      authTokens: o.authTokens,
      bindCertificate: o.tls?.requireClientCert === true && o.tls.bindNodeId !== false,
    });
    this.refusals = new RateLimitedLog(this.logger);
    this.wire = {
      maxMessageBytes: this.maxMessageBytes,
      chunkBytes: this.chunkBytes,
      keepaliveTimeMs: o.keepaliveTimeMs,
      keepaliveTimeoutMs: o.keepaliveTimeoutMs,
      compression: o.compression ?? 'none',
      reconnectInitialMs: this.policy.options.initialDelayMs,
      reconnectMaxMs: this.policy.options.maxDelayMs,
    };
  }

  /** Stream limits from maxMessageBytes/chunkBytes/timeoutMs; see GrpcTransportOptions.streamLimits. */
  private defaultStreamLimits(given: Partial<StreamLimits> | undefined): StreamLimits {
    // The unary limit's 64 KB slack for ids and metadata applies to stream envelopes too.
    const maxEnvelopeBytes = Math.min(MAX_STREAM_ENVELOPE_BYTES, this.maxMessageBytes + 64 * 1024);
    return {
      maxEnvelopeBytes,
      // Senders write one envelope at a time, so one envelope's worth is all an honest peer needs.
      maxInFlightBytes: maxEnvelopeBytes,
      maxPartials: 4,
      reassemblyTimeoutMs: Math.max(this.timeoutMs, 30_000),
      maxQueuedBytes: this.chunkBytes + 64 * 1024,
      ...given,
    };
  }

  get boundPort(): number | undefined {
    return this.port;
  }

  private selfInfo(): { nodeId: string; role: string; metadata: Record<string, string> } {
    return { nodeId: this.nodeId, role: this.role, metadata: { ...(this.o.metadata ?? {}) } };
  }

  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    this.stopping = new AbortController();
    try {
      if (this.o.listen) await this.listen(this.o.listen);
      await Promise.all((this.o.connectTo ?? []).map((t) => this.connectFirst(t)));
    } catch (err) {
      await this.stop();
      throw err;
    }
  }

  // ---------------------------------------------------------------- listening side

  private async listen(at: { host: string; port: number }): Promise<void> {
    const server = new grpc.Server(serverOptions(this.wire));
    server.addService(nodeServiceDefinition, {
      call: (call: grpc.ServerUnaryCall<Envelope, Envelope>, cb: grpc.sendUnaryData<Envelope>) => this.serveCall(call, cb),
      notify: (call: grpc.ServerUnaryCall<Envelope, Ack>, cb: grpc.sendUnaryData<Ack>) => this.serveNotify(call, cb),
      connect: (stream: grpc.ServerDuplexStream<Frame, Frame>) => this.serveConnect(stream),
    });
    const creds = serverCredentials(this.o.tls);
    this.port = await new Promise<number>((resolve, reject) =>
      server.bindAsync(`${at.host}:${at.port}`, creds, (err, port) =>
        err ? reject(new TransportError('UNAVAILABLE', `GrpcTransport '${this.nodeId}': cannot listen on ${at.host}:${at.port} (${err.message})`)) : resolve(port),
      ),
    );
    this.server = server;
    this.logger.info(`transport ${this.nodeId}: listening`, { host: at.host, port: this.port });
    for (const w of listenWarnings(at.host, { auth: this.auth.requiresToken, tls: this.o.tls !== undefined })) this.logger.warn(`transport ${this.nodeId}: ${w}`);
  }

  /** Host part of a grpc-js peer string ("ipv4:1.2.3.4:5" / "ipv6:[::1]:5"): the rate-limit key of refusals. */
  private static peerHost(peer: string): string {
    return peer.replace(/^ipv[46]:/, '').replace(/:\d+$/, '');
  }

  /**
   * Why an incoming unary call may not be served (wrong token, invalid or unbound source id),
   * logged once per (host, reason); undefined when it may.
   */
  private unaryRefusal(call: grpc.ServerUnaryCall<Envelope, unknown>): grpc.StatusObject | undefined {
    const host = GrpcTransport.peerHost(call.getPeer());
    const refuse = (code: grpc.status, reason: string, details: string) => {
      this.refusals.refuse(host, reason, details);
      return { code, details, metadata: new grpc.Metadata() };
    };
    if (!this.auth.admits(call.metadata)) return refuse(grpc.status.UNAUTHENTICATED, 'wrong token', `node '${this.nodeId}': missing or wrong bearer token`);
    const source = call.request.source;
    const bad = nodeIdProblem(source);
    if (bad) return refuse(grpc.status.INVALID_ARGUMENT, 'invalid source id', `envelope source: ${bad}`);
    const unbound = this.auth.identityProblem(call.metadata, call.getAuthContext(), source);
    if (unbound) return refuse(grpc.status.UNAUTHENTICATED, 'identity not bound', `source '${source}': ${unbound}`);
    return undefined;
  }

  private async serveCall(call: grpc.ServerUnaryCall<Envelope, Envelope>, cb: grpc.sendUnaryData<Envelope>): Promise<void> {
    const refused = this.unaryRefusal(call);
    if (refused) return cb(refused);
    const env = call.request;
    this.counters.bytesReceived += call.request.body.byteLength + env.tensors.reduce((a, t) => a + t.data.byteLength, 0);
    const ctrl = new AbortController();
    call.on('cancelled', () => ctrl.abort(new TransportError('CANCELLED', 'caller cancelled')));
    const reply = await this.answer(env, ctrl.signal);
    const bytes = encodeEnvelope(reply);
    this.counters.bytesSent += bytes.byteLength;
    if (bytes.byteLength > this.maxMessageBytes) {
      return cb(null, {
        ...reply,
        body: new Uint8Array(0),
        tensors: [],
        error: errorToWire('PAYLOAD_TOO_LARGE', `reply of ${bytes.byteLength} bytes exceeds maxMessageBytes ${this.maxMessageBytes} of '${this.nodeId}'`, false),
      });
    }
    cb(null, bytes as unknown as Envelope);
  }

  private serveNotify(call: grpc.ServerUnaryCall<Envelope, Ack>, cb: grpc.sendUnaryData<Ack>): void {
    const refused = this.unaryRefusal(call);
    if (refused) return cb(refused);
    const env = call.request;
    const problem = this.checkIncoming(env);
    if (problem) return cb(null, { id: env.id, error: problem });
    let payload: Payload;
    try {
      payload = payloadFromWire(env, `notify '${env.method}' from ${env.source}`, this.bodyLimits);
    } catch (err) {
      return cb(null, { id: env.id, error: errorToWire('INVALID_ARGUMENT', errorMessage(err), false) });
    }
    void this.invoke(env.method, payload, { source: env.source, metadata: env.metadata }).catch((err: unknown) =>
      void this.refusals.refuse(env.source, `notify handler '${sanitizeForLog(env.method, 40)}' failed`, errorMessage(err)),
    );
    cb(null, { id: env.id });
  }

  private checkIncoming(env: Envelope): ReturnType<typeof errorToWire> | undefined {
    if (env.target && env.target !== this.nodeId)
      return errorToWire('UNKNOWN_PEER', `message for '${env.target}' reached node '${this.nodeId}'`, false);
    if (!this.handlers.has(env.method)) return errorToWire('UNKNOWN_METHOD', `node '${this.nodeId}' has no handler for method '${env.method}'`, false);
    return undefined;
  }

  /** An UNAUTHENTICATED RESPONSE to `env`, for a request whose sender may not make it. */
  private refusedReply(env: Envelope, message: string): Envelope {
    return { ...this.responseTo(env), error: errorToWire('UNAUTHENTICATED', message, false) };
  }

  /** An empty RESPONSE envelope answering `env`. */
  private responseTo(env: Envelope): Envelope {
    return {
      id: newId(),
      method: env.method,
      source: this.nodeId,
      target: env.source,
      correlationId: env.id,
      timestampMs: Date.now(),
      metadata: {},
      body: new Uint8Array(0),
      tensors: [],
      kind: EnvelopeKind.ENVELOPE_KIND_RESPONSE,
      timeoutMs: 0,
    };
  }

  /** Runs the handler for a REQUEST (or NOTIFY) envelope and builds the RESPONSE envelope. */
  private async answer(env: Envelope, signal: AbortSignal): Promise<Envelope> {
    const reply = this.responseTo(env);
    const problem = this.checkIncoming(env);
    if (problem) return { ...reply, error: problem };
    try {
      const payload = payloadFromWire(env, `call '${env.method}' from ${env.source}`, this.bodyLimits);
      const result = await this.invoke(env.method, payload, { source: env.source, metadata: env.metadata, timeoutMs: env.timeoutMs, signal });
      return { ...reply, ...payloadToWire(result, `reply of '${this.nodeId}' to '${env.method}'`) };
    } catch (err) {
      if (err instanceof HandlerFailure) return { ...reply, error: errorToWire(err.code, err.message, true) };
      const code = err instanceof TransportError ? err.code : 'INTERNAL';
      return { ...reply, error: errorToWire(code, errorMessage(err), false) };
    }
  }

  /**
   * A peer whose stream broke its limits may not register again for 1 s, doubling per repeat up
   * to 60 s (strikes are forgotten after 10 clean minutes): closing its link is no defence if it
   * can reconnect at once and make this node read another maximum-size frame. UNAVAILABLE, so an
   * honest node dropped for reading too slowly retries with its backoff.
   */
  private penalise(nodeId: string): void {
    const now = Date.now();
    const prev = this.penalties.get(nodeId);
    const strikes = prev && now - prev.until < 600_000 ? prev.strikes + 1 : 1;
    this.penalties.delete(nodeId);
    this.penalties.set(nodeId, { until: now + Math.min(60_000, 1_000 * 2 ** (strikes - 1)), strikes });
    // Bounded like the refusal log: the oldest entry goes first.
    while (this.penalties.size > 1024) this.penalties.delete(this.penalties.keys().next().value!);
  }

  /**
   * Why a register frame is refused: [status, rate-limit reason, details], or undefined. Runs the
   * id checks first, so no later message (or log line) quotes an id that is not a valid one.
   */
  private registrationProblem(
    md: grpc.Metadata,
    authContext: Parameters<PeerAuth['identityProblem']>[1],
    r: { nodeId: string; expectedTarget: string; role: string; metadata: Record<string, string> },
  ): [grpc.status, string, string] | undefined {
    const bad = nodeIdProblem(r.nodeId);
    if (bad) return [grpc.status.INVALID_ARGUMENT, 'invalid node id', `register.node_id: ${bad}`];
    const fields = registrationFieldsProblem(r.role, r.metadata);
    if (fields) return [grpc.status.INVALID_ARGUMENT, 'invalid registration fields', `'${r.nodeId}': ${fields}`];
    if (r.expectedTarget && r.expectedTarget !== this.nodeId)
      return [grpc.status.NOT_FOUND, 'wrong target', `'${r.nodeId}' expected node '${sanitizeForLog(r.expectedTarget)}' but reached '${this.nodeId}'`];
    if (r.nodeId === this.nodeId) return [grpc.status.ALREADY_EXISTS, 'own id', `node id '${r.nodeId}' is this server's own id`];
    const unbound = this.auth.identityProblem(md, authContext, r.nodeId);
    if (unbound) return [grpc.status.UNAUTHENTICATED, 'identity not bound', `may not register as '${r.nodeId}': ${unbound}`];
    const penalty = this.penalties.get(r.nodeId);
    if (penalty && Date.now() < penalty.until)
      return [grpc.status.UNAVAILABLE, 'cooling down', `'${r.nodeId}' broke the stream limits of '${this.nodeId}'; registration refused for ${Math.ceil((penalty.until - Date.now()) / 1000)} s more`];
    const existing = this.inbound.get(r.nodeId);
    if (existing && !existing.link.isClosed)
      return [grpc.status.ALREADY_EXISTS, 'id taken', `node id '${r.nodeId}' is already registered with '${this.nodeId}' by a live connection`];
    if (this.stopping?.signal.aborted) return [grpc.status.UNAVAILABLE, 'stopping', `node '${this.nodeId}' is stopping`];
    return undefined;
  }

  /**
   * Accepts learners over WebSocket at `path` on `server` (the dashboard's HTTP or HTTPS server):
   * the frames, token, registration checks and stream bounds of the Connect stream, so the caller
   * cannot tell a browser learner from a gRPC one. stop() closes it, or the returned close().
   */
  acceptWebSockets(server: HttpServer | HttpsServer, path: string): { close(): void } {
    const acceptor = new WebSocketAcceptor(this.webLinkHost(), server, path);
    this.webAcceptors.add(acceptor);
    this.logger.info(`transport ${this.nodeId}: accepting learners over WebSocket`, { path });
    return {
      close: () => {
        this.webAcceptors.delete(acceptor);
        acceptor.close();
      },
    };
  }

  private webLinkHost(): WebLinkHost {
    return {
      nodeId: this.nodeId,
      // One WebSocket message is one frame: at most a chunk plus its header.
      maxFrameBytes: this.chunkBytes + 64 * 1024,
      compression: this.wire.compression === 'gzip',
      logger: this.logger,
      refuse: (host, reason, details) => void this.refusals.refuse(host, reason, details),
      admits: (md) => this.auth.admits(md),
      registrationProblem: (md, authContext, r) =>
        this.started ? this.registrationProblem(md, authContext, r)?.[2] : `node '${this.nodeId}' is not started`,
      selfInfo: () => this.selfInfo(),
      join: (peer, stream, end) => this.joinInbound(peer, stream, end),
    };
  }

  /** Adds a registered WebSocket peer, as serveConnect does a gRPC one. */
  private joinInbound(peer: PeerInfo, stream: FrameStream, end: (reason: string, hostile: boolean) => void): { link: StreamLink; leave(reason: string): void } {
    const leave = (reason: string) => {
      if (entry.link.isClosed) return;
      entry.link.close(reason);
      if (this.inbound.get(peer.nodeId) !== entry) return;
      this.inbound.delete(peer.nodeId);
      this.logger.info(`transport ${this.nodeId}: peer left`, { peer: peer.nodeId, reason });
      this.emit('peer-left', peer);
    };
    const owner = this.linkOwner(peer.nodeId, (reason, hostile) => {
      leave(hostile ? reason : 'heartbeat timeout');
      if (hostile) this.penalise(peer.nodeId);
      end(reason, hostile === true);
    });
    const linkOptions = { chunkBytes: this.chunkBytes, heartbeat: this.o.heartbeat, limits: this.streamLimits, logger: this.peerLogger(peer.nodeId), selfId: this.nodeId };
    const entry: Inbound = { peer, link: new StreamLink(stream, peer.nodeId, owner, linkOptions), end: () => end('transport stopped', false) };
    this.inbound.set(peer.nodeId, entry);
    this.logger.info(`transport ${this.nodeId}: peer joined`, { peer: peer.nodeId, role: peer.role, link: 'websocket' });
    this.emit('peer-joined', peer);
    return { link: entry.link, leave };
  }

  private serveConnect(stream: grpc.ServerDuplexStream<Frame, Frame>): void {
    const host = GrpcTransport.peerHost(stream.getPeer());
    const reject = (code: grpc.status, details: string, reason = grpc.status[code] ?? 'refused') => {
      this.refusals.refuse(host, `registration: ${reason}`, details);
      stream.emit('error', { code, details });
    };
    if (!this.auth.admits(stream.metadata)) return reject(grpc.status.UNAUTHENTICATED, `node '${this.nodeId}': missing or wrong bearer token`, 'wrong token');
    let entry: Inbound | undefined;
    const registerTimer = setTimeout(() => reject(grpc.status.DEADLINE_EXCEEDED, 'no register frame within 10 s'), 10_000);
    registerTimer.unref?.();
    const gone = (reason: string) => {
      clearTimeout(registerTimer);
      if (!entry || entry.link.isClosed) return;
      entry.link.close(reason);
      if (this.inbound.get(entry.peer.nodeId) === entry) {
        this.inbound.delete(entry.peer.nodeId);
        this.logger.info(`transport ${this.nodeId}: peer left`, { peer: entry.peer.nodeId, reason });
        this.emit('peer-left', entry.peer);
      }
    };
    stream.on('data', (frame: Frame) => {
      if (entry) return entry.link.receive(frame);
      clearTimeout(registerTimer);
      if (frame.kind?.$case !== 'register') return reject(grpc.status.INVALID_ARGUMENT, `first frame must be register, got ${frame.kind?.$case ?? 'empty'}`);
      const r = frame.kind.register;
      const problem = this.registrationProblem(stream.metadata, stream.getAuthContext(), r);
      if (problem) return reject(problem[0], problem[2], problem[1]);
      const peer: PeerInfo = { nodeId: r.nodeId, role: r.role, metadata: { ...r.metadata }, connectedAt: Date.now() };
      stream.write({ kind: { $case: 'registerAck', registerAck: this.selfInfo() } });
      const newEntry: Inbound = {
        peer,
        end: () => stream.end(),
        link: new StreamLink(stream, r.nodeId, this.linkOwner(r.nodeId, (reason, hostile) => {
          gone(hostile ? reason : 'heartbeat timeout');
          if (hostile) {
            this.penalise(r.nodeId);
            resetServerStream(stream, reason);
          }
          else stream.end();
        }), { chunkBytes: this.chunkBytes, heartbeat: this.o.heartbeat, limits: this.streamLimits, logger: this.peerLogger(r.nodeId), selfId: this.nodeId }),
      };
      entry = newEntry;
      this.inbound.set(r.nodeId, newEntry);
      this.logger.info(`transport ${this.nodeId}: peer joined`, { peer: r.nodeId, role: r.role });
      this.emit('peer-joined', peer);
    });
    stream.on('end', () => {
      gone('stream ended by peer');
      stream.end();
    });
    stream.on('cancelled', () => gone('stream cancelled'));
    stream.on('error', (err: Error) => gone(`stream error: ${err.message}`));
    stream.on('close', () => gone('stream closed'));
  }

  /**
   * The logger a peer's StreamLink writes to: warnings and errors (dropped frames, bad chunks) go
   * through the refusal limiter, so a peer repeating a bad frame 50,000 times writes a few lines.
   */
  private peerLogger(peerId: string): Logger {
    // The rate-limit key is the message without what varies per frame (envelope ids, numbers).
    const kind = (msg: string) => msg.replace(/envelope \S+/g, 'envelope *').replace(/\d+/g, '#').slice(0, 120);
    const withMeta = (msg: string, meta?: object) => (meta ? `${msg} ${JSON.stringify(meta)}` : msg);
    return {
      debug: (msg, meta) => this.logger.debug(msg, meta),
      info: (msg, meta) => this.logger.info(msg, meta),
      warn: (msg, meta) => void this.refusals.line(peerId, kind(msg), withMeta(msg, meta), 'warn'),
      error: (msg, meta) => void this.refusals.line(peerId, kind(msg), withMeta(msg, meta), 'error'),
    };
  }

  private linkOwner(peerId: string, onDead: (reason: string, hostile?: boolean) => void) {
    return {
      onEnvelope: async (env: Envelope, signal: AbortSignal): Promise<Envelope | undefined> => {
        // The stream is bound to the id it registered (and was authenticated) as.
        if (env.source !== peerId) {
          this.refusals.refuse(peerId, 'source is not the registered id', `envelope '${sanitizeForLog(env.method)}' claims source '${sanitizeForLog(env.source)}'`);
          if (env.kind === EnvelopeKind.ENVELOPE_KIND_NOTIFY) return undefined;
          return this.refusedReply(env, `stream registered as '${peerId}' may not send as '${sanitizeForLog(env.source)}'`);
        }
        if (env.kind === EnvelopeKind.ENVELOPE_KIND_NOTIFY) {
          try {
            const payload = payloadFromWire(env, `notify '${env.method}' from ${env.source}`, this.bodyLimits);
            await this.invoke(env.method, payload, { source: env.source, metadata: env.metadata });
          } catch (err) {
            this.refusals.refuse(peerId, `notify '${sanitizeForLog(env.method, 40)}' failed`, errorMessage(err));
          }
          return undefined;
        }
        return this.answer(env, signal);
      },
      onDead: (reason: string) => {
        this.logger.warn(`transport ${this.nodeId}: peer '${peerId}' declared gone: ${reason}`);
        onDead(reason);
      },
      // The link logged the refusal (rate-limited) already.
      onViolation: (reason: string) => onDead(reason, true),
      countBytes: (sent: number, received: number) => {
        this.counters.bytesSent += sent;
        this.counters.bytesReceived += received;
      },
    };
  }

  // ---------------------------------------------------------------- dialing side

  private async connectFirst(target: { nodeId: string; host: string; port: number }): Promise<void> {
    const out: Outbound = {
      target,
      client: new grpc.Client(`${target.host}:${target.port}`, clientCredentials(this.o.tls), channelOptions(this.wire)),
      registeredOnce: false,
    };
    this.outbound.set(target.nodeId, out);
    const warning = dialWarning(target.host, { token: this.o.authToken !== undefined, tls: this.o.tls !== undefined });
    if (warning) this.logger.warn(`transport ${this.nodeId}: ${warning}`);
    try {
      await this.dialWithRetry(out);
    } catch (err) {
      // "No connection established" alone does not say that TLS is the usual cause.
      if (err instanceof TransportError && err.code === 'UNAVAILABLE' && this.o.tls)
        throw new TransportError(
          'UNAVAILABLE',
          `${err.message} (TLS is on: the trainer must present a certificate signed by tls.ca that names '${target.host}', ` +
            'and accept this node\'s tls.cert when it requires client certificates)',
          { remote: target.nodeId, cause: err },
        );
      throw err;
    }
  }

  private async dialWithRetry(out: Outbound): Promise<void> {
    const { target } = out;
    // ALREADY_EXISTS is retried too: the live connection holding this id is often our own
    // previous life (killed, restarted) that the trainer has not yet declared gone.
    const retryable: ReadonlySet<string> = new Set(['UNAVAILABLE', 'DEADLINE_EXCEEDED', 'ALREADY_EXISTS']);
    await this.policy.run(() => this.dial(out), {
      signal: this.stopping?.signal,
      isRetryable: (e) => e instanceof TransportError && retryable.has(e.code),
      onRetry: (attempt, delayMs, e) => {
        const taken = e instanceof TransportError && e.code === 'ALREADY_EXISTS' ? ' (id taken, perhaps by a stale connection of ours)' : '';
        this.logger.warn(`transport ${this.nodeId}: dialing '${target.nodeId}' at ${target.host}:${target.port} failed${taken} (attempt ${attempt}), retrying in ${delayMs} ms`, {
          error: errorMessage(e),
        });
      },
    });
  }

  /** Opens Connect, sends register, waits for the ack. Resolves once registered. */
  private dial(out: Outbound): Promise<void> {
    const { target } = out;
    const what = `registering '${this.nodeId}' with '${target.nodeId}' at ${target.host}:${target.port}`;
    return new Promise<void>((resolve, reject) => {
      const stream = out.client.makeBidiStreamRequest(
        PATHS.connect,
        nodeServiceDefinition.connect.requestSerialize,
        nodeServiceDefinition.connect.responseDeserialize,
        authMetadata(this.o.authToken),
      ) as grpc.ClientDuplexStream<Frame, Frame>;
      let link: StreamLink | undefined;
      let settled = false;
      const timer = setTimeout(() => {
        fail(new TransportError('DEADLINE_EXCEEDED', `${what}: no answer within ${this.timeoutMs} ms`, { remote: target.nodeId }));
        stream.cancel();
      }, this.timeoutMs);
      const fail = (err: TransportError) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        reject(err);
      };
      const closed = (reason: string) => {
        if (!settled) return fail(new TransportError('UNAVAILABLE', `${what}: stream closed before registration (${reason})`, { remote: target.nodeId }));
        if (!link || link.isClosed) return;
        link.close(reason);
        if (out.link !== link) return;
        out.link = undefined;
        out.stream = undefined;
        const peer = out.peer!;
        out.peer = undefined;
        if (this.stopping?.signal.aborted) return;
        this.logger.warn(`transport ${this.nodeId}: lost '${target.nodeId}' (${reason}); reconnecting`);
        this.emit('disconnected', peer);
        void this.reconnect(out);
      };
      stream.on('data', (frame: Frame) => {
        if (link) return link.receive(frame);
        if (frame.kind?.$case !== 'registerAck') {
          stream.cancel();
          return fail(new TransportError('INTERNAL', `${what}: expected registerAck, got ${frame.kind?.$case ?? 'empty frame'}`, { remote: target.nodeId }));
        }
        const ack = frame.kind.registerAck;
        if (ack.nodeId !== target.nodeId) this.logger.warn(`transport ${this.nodeId}: '${target.nodeId}' answered as '${sanitizeForLog(ack.nodeId)}'`);
        link = new StreamLink(stream, target.nodeId, this.linkOwner(target.nodeId, (reason) => {
          closed(reason);
          stream.cancel();
        }), { chunkBytes: this.chunkBytes, heartbeat: this.o.heartbeat, limits: this.streamLimits, logger: this.peerLogger(target.nodeId), selfId: this.nodeId });
        out.link = link;
        out.stream = stream;
        out.peer = { nodeId: target.nodeId, role: ack.role, metadata: { ...ack.metadata }, connectedAt: Date.now() };
        settled = true;
        clearTimeout(timer);
        const first = !out.registeredOnce;
        out.registeredOnce = true;
        this.logger.info(`transport ${this.nodeId}: registered with '${target.nodeId}'`, { host: target.host, port: target.port });
        this.emit(first ? 'peer-joined' : 'reconnected', out.peer);
        resolve();
      });
      stream.on('error', (err: Error) => {
        if (!settled) return fail(fromGrpcError(err, { remote: target.nodeId, what }));
        closed(`stream error: ${(err as grpc.ServiceError).details ?? err.message}`);
      });
      stream.on('end', () => closed('stream ended by server'));
      stream.on('close', () => closed('stream closed'));
      stream.write({
        kind: { $case: 'register', register: { ...this.selfInfo(), expectedTarget: target.nodeId } },
      });
    });
  }

  /** Redials until registered again or stop(); delays follow the RetryPolicy, attempts are unbounded. */
  private async reconnect(out: Outbound): Promise<void> {
    const signal = this.stopping?.signal;
    for (let attempt = 1; !signal?.aborted; attempt++) {
      const delay = this.policy.delayMs(attempt);
      this.logger.info(`transport ${this.nodeId}: reconnect attempt ${attempt} to '${out.target.nodeId}' in ${delay} ms`);
      try {
        await sleep(delay, signal);
        await this.dial(out);
        return;
      } catch (err) {
        if (signal?.aborted) return;
        this.logger.warn(`transport ${this.nodeId}: reconnect attempt ${attempt} to '${out.target.nodeId}' failed`, { error: errorMessage(err) });
      }
    }
  }

  // ---------------------------------------------------------------- calls

  peers(): PeerInfo[] {
    const list: PeerInfo[] = [];
    for (const e of this.inbound.values()) list.push(e.peer);
    for (const o of this.outbound.values()) if (o.peer) list.push(o.peer);
    return list.map((p) => ({ ...p, metadata: { ...p.metadata } }));
  }

  private envelope(target: string, method: string, payload: Payload, kind: EnvelopeKind, timeoutMs: number): Envelope {
    return {
      id: newId(),
      method,
      source: this.nodeId,
      target,
      correlationId: '',
      timestampMs: Date.now(),
      metadata: {},
      kind,
      timeoutMs,
      ...payloadToWire(payload, `${kind === EnvelopeKind.ENVELOPE_KIND_NOTIFY ? 'notify' : 'call'}('${target}', '${method}')`),
    };
  }

  private unknownPeer(target: string, method: string): TransportError {
    const known = [...this.inbound.keys(), ...this.outbound.keys()];
    return new TransportError('UNKNOWN_PEER', `node '${this.nodeId}' has no connected peer '${target}' (known: ${known.join(', ') || 'none'})`, {
      remote: target,
      method,
    });
  }

  private responseToPayload(reply: Envelope, target: string, method: string): Payload {
    if (reply.error) {
      const e = reply.error;
      if (e.fromHandler) throw new RemoteError(e.code, e.message, { remote: target, method });
      const code = isTransportErrorCode(e.code) ? e.code : 'INTERNAL';
      throw new TransportError(code, `${target}: ${e.message}`, { remote: target, method });
    }
    let payload: Payload;
    try {
      payload = payloadFromWire(reply, `reply of ${target} to '${method}'`, this.bodyLimits);
    } catch (err) {
      // A reply over the body limits, or with broken tensors: the caller gets the error, the log one line per peer.
      this.refusals.refuse(target, 'reply refused', errorMessage(err));
      throw err;
    }
    return payload;
  }

  async call(target: string, method: string, payload: Payload, options: CallOptions = {}): Promise<Payload> {
    const timeoutMs = resolveTimeout(options.timeoutMs, this.timeoutMs, `call('${target}', '${method}')`);
    if (!this.started || this.stopping?.signal.aborted)
      throw new TransportError('UNAVAILABLE', `transport '${this.nodeId}' is not started`, { remote: target, method });
    const once = () => this.callOnce(target, method, payload, timeoutMs, options.signal);
    if (!options.retry) return once();
    return this.policy.run(once, {
      signal: options.signal,
      isRetryable: (e) => e instanceof TransportError && !(e instanceof RemoteError) && e.code === 'UNAVAILABLE',
      onRetry: (attempt, delayMs, e) =>
        this.logger.warn(`transport ${this.nodeId}: call '${method}' to ${target} failed (attempt ${attempt}), retrying in ${delayMs} ms`, { error: errorMessage(e) }),
    });
  }

  private async callOnce(target: string, method: string, payload: Payload, timeoutMs: number, signal?: AbortSignal): Promise<Payload> {
    const env = this.envelope(target, method, payload, EnvelopeKind.ENVELOPE_KIND_REQUEST, timeoutMs);
    const inbound = this.inbound.get(target);
    if (inbound) {
      this.counters.callsSent++;
      const req = inbound.link.request(env);
      const reply = await withDeadline(req.response, { timeoutMs, signal, target, method, onGiveUp: (e) => req.cancel(e.message) });
      return this.responseToPayload(reply, target, method);
    }
    const out = this.outbound.get(target);
    if (!out) throw this.unknownPeer(target, method);
    const size = out.link && !out.link.isClosed ? encodedSize(env) : 0;
    // Above maxMessageBytes the unary path's PAYLOAD_TOO_LARGE error stays the answer.
    if (out.link && size >= STREAM_CALL_BYTES && size <= this.maxMessageBytes) {
      // Large payloads (a model upload) go up the registered Connect stream in chunks: a unary
      // message of that size costs three model-sized, freshly mapped buffers (encode, grpc-js
      // framing, grpc-js reassembly), chunks reuse small ones. The listener answers stream
      // requests exactly like unary ones.
      this.counters.callsSent++;
      const req = out.link.request(env);
      const reply = await withDeadline(req.response, { timeoutMs, signal, target, method, onGiveUp: (e) => req.cancel(e.message) });
      return this.responseToPayload(reply, target, method);
    }
    const bytes = this.sizeChecked(env, target, method);
    this.counters.callsSent++;
    this.counters.bytesSent += bytes.byteLength;
    const reply = await new Promise<Envelope>((resolve, reject) => {
      const call = out.client.makeUnaryRequest(
        PATHS.call,
        nodeServiceDefinition.call.requestSerialize,
        nodeServiceDefinition.call.responseDeserialize,
        bytes as unknown as Envelope,
        authMetadata(this.o.authToken),
        { deadline: Date.now() + timeoutMs },
        (err, res) => (err ? reject(fromGrpcError(err, { remote: target, method, what: `call '${method}' to ${target}` })) : resolve(res!)),
      );
      const onAbort = () => call.cancel();
      signal?.addEventListener('abort', onAbort, { once: true });
      if (signal?.aborted) call.cancel();
    });
    this.counters.bytesReceived += reply.body.byteLength + reply.tensors.reduce((a, t) => a + t.data.byteLength, 0);
    return this.responseToPayload(reply, target, method);
  }

  private sizeChecked(env: Envelope, target: string, method: string): Buffer {
    const bytes = encodeEnvelope(env);
    if (bytes.byteLength > this.maxMessageBytes)
      throw new TransportError(
        'PAYLOAD_TOO_LARGE',
        `${method} to ${target}: encoded message is ${bytes.byteLength} bytes, over maxMessageBytes ${this.maxMessageBytes} of '${this.nodeId}' (raise maxMessageBytes on both nodes)`,
        { remote: target, method },
      );
    return bytes;
  }

  async notify(target: string, method: string, payload: Payload): Promise<void> {
    if (!this.started || this.stopping?.signal.aborted)
      throw new TransportError('UNAVAILABLE', `transport '${this.nodeId}' is not started`, { remote: target, method });
    const env = this.envelope(target, method, payload, EnvelopeKind.ENVELOPE_KIND_NOTIFY, 0);
    const inbound = this.inbound.get(target);
    if (inbound) {
      this.counters.callsSent++;
      await inbound.link.send(env);
      return;
    }
    const out = this.outbound.get(target);
    if (!out) throw this.unknownPeer(target, method);
    const bytes = this.sizeChecked(env, target, method);
    this.counters.callsSent++;
    this.counters.bytesSent += bytes.byteLength;
    const ack = await new Promise<Ack>((resolve, reject) =>
      out.client.makeUnaryRequest(
        PATHS.notify,
        nodeServiceDefinition.notify.requestSerialize,
        nodeServiceDefinition.notify.responseDeserialize,
        bytes as unknown as Envelope,
        authMetadata(this.o.authToken),
        { deadline: Date.now() + this.timeoutMs },
        (err, res) => (err ? reject(fromGrpcError(err, { remote: target, method, what: `notify '${method}' to ${target}` })) : resolve(res!)),
      ),
    );
    if (ack.error) {
      const code = isTransportErrorCode(ack.error.code) ? ack.error.code : 'INTERNAL';
      throw new TransportError(code, `${target}: ${ack.error.message}`, { remote: target, method });
    }
  }

  // ---------------------------------------------------------------- shutdown

  async stop(): Promise<void> {
    if (!this.started) return;
    this.started = false;
    this.stopping?.abort(new TransportError('CANCELLED', `node '${this.nodeId}' stopping`));
    for (const out of this.outbound.values()) {
      out.link?.close('transport stopped');
      out.stream?.end();
      out.stream?.cancel();
      out.client.close();
    }
    this.outbound.clear();
    for (const w of this.webAcceptors) w.close();
    this.webAcceptors.clear();
    for (const e of [...this.inbound.values()]) {
      e.link.close('transport stopped');
      e.end();
    }
    this.inbound.clear();
    this.abortRunning(`node '${this.nodeId}' stopped`);
    const server = this.server;
    this.server = undefined;
    if (server) {
      await new Promise<void>((resolve) => {
        const force = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, 1_000);
        server.tryShutdown(() => {
          clearTimeout(force);
          resolve();
        });
      });
    }
    this.logger.info(`transport ${this.nodeId}: stopped`);
  }
}

