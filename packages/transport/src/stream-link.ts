// One registered Connect stream, seen from either end: chunked envelopes in both directions,
// request/response correlation, cancellation and heartbeats.
import { EnvelopeKind, type Envelope, type Frame } from './generated/oiafed/v1/node.js';
import { errorMessage, TransportError } from './errors.js';
import { decodeEnvelope } from './serde.js';
import { encodeChunkFrame, encodeEnvelopeParts } from './wire-codec.js';
import type { Logger } from './types.js';

/** What both grpc-js duplex stream classes offer. */
export interface FrameStream {
  write(frame: Frame): boolean;
  once(event: 'drain', listener: () => void): unknown;
  removeListener(event: 'drain', listener: () => void): unknown;
}

export interface StreamLinkOwner {
  /** Handles an incoming REQUEST or NOTIFY; for a REQUEST returns the RESPONSE to send. */
  onEnvelope(env: Envelope, signal: AbortSignal): Promise<Envelope | undefined>;
  /** The link declared the other side dead (heartbeat timeout). */
  onDead(reason: string): void;
  countBytes(sent: number, received: number): void;
}

interface Assembly {
  /** Chunks so far; joined once the last arrives, so a lying total_bytes allocates nothing. */
  parts: Uint8Array[];
  total: number;
  filled: number;
  nextSeq: number;
}

/** Largest envelope a stream reassembles (a Uint8Array of 2 GiB is Node's practical limit). */
export const MAX_STREAM_ENVELOPE_BYTES = 2 ** 31 - 1;

// Placeholder for a frame already handed to the stream, so its memory can be freed early.
const EMPTY_FRAME = Buffer.alloc(0);

interface Pending {
  resolve(env: Envelope): void;
  reject(err: TransportError): void;
}

export class StreamLink {
  private readonly assemblies = new Map<string, Assembly>();
  private readonly pending = new Map<string, Pending>();
  private readonly serving = new Map<string, AbortController>();
  private lastSeen = Date.now();
  private pingTimer?: NodeJS.Timeout;
  private closed = false;
  /** Serialises writers so one envelope's chunks are not starved by another's drain waits. */
  private writeQueue: Promise<void> = Promise.resolve();
  private drainWaiter?: { resolve(): void; reject(err: Error): void };

