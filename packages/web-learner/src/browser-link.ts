// The learner's end of a Connect stream carried over a WebSocket (the trainer's transport.web):
// one binary message per protobuf Frame, envelopes sliced into chunks, heartbeats answered. It
// uses the DOM WebSocket API only, so the same code runs in a browser tab and, given `ws`'s
// WebSocket class, in Node (benchmarks).
import { DataType, Envelope, EnvelopeKind, Frame, type TensorProto } from '@oiafed/transport/wire';

/** A float32 tensor: all the learner protocol moves (weights and their extras). */
export interface WebTensor {
  name: string;
  shape: number[];
  data: Float32Array;
}

export interface WebPayload {
  body?: unknown;
  tensors?: WebTensor[];
}

export type WebHandler = (payload: WebPayload, signal: AbortSignal) => Promise<WebPayload> | WebPayload;

/** The constructor part of the DOM WebSocket API that this link needs. */
export type WebSocketClass = new (url: string) => WebSocket;

export interface BrowserLinkOptions {
  /** ws:// or wss:// URL of the trainer's transport.web path. */
  url: string;
  nodeId: string;
  /** The trainer's auth_token, sent in the register frame (a browser cannot set headers). */
  token?: string;
  /** Registration metadata (learner type, capabilities, sample count, backend). */
  metadata: Record<string, string>;
  /** Slice size of the envelopes this side sends (256 KiB: well under the trainer's frame bound). */
  chunkBytes?: number;
  /** Largest envelope this side reassembles (512 MiB). */
  maxEnvelopeBytes?: number;
  /** Milliseconds to wait for the trainer's registerAck (15 000). */
  registerTimeoutMs?: number;
  /** The WebSocket class (the page's by default; `ws`'s in Node). */
  WebSocket?: WebSocketClass;
}

interface Assembly {
  buf: Uint8Array;
  filled: number;
  nextSeq: number;
}

const decoder = new TextDecoder();
const encoder = new TextEncoder();

/** A copy of `bytes` in a fresh (4-byte aligned) buffer, viewed as float32. */
function float32Of(bytes: Uint8Array): Float32Array {
  return new Float32Array(bytes.slice().buffer);
}

function randomId(): string {
  const b = crypto.getRandomValues(new Uint8Array(12));
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
}

/** Body and float32 tensors of a received envelope. */
export function payloadOfEnvelope(env: Envelope): WebPayload {
  const body = env.body.byteLength > 0 ? JSON.parse(decoder.decode(env.body)) : undefined;
  const tensors = env.tensors.map((t) => {
    if (t.dtype !== DataType.DATA_TYPE_FLOAT32) throw new Error(`tensor ${t.name}: only float32 tensors are supported in the browser, got dtype ${t.dtype}`);
    return { name: t.name, shape: t.shape.map(Number), data: float32Of(t.data) };
  });
  return { body, tensors };
}

function tensorProtos(tensors: WebTensor[] | undefined): TensorProto[] {
  return (tensors ?? []).map((t) => ({
    name: t.name,
    shape: t.shape,
    dtype: DataType.DATA_TYPE_FLOAT32,
    data: new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength),
  }));
}

/** A registered link to the trainer; `closed` settles with the reason the socket ended. */
export class BrowserLink {
  private readonly assemblies = new Map<string, Assembly>();
  private readonly serving = new Map<string, AbortController>();
  private sendQueue: Promise<void> = Promise.resolve();
  private readonly chunkBytes: number;
  private readonly maxEnvelopeBytes: number;
  readonly closed: Promise<string>;
  private markClosed!: (reason: string) => void;
  /** Bytes of envelopes sent and received (what the page shows as up/down). */
  bytesSent = 0;
  bytesReceived = 0;

  private constructor(
    private readonly ws: WebSocket,
    private readonly o: BrowserLinkOptions,
    private readonly handlers: Record<string, WebHandler>,
    readonly trainerId: string,
  ) {
    this.chunkBytes = o.chunkBytes ?? 256 * 1024;
    this.maxEnvelopeBytes = o.maxEnvelopeBytes ?? 512 * 1024 * 1024;
    this.closed = new Promise((resolve) => (this.markClosed = resolve));
    ws.onmessage = (ev: MessageEvent) => this.onMessage(ev.data as ArrayBuffer);
    ws.onclose = (ev: CloseEvent) => this.onClosed(`socket closed (${ev.code}${ev.reason ? `: ${ev.reason}` : ''})`);
  }

