// One registered Connect stream, seen from either end: chunked envelopes in both directions,
// request/response correlation, cancellation and heartbeats.
import { EnvelopeKind, type Envelope, type Frame } from './generated/oiafed/v1/node.js';
import { errorMessage, TransportError } from './errors.js';
import { decodeEnvelope, peekEnvelopeHeader } from './serde.js';
import { encodeChunkFrame, encodeEnvelopeParts, type EncodedParts } from './wire-codec.js';
import type { Logger } from './types.js';

/** What both grpc-js duplex stream classes offer. */
export interface FrameStream {
  /** `done` runs once the frame has left the stream's buffers (grpc-js: handed to HTTP/2). */
  write(frame: Frame, done?: (err?: Error | null) => void): boolean;
}

/**
 * What one link may hold for its peer. Receiving: a peer can make this node hold at most
 * maxInFlightBytes of partial envelopes (in at most maxPartials envelopes, none above
 * maxEnvelopeBytes, none idle for reassemblyTimeoutMs); any violation closes the link. Sending: at
 * most maxQueuedBytes of encoded frames wait in the stream for a slow or silent reader.
 */
export interface StreamLimits {
  maxEnvelopeBytes: number;
  maxPartials: number;
  maxInFlightBytes: number;
  reassemblyTimeoutMs: number;
  maxQueuedBytes: number;
}

export interface StreamLinkOwner {
  /** Handles an incoming REQUEST or NOTIFY; for a REQUEST returns the RESPONSE to send. */
  onEnvelope(env: Envelope, signal: AbortSignal): Promise<Envelope | undefined>;
  /** The link declared the other side dead (heartbeat timeout). */
  onDead(reason: string): void;
  /**
   * The peer broke a limit (or did not read a request within its deadline); the link is closed
   * already and the refusal logged: the owner drops the peer and resets its stream. Defaults to onDead.
   */
  onViolation?(reason: string): void;
  /** A RESPONSE arrived that could not be decoded, though its correlation id could be read. */
  countBytes(sent: number, received: number): void;
}

interface Assembly {
  /** Chunks so far; joined once the last arrives, so a lying total_bytes allocates nothing. */
  parts: Uint8Array[];
  total: number;
  filled: number;
  nextSeq: number;
  /** Date.now() of its latest chunk (reassembly timeout). */
  lastChunkAt: number;
}

/** Largest envelope a stream reassembles (a Uint8Array of 2 GiB is Node's practical limit). */
export const MAX_STREAM_ENVELOPE_BYTES = 2 ** 31 - 1;

/**
 * Defaults for a link built without limits (tests, embedders). GrpcTransport derives its own from
 * maxMessageBytes, chunkBytes and its call timeout.
 */
export const DEFAULT_STREAM_LIMITS: StreamLimits = {
  maxEnvelopeBytes: 256 * 1024 * 1024,
  // An honest sender writes one envelope at a time (send() serialises them), so it has at most one
  // partial envelope; a few more leave room for a restarted one.
  maxPartials: 4,
  maxInFlightBytes: 256 * 1024 * 1024,
  reassemblyTimeoutMs: 60_000,
  maxQueuedBytes: 4 * 1024 * 1024,
};

// Chunks smaller than this are copied when kept: a small view can pin a whole pooled slab, so an
// attacker sending 1-byte chunks would hold far more memory than the budget counts.
const COPY_BELOW_BYTES = 64 * 1024;
// Counted per kept chunk on top of its bytes (the Uint8Array object itself).
const PART_OVERHEAD_BYTES = 128;
// Size of the first frames sent on a link: frames grow (doubling up to chunkBytes) only as the
// peer reads them, so a peer that never reads holds a couple of these, not a chunk or a model.
const FIRST_FRAME_BYTES = 64 * 1024;

interface Chunk {
  envelopeId: string;
  seq: number;
  last: boolean;
  data: Uint8Array;
  totalBytes: number;
}

interface Pending {
  resolve(env: Envelope): void;
  reject(err: TransportError): void;
}