  constructor(
    private readonly stream: FrameStream,
    private readonly peerId: string,
    private readonly owner: StreamLinkOwner,
    private readonly o: { chunkBytes: number; heartbeat?: { intervalMs: number; timeoutMs: number }; logger: Logger; selfId: string },
  ) {
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

  private writeFrame(frame: Frame | Buffer): boolean {
    if (this.closed) return true;
    try {
      // A Buffer is a Frame already encoded (grpc-wire's serialiser passes it through).
      return this.stream.write(frame as Frame);
    } catch (err) {
      this.o.logger.debug(`stream to '${this.peerId}': write failed`, { error: errorMessage(err) });
      return true;
    }
  }

  private waitDrain(): Promise<void> {
    return new Promise((resolve, reject) => {
      const onDrain = () => {
        this.drainWaiter = undefined;
        resolve();
      };
      this.drainWaiter = {
        resolve: onDrain,
        reject: (err) => {
          this.stream.removeListener('drain', onDrain);
          reject(err);
        },
      };
      this.stream.once('drain', onDrain);
    });
  }

  /**
   * Sends one envelope as chunks of at most chunkBytes, honouring stream backpressure. All chunk
   * frames are encoded before returning (one copy of the tensor bytes, as many bytes as the
   * envelope), so the caller may reuse its tensors as soon as send() is called.
   */
  send(env: Envelope): Promise<void> {
    // Reassembled envelopes start at offset 0 of a fresh buffer on the receiver.
    const enc = encodeEnvelopeParts(env, 0);
    const total = enc.byteLength;
    const size = this.o.chunkBytes;
    const frames: Buffer[] = [];
    for (let off = 0, seq = 0; off < total || seq === 0; off += size, seq++) {
      const end = Math.min(off + size, total);
      frames.push(encodeChunkFrame(enc, { envelopeId: env.id, seq, last: end >= total, from: off, length: end - off }));
    }
    const job = this.writeQueue.then(async () => {
      if (this.closed) throw new TransportError('UNAVAILABLE', `stream to '${this.peerId}' is closed`, { remote: this.peerId, method: env.method });
      for (let i = 0; i < frames.length; i++) {
        const ok = this.writeFrame(frames[i]!);
        frames[i] = EMPTY_FRAME;
        if (!ok && i < frames.length - 1) await this.waitDrain();
        if (this.closed) throw new TransportError('UNAVAILABLE', `stream to '${this.peerId}' closed while sending`, { remote: this.peerId, method: env.method });
      }
      this.owner.countBytes(total, 0);
    });
    this.writeQueue = job.catch(() => undefined);
    return job;
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
        this.writeFrame({ kind: { $case: 'cancel', cancel: { envelopeId: env.id, reason } } });
      },
    };
  }

  /**
   * Feeds one received frame (anything but register/registerAck). Never throws: a frame that
   * cannot be processed is logged and dropped, so a hostile peer cannot crash the node.
   */
  receive(frame: Frame): void {
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

  private receiveChunk(c: { envelopeId: string; seq: number; last: boolean; data: Uint8Array; totalBytes: number }): void {
    let asm = this.assemblies.get(c.envelopeId);
    if (c.seq === 0) {
      if (asm) this.o.logger.warn(`stream from '${this.peerId}': envelope ${c.envelopeId} restarted`);
      const total = Number(c.totalBytes);
      if (!Number.isSafeInteger(total) || total < c.data.byteLength || total > MAX_STREAM_ENVELOPE_BYTES) {
        this.o.logger.error(
          `stream from '${this.peerId}': envelope ${c.envelopeId} announces total_bytes ${String(c.totalBytes)}, ` +
            `expected ${c.data.byteLength}..${MAX_STREAM_ENVELOPE_BYTES}; envelope dropped`,
        );
        this.assemblies.delete(c.envelopeId);
        return;
      }
      if (c.last && c.data.byteLength === total) {
        this.deliver(c.data);
        return;
      }
      asm = { parts: [], total, filled: 0, nextSeq: 0 };
      this.assemblies.set(c.envelopeId, asm);
    }
    if (!asm || c.seq !== asm.nextSeq || asm.filled + c.data.byteLength > asm.total) {
      this.o.logger.error(`stream from '${this.peerId}': bad chunk ${c.seq} of envelope ${c.envelopeId}; envelope dropped`);
      this.assemblies.delete(c.envelopeId);
      return;
    }
    // Each decoded frame owns its buffer, so keeping the view is safe.
    asm.parts.push(c.data);
    asm.filled += c.data.byteLength;
    asm.nextSeq++;
    if (c.last) {
      this.assemblies.delete(c.envelopeId);
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
  }

  private deliver(bytes: Uint8Array): void {
    this.owner.countBytes(0, bytes.byteLength);
    let env: Envelope;
    try {
      env = decodeEnvelope(bytes);
    } catch (err) {
      this.o.logger.error(`stream from '${this.peerId}': ${errorMessage(err)}`);
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

  /** Fails pending requests, aborts served handlers and stops the heartbeat. */
  close(reason: string): void {
    if (this.closed) return;
    this.closed = true;
    if (this.pingTimer) clearInterval(this.pingTimer);
    const err = new TransportError('UNAVAILABLE', `stream to '${this.peerId}' closed: ${reason}`, { remote: this.peerId });
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
    for (const c of this.serving.values()) c.abort(err);
    this.serving.clear();
    this.assemblies.clear();
    this.drainWaiter?.reject(err);
  }
}