  /** Opens the socket, registers, and resolves once the trainer acknowledged the registration. */
  static connect(o: BrowserLinkOptions, handlers: Record<string, WebHandler>): Promise<BrowserLink> {
    const Ctor = o.WebSocket ?? globalThis.WebSocket;
    const ws = new Ctor(o.url);
    ws.binaryType = 'arraybuffer';
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => fail(`no registerAck within ${o.registerTimeoutMs ?? 15_000} ms`), o.registerTimeoutMs ?? 15_000);
      const fail = (why: string) => {
        clearTimeout(timer);
        ws.onclose = null;
        ws.close();
        reject(new Error(`joining ${o.url} as '${o.nodeId}': ${why}`));
      };
      ws.onerror = () => undefined;
      ws.onclose = (ev: CloseEvent) => fail(`closed by the trainer (${ev.code}${ev.reason ? `: ${ev.reason}` : ''})`);
      ws.onopen = () => {
        const metadata = { ...o.metadata, ...(o.token !== undefined ? { authorization: `Bearer ${o.token}` } : {}) };
        ws.send(Frame.encode({ kind: { $case: 'register', register: { nodeId: o.nodeId, role: 'learner', metadata, expectedTarget: '' } } }).finish());
      };
      ws.onmessage = (ev: MessageEvent) => {
        const frame = Frame.decode(new Uint8Array(ev.data as ArrayBuffer));
        if (frame.kind?.$case !== 'registerAck') return fail(`expected registerAck, got ${frame.kind?.$case ?? 'an empty frame'}`);
        clearTimeout(timer);
        resolve(new BrowserLink(ws, o, handlers, frame.kind.registerAck.nodeId));
      };
    });
  }

  close(reason = 'learner left'): void {
    this.ws.close(1000, reason.slice(0, 120));
    this.onClosed(reason);
  }

  private onClosed(reason: string): void {
    for (const c of this.serving.values()) c.abort(new Error(reason));
    this.serving.clear();
    this.assemblies.clear();
    this.markClosed(reason);
  }

  private sendFrame(frame: Frame): void {
    if (this.ws.readyState === this.ws.OPEN) this.ws.send(Frame.encode(frame).finish());
  }

  private onMessage(data: ArrayBuffer): void {
    let frame: Frame;
    try {
      frame = Frame.decode(new Uint8Array(data));
    } catch (err) {
      return this.close(`malformed frame from the trainer: ${(err as Error).message}`);
    }
    const kind = frame.kind;
    if (kind?.$case === 'heartbeat' && !kind.heartbeat.pong) this.sendFrame({ kind: { $case: 'heartbeat', heartbeat: { timestampMs: Date.now(), pong: true } } });
    else if (kind?.$case === 'cancel') this.serving.get(kind.cancel.envelopeId)?.abort(new Error(`cancelled by the trainer: ${kind.cancel.reason}`));
    else if (kind?.$case === 'chunk') this.onChunk(kind.chunk);
  }

  private onChunk(c: { envelopeId: string; seq: number; last: boolean; data: Uint8Array; totalBytes: bigint | number | string }): void {
    if (c.seq === 0) {
      const total = Number(c.totalBytes);
      if (!Number.isSafeInteger(total) || total < c.data.byteLength || total > this.maxEnvelopeBytes)
        return this.close(`envelope of ${String(c.totalBytes)} bytes refused (limit ${this.maxEnvelopeBytes})`);
      this.assemblies.set(c.envelopeId, { buf: new Uint8Array(total), filled: 0, nextSeq: 0 });
    }
    const a = this.assemblies.get(c.envelopeId);
    if (!a || c.seq !== a.nextSeq || a.filled + c.data.byteLength > a.buf.byteLength) {
      this.assemblies.delete(c.envelopeId);
      return;
    }
    a.buf.set(c.data, a.filled);
    a.filled += c.data.byteLength;
    a.nextSeq++;
    if (!c.last) return;
    this.assemblies.delete(c.envelopeId);
    if (a.filled === a.buf.byteLength) void this.deliver(a.buf);
  }

  private async deliver(bytes: Uint8Array): Promise<void> {
    this.bytesReceived += bytes.byteLength;
    const env = Envelope.decode(bytes);
    if (env.kind !== EnvelopeKind.ENVELOPE_KIND_REQUEST && env.kind !== EnvelopeKind.ENVELOPE_KIND_NOTIFY) return;
    const ctrl = new AbortController();
    this.serving.set(env.id, ctrl);
    let reply: Partial<Envelope>;
    try {
      const handler = this.handlers[env.method];
      if (!handler) throw Object.assign(new Error(`browser learner has no handler for '${env.method}'`), { code: 'UNKNOWN_METHOD' });
      const out = await handler(payloadOfEnvelope(env), ctrl.signal);
      reply = { body: out.body === undefined ? new Uint8Array(0) : encoder.encode(JSON.stringify(out.body)), tensors: tensorProtos(out.tensors) };
    } catch (err) {
      const e = err as Error & { code?: string };
      reply = { error: { code: e.code ?? 'INTERNAL', message: e.message ?? String(err), details: '', fromHandler: true } };
    } finally {
      this.serving.delete(env.id);
    }
    if (env.kind === EnvelopeKind.ENVELOPE_KIND_REQUEST) await this.send(this.responseTo(env, reply)).catch(() => undefined);
  }

  private responseTo(env: Envelope, reply: Partial<Envelope>): Envelope {
    return {
      id: randomId(),
      method: env.method,
      source: this.o.nodeId,
      target: env.source,
      correlationId: env.id,
      timestampMs: Date.now(),
      metadata: {},
      body: new Uint8Array(0),
      tensors: [],
      kind: EnvelopeKind.ENVELOPE_KIND_RESPONSE,
      timeoutMs: 0,
      ...reply,
    };
  }

  /** Sends one envelope as chunk frames, one envelope at a time, pausing while the socket's buffer is full. */
  send(env: Envelope): Promise<void> {
    const job = this.sendQueue.then(() => this.writeChunks(Envelope.encode(env).finish(), env.id));
    this.sendQueue = job.catch(() => undefined);
    return job;
  }

  private async writeChunks(bytes: Uint8Array, envelopeId: string): Promise<void> {
    for (let off = 0, seq = 0; off < bytes.byteLength || seq === 0; seq++) {
      while (this.ws.bufferedAmount > 2 * this.chunkBytes && this.ws.readyState === this.ws.OPEN) await new Promise((r) => setTimeout(r, 2));
      if (this.ws.readyState !== this.ws.OPEN) throw new Error('socket closed while sending');
      const end = Math.min(off + this.chunkBytes, bytes.byteLength);
      const data = bytes.subarray(off, end);
      this.sendFrame({ kind: { $case: 'chunk', chunk: { envelopeId, seq, last: end >= bytes.byteLength, data, totalBytes: seq === 0 ? bytes.byteLength : 0 } } });
      off = end;
    }
    this.bytesSent += bytes.byteLength;
  }
}