export class StreamLink {
  private readonly assemblies = new Map<string, Assembly>();
  /** Bytes held by partial envelopes (counted against limits.maxInFlightBytes). */
  private inFlightBytes = 0;
  private readonly pending = new Map<string, Pending>();
  private readonly serving = new Map<string, AbortController>();
  /** Ids of envelopes whose frames are being written (a cancelled one means a reader that stalled). */
  private readonly sending = new Set<string>();
  private lastSeen = Date.now();
  private pingTimer?: NodeJS.Timeout;
  private sweepTimer?: NodeJS.Timeout;
  private lastSweepAt = 0;
  private closed = false;
  /** Serialises writers so one envelope's chunks are not starved by another's flush waits. */
  private writeQueue: Promise<void> = Promise.resolve();
  /** Bytes of chunk frames written but not yet flushed by the stream. */
  private queuedBytes = 0;
  private flushWaiter?: { resolve(): void; reject(err: Error): void };
  private readonly limits: StreamLimits;
  /** Size of the next chunk frame: FIRST_FRAME_BYTES, doubled per flushed frame, at most chunkBytes. */
  private frameBytes: number;

  constructor(
    private readonly stream: FrameStream,
    private readonly peerId: string,
    private readonly owner: StreamLinkOwner,
    private readonly o: {
      chunkBytes: number;
      heartbeat?: { intervalMs: number; timeoutMs: number };
      logger: Logger;
      selfId: string;
      limits?: Partial<StreamLimits>;
    },
  ) {
    this.limits = { ...DEFAULT_STREAM_LIMITS, ...o.limits };
    this.frameBytes = Math.min(FIRST_FRAME_BYTES, o.chunkBytes);
    const hb = o.heartbeat;
    if (hb && hb.intervalMs > 0) {
      this.pingTimer = setInterval(() => {
        if (hb.timeoutMs > 0 && Date.now() - this.lastSeen > hb.timeoutMs) {
          this.owner.onDead(`no frame from '${peerId}' for ${Date.now() - this.lastSeen} ms (heartbeat timeout ${hb.timeoutMs} ms)`);
          return;
        }
        this.writeFrame({ kind: { $case: 'heartbeat', heartbeat: { timestampMs: Date.now(), pong: false } } });
      }, hb.intervalMs);
      this.pingTimer.unref?.();
    }
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Bytes this link holds for its peer now: partial envelopes received plus frames queued to send. */
  get heldBytes(): number {
    return this.inFlightBytes + this.queuedBytes;
  }

  private writeFrame(frame: Frame | Buffer, done?: () => void): boolean {
    if (this.closed) return true;
    try {
      // A Buffer is a Frame already encoded (grpc-wire's serialiser passes it through).
      return this.stream.write(frame as Frame, done);
    } catch (err) {
      this.o.logger.debug(`stream to '${this.peerId}': write failed`, { error: errorMessage(err) });
      done?.();
      return true;
    }
  }

  private waitFlushed(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.flushWaiter = {
        resolve: () => {
          this.flushWaiter = undefined;
          resolve();
        },
        reject,
      };
    });
  }

  /**
   * Writes one chunk frame once the frames queued before it leave room: at most two frames of the
   * current size (and never over maxQueuedBytes) wait in the stream. Frames grow only as they are
   * flushed, so a peer that stops reading holds about two small frames, never a chunk or a model.
   */
  private async writeBounded(frame: Buffer): Promise<void> {
    const room = () => Math.min(this.limits.maxQueuedBytes, 2 * this.frameBytes);
    while (!this.closed && this.queuedBytes > 0 && this.queuedBytes + frame.byteLength > room()) await this.waitFlushed();
    if (this.closed) return;
    this.queuedBytes += frame.byteLength;
    let flushed = false;
    this.writeFrame(frame, () => {
      if (flushed) return;
      flushed = true;
      this.queuedBytes -= frame.byteLength;
      this.frameBytes = Math.min(this.o.chunkBytes, this.frameBytes * 2);
      this.flushWaiter?.resolve();
    });
  }

  /**
   * Sends one envelope as chunks of at most chunkBytes. Each frame is encoded just before it is
   * written, from views of the caller's tensors: a broadcast to N learners shares the tensor bytes
   * and holds at most two frames per learner (see writeBounded). The caller must therefore not
   * modify its tensors until the returned promise settles.
   */
  send(env: Envelope): Promise<void> {
    // Reassembled envelopes start at offset 0 of a fresh buffer on the receiver.
    const enc = encodeEnvelopeParts(env, 0);
    if (enc.byteLength > this.limits.maxEnvelopeBytes)
      return Promise.reject(
        new TransportError(
          'PAYLOAD_TOO_LARGE',
          `${env.method} to ${this.peerId}: envelope is ${enc.byteLength} bytes, over the stream limit ${this.limits.maxEnvelopeBytes} of '${this.o.selfId}' (raise max_message_mb on both nodes)`,
          { remote: this.peerId, method: env.method },
        ),
      );
    const job = this.writeQueue.then(() => this.writeEnvelope(env, enc));
    this.writeQueue = job.catch(() => undefined);
    return job;
  }

  private async writeEnvelope(env: Envelope, enc: EncodedParts): Promise<void> {
    const closedError = (what: string) => new TransportError('UNAVAILABLE', `stream to '${this.peerId}' ${what}`, { remote: this.peerId, method: env.method });
    if (this.closed) throw closedError('is closed');
    const total = enc.byteLength;
    this.sending.add(env.id);
    try {
      for (let off = 0, seq = 0; off < total || seq === 0; seq++) {
        const end = Math.min(off + this.frameBytes, total);
        await this.writeBounded(encodeChunkFrame(enc, { envelopeId: env.id, seq, last: end >= total, from: off, length: end - off }));
        off = end;
        if (this.closed) throw closedError('closed while sending');
      }
    } finally {
      this.sending.delete(env.id);
    }
    this.owner.countBytes(total, 0);
  }

  /** Sends a REQUEST and resolves with the matching RESPONSE envelope. */
  request(env: Envelope): { response: Promise<Envelope>; cancel(reason: string): void } {
    const response = new Promise<Envelope>((resolve, reject) => {
      this.pending.set(env.id, { resolve, reject });
    });
    this.send(env).catch((err: TransportError) => {
      const p = this.pending.get(env.id);
      this.pending.delete(env.id);
      p?.reject(err);
    });
    return {
      response,
      cancel: (reason) => {
        if (!this.pending.delete(env.id)) return;
        // The caller gave up (deadline) while the peer had not even read the request: a reader
        // that stalls holds our frames, so it is dropped rather than kept with a wedged stream.
        if (this.sending.has(env.id)) return this.violate('did not read a request within its deadline', `${env.method}: ${reason}`);
        this.writeFrame({ kind: { $case: 'cancel', cancel: { envelopeId: env.id, reason } } });
      },
    };
  }

  /**
   * Feeds one received frame (anything but register/registerAck). Never throws: a frame that
   * cannot be processed is logged and dropped, so a hostile peer cannot crash the node.
   */
  receive(frame: Frame): void {
    if (this.closed) return;
    try {
      this.receiveFrame(frame);
    } catch (err) {
      this.o.logger.error(`stream from '${this.peerId}': frame dropped: ${errorMessage(err)}`);
    }
  }

  private receiveFrame(frame: Frame): void {
    this.lastSeen = Date.now();
    const kind = frame.kind;
    if (!kind) return;
    switch (kind.$case) {
      case 'heartbeat':
        if (!kind.heartbeat.pong) this.writeFrame({ kind: { $case: 'heartbeat', heartbeat: { timestampMs: Date.now(), pong: true } } });
        return;
      case 'cancel':
        this.serving.get(kind.cancel.envelopeId)?.abort(new TransportError('CANCELLED', `cancelled by '${this.peerId}': ${kind.cancel.reason}`));
        return;
      case 'chunk':
        this.receiveChunk(kind.chunk);
        return;
      default:
        this.o.logger.warn(`stream from '${this.peerId}': unexpected ${kind.$case} frame ignored`);
    }
  }

  /** Logs the refusal, closes the link and lets the owner drop the peer. */
  private violate(reason: string, detail: string): void {
    if (this.closed) return;
    this.o.logger.error(`stream from '${this.peerId}': ${reason} (${detail}); link closed`);
    // The owner first, while the link is open: it removes the peer and then closes the link.
    (this.owner.onViolation ?? this.owner.onDead).call(this.owner, reason);
    this.close(reason);
  }

  private dropAssembly(id: string): void {
    const asm = this.assemblies.get(id);
    if (!asm) return;
    this.inFlightBytes -= asm.filled + asm.parts.length * PART_OVERHEAD_BYTES;
    this.assemblies.delete(id);
  }

  /** Checks a first chunk before anything is kept; returns true when an assembly was started. */
  private beginEnvelope(c: Chunk): boolean {
    const total = Number(c.totalBytes);
    const max = this.limits.maxEnvelopeBytes;
    if (!Number.isSafeInteger(total) || total < c.data.byteLength) {
      this.dropAssembly(c.envelopeId);
      this.o.logger.error(`stream from '${this.peerId}': envelope ${c.envelopeId} announces total_bytes ${String(c.totalBytes)}, expected ${c.data.byteLength}..${max}; envelope dropped`);
      return false;
    }
    if (total > max) {
      this.violate('envelope over the size limit', `envelope ${c.envelopeId} announces total_bytes ${total}, limit ${max} (max_message_mb)`);
      return false;
    }
    if (this.assemblies.has(c.envelopeId)) {
      this.o.logger.warn(`stream from '${this.peerId}': envelope ${c.envelopeId} restarted`);
      this.dropAssembly(c.envelopeId);
    }
    if (c.last && c.data.byteLength === total) {
      this.deliver(c.data);
      return false;
    }
    if (this.assemblies.size >= this.limits.maxPartials) {
      this.violate('too many partial envelopes', `envelope ${c.envelopeId} would be partial envelope ${this.assemblies.size + 1}, limit ${this.limits.maxPartials}`);
      return false;
    }
    this.assemblies.set(c.envelopeId, { parts: [], total, filled: 0, nextSeq: 0, lastChunkAt: Date.now() });
    this.startSweep();
    return true;
  }

  private receiveChunk(c: Chunk): void {
    if (c.seq === 0 && !this.beginEnvelope(c)) return;
    const asm = this.assemblies.get(c.envelopeId);
    if (!asm || c.seq !== asm.nextSeq || asm.filled + c.data.byteLength > asm.total) {
      this.o.logger.error(`stream from '${this.peerId}': bad chunk ${c.seq} of envelope ${c.envelopeId}; envelope dropped`);
      this.dropAssembly(c.envelopeId);
      return;
    }
    const cost = c.data.byteLength + PART_OVERHEAD_BYTES;
    if (this.inFlightBytes + cost > this.limits.maxInFlightBytes) {
      this.violate('in-flight budget exceeded', `partial envelopes would hold ${this.inFlightBytes + cost} bytes, limit ${this.limits.maxInFlightBytes}`);
      return;
    }
    // A large chunk owns its decoded frame's buffer, so keeping the view is safe and free.
    asm.parts.push(c.data.byteLength < COPY_BELOW_BYTES ? new Uint8Array(c.data) : c.data);
    asm.filled += c.data.byteLength;
    this.inFlightBytes += cost;
    asm.nextSeq++;
    asm.lastChunkAt = Date.now();
    if (!c.last) return;
    this.dropAssembly(c.envelopeId);
    if (asm.filled !== asm.total) {
      this.o.logger.error(`stream from '${this.peerId}': envelope ${c.envelopeId} ended at ${asm.filled} of ${asm.total} bytes; dropped`);
      return;
    }
    // Fresh ArrayBuffer: offset 0, so aligned tensor slices can be viewed without copying.
    const buf = new Uint8Array(asm.total);
    let off = 0;
    for (const part of asm.parts) {
      buf.set(part, off);
      off += part.byteLength;
    }
    this.deliver(buf);
  }

  /** Checks partial envelopes for the reassembly timeout while there are any. */
  private startSweep(): void {
    if (this.sweepTimer) return;
    const every = Math.max(10, Math.floor(this.limits.reassemblyTimeoutMs / 4));
    this.lastSweepAt = Date.now();
    this.sweepTimer = setInterval(() => this.sweep(every), every);
    this.sweepTimer.unref?.();
  }

  private sweep(every: number): void {
    const now = Date.now();
    // A gap longer than the timeout itself means our own event loop stalled.
    const late = now - this.lastSweepAt > every + this.limits.reassemblyTimeoutMs;
    this.lastSweepAt = now;
    for (const [id, asm] of this.assemblies) {
      // After such a stall the chunks that arrived meanwhile are still queued behind this timer:
      // restart the clocks instead of blaming the peer.
      if (late) asm.lastChunkAt = now;
      else if (now - asm.lastChunkAt > this.limits.reassemblyTimeoutMs)
        return this.violate('reassembly timeout', `envelope ${id} got no chunk for ${now - asm.lastChunkAt} ms, limit ${this.limits.reassemblyTimeoutMs} ms`);
    }
    if (this.assemblies.size === 0) this.stopSweep();
  }

  private stopSweep(): void {
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    this.sweepTimer = undefined;
  }

  private deliver(bytes: Uint8Array): void {
    this.owner.countBytes(0, bytes.byteLength);
    let env: Envelope;
    try {
      env = decodeEnvelope(bytes);
    } catch (err) {
      this.o.logger.error(`stream from '${this.peerId}': ${errorMessage(err)}`);
      this.failUndecodableResponse(bytes, errorMessage(err));
      return;
    }
    if (env.kind === EnvelopeKind.ENVELOPE_KIND_RESPONSE) {
      const p = this.pending.get(env.correlationId);
      this.pending.delete(env.correlationId);
      if (p) p.resolve(env);
      else
        this.o.logger.warn(`stream from '${this.peerId}': late response to '${env.method}' discarded: its caller already gave up (deadline or cancel)`, {
          correlationId: env.correlationId,
        });
      return;
    }
    const ctrl = new AbortController();
    this.serving.set(env.id, ctrl);
    void this.owner
      .onEnvelope(env, ctrl.signal)
      .then((reply) => (reply && !this.closed ? this.send(reply) : undefined))
      .catch((err: unknown) => this.o.logger.warn(`stream to '${this.peerId}': reply to ${env.method} not sent`, { error: errorMessage(err) }))
      .finally(() => this.serving.delete(env.id));
  }

  /** A RESPONSE that does not decode fails its call now (if its correlation id can be read), not at the deadline. */
  private failUndecodableResponse(bytes: Uint8Array, why: string): void {
    const head = peekEnvelopeHeader(bytes);
    if (head.kind !== EnvelopeKind.ENVELOPE_KIND_RESPONSE || !head.correlationId) return;
    const p = this.pending.get(head.correlationId);
    if (!p) return;
    this.pending.delete(head.correlationId);
    p.reject(new TransportError('INVALID_ARGUMENT', `response of '${this.peerId}' to '${head.method ?? '?'}' could not be decoded: ${why}`, { remote: this.peerId, method: head.method }));
  }

  /** Fails pending requests, aborts served handlers, frees partial envelopes and stops the timers. */
  close(reason: string): void {
    if (this.closed) return;
    this.closed = true;
    if (this.pingTimer) clearInterval(this.pingTimer);
    this.stopSweep();
    const err = new TransportError('UNAVAILABLE', `stream to '${this.peerId}' closed: ${reason}`, { remote: this.peerId });
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
    for (const c of this.serving.values()) c.abort(err);
    this.serving.clear();
    this.assemblies.clear();
    this.inFlightBytes = 0;
    this.flushWaiter?.reject(err);
  }
}
