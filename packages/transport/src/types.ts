/** Element type of a tensor on the wire. */
export type DType = 'float32' | 'float16' | 'int8' | 'int32' | 'uint8';

/**
 * A named n-dimensional array. `data` is row-major; float16 travels as its 16 bit patterns in a
 * Uint16Array. `data.length` must equal the product of `shape`.
 */
export interface Tensor {
  name: string;
  shape: number[];
  dtype: DType;
  data: Float32Array | Uint16Array | Int8Array | Int32Array | Uint8Array;
}

/** What a call carries: a small JSON-serialisable body and any number of tensors. */
export interface Payload {
  body?: unknown;
  tensors?: Tensor[];
}

/** A node this transport is connected to. */
export interface PeerInfo {
  nodeId: string;
  role: string;
  metadata: Record<string, string>;
  /** Unix ms when the peer (re-)registered. */
  connectedAt: number;
}

/** Passed to a handler with each incoming call. `signal` aborts on deadline, cancel or stop. */
export interface CallContext {
  source: string;
  method: string;
  metadata: Record<string, string>;
  signal: AbortSignal;
}

/** Serves one method. Throw an Error with a string `code` property to choose the caller's error code. */
export type CallHandler = (payload: Payload, ctx: CallContext) => Promise<Payload> | Payload;

export interface CallOptions {
  /** Deadline for this call; defaults to the transport's `timeoutMs` (60 s). */
  timeoutMs?: number;
  signal?: AbortSignal;
  /** The call is idempotent: retry it with the transport's RetryPolicy on UNAVAILABLE. */
  retry?: boolean;
}

export interface TransportStats {
  bytesSent: number;
  bytesReceived: number;
  callsSent: number;
  callsReceived: number;
}

/**
 * - `peer-joined`: a peer registered (listening side) or our first registration with a peer we dial succeeded.
 * - `peer-left`: a registered peer's stream closed or its heartbeat timed out (listening side).
 * - `disconnected`: the stream to a peer we dial broke; reconnection starts.
 * - `reconnected`: that peer accepted our re-registration.
 */
export type TransportEvent = 'peer-joined' | 'peer-left' | 'reconnected' | 'disconnected';

/** Node-to-node messaging. Implemented by MemoryTransport (one process) and GrpcTransport. */
export interface Transport {
  readonly nodeId: string;
  /** Registers the handler for `method`; allowed before or after start(). Replaces an earlier one. */
  handle(method: string, handler: CallHandler): void;
  /** Listens (if configured) and dials + registers with every connectTo peer. */
  start(): Promise<void>;
  /** Stops accepting, closes streams, fails pending calls with CANCELLED, then resolves. */
  stop(): Promise<void>;
  call(target: string, method: string, payload: Payload, options?: CallOptions): Promise<Payload>;
  notify(target: string, method: string, payload: Payload): Promise<void>;
  peers(): PeerInfo[];
  /** Subscribes to an event; returns the unsubscribe function. */
  on(event: TransportEvent, listener: (peer: PeerInfo) => void): () => void;
  stats(): TransportStats;
  /** Actual port after start() when listen.port was 0. */
  readonly boundPort?: number;
}

/** Optional structured logger: the one Logger of every OiaFed package (@oiafed/component). */
export type { Logger } from '@oiafed/component';

/** A logger that discards everything (@oiafed/component's silentLogger). */
export { silentLogger as noopLogger } from '@oiafed/component';
