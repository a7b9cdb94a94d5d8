import { RemoteError, TransportError } from './errors.js';
import { DEFAULT_TIMEOUT_MS, HandlerFailure, resolveTimeout, TransportBase, withDeadline } from './transport-base.js';
import type { CallOptions, Logger, Payload, PeerInfo, Tensor, Transport } from './types.js';

/**
 * Registry of the MemoryTransports of one process or simulation. Node ids are unique per hub.
 */
export class MemoryHub {
  /** @internal */
  readonly nodes = new Map<string, MemoryTransport>();
}

export interface MemoryTransportOptions {
  hub: MemoryHub;
  nodeId: string;
  role: string;
  /** Node ids to register with on start(); they must already be started on the same hub. */
  connectTo?: string[];
  metadata?: Record<string, string>;
  /** Default deadline of call() (ms, default 60 000). */
  timeoutMs?: number;
  logger?: Logger;
}

/**
 * Copies a payload the way the wire would: the body goes through JSON, every tensor's data is
 * copied. Nothing is shared between sender and receiver, so either side may mutate its arrays.
 */
function clonePayload(p: Payload, where: string): { payload: Payload; bytes: number } {
  if (p === null || typeof p !== 'object')
    throw new TransportError('INVALID_ARGUMENT', `${where}: payload must be an object {body?, tensors?}, got ${p === null ? 'null' : typeof p}`);
  const out: Payload = {};
  let bytes = 0;
  if (p.body !== undefined) {
    const json = JSON.stringify(p.body);
    if (json === undefined) throw new TransportError('INVALID_ARGUMENT', `${where}: body is not JSON-serialisable`);
    bytes += json.length;
    out.body = JSON.parse(json);
  }
  if (p.tensors && p.tensors.length > 0) {
    out.tensors = p.tensors.map((t: Tensor, i) => {
      const n = t.shape.reduce((a, b) => a * b, 1);
      if (n !== t.data.length)
        throw new TransportError('INVALID_ARGUMENT', `${where}: tensor #${i} '${t.name}' shape [${t.shape.join(', ')}] holds ${n} elements but data has ${t.data.length}`);
      bytes += t.data.byteLength;
      return { name: t.name, shape: t.shape.slice(), dtype: t.dtype, data: t.data.slice() };
    });
  }
  return { payload: out, bytes };
}

/**
 * In-process Transport for simulations and tests: same contract as GrpcTransport, no sockets and
 * no protobuf. Payloads are copied on delivery (see clonePayload). Does not reconnect: a stopped
 * node is gone until it is started again and its peers call start() again.
 */
export class MemoryTransport extends TransportBase implements Transport {
  readonly boundPort?: number;
  private readonly hub: MemoryHub;
  private readonly role: string;
  private readonly metadata: Record<string, string>;
  private readonly connectTo: string[];
  private readonly timeoutMs: number;
  private readonly peerMap = new Map<string, PeerInfo & { dialed: boolean }>();
  private started = false;

  constructor(o: MemoryTransportOptions) {
    super(o?.nodeId, o?.logger, 'MemoryTransport');
    if (!(o.hub instanceof MemoryHub)) throw new TransportError('INVALID_ARGUMENT', 'MemoryTransport: hub must be a MemoryHub');
    this.hub = o.hub;
    this.role = o.role;
    this.metadata = { ...(o.metadata ?? {}) };
    this.connectTo = [...(o.connectTo ?? [])];
    this.timeoutMs = resolveTimeout(o.timeoutMs, DEFAULT_TIMEOUT_MS, 'MemoryTransport');
  }

  private info(): PeerInfo {
    return { nodeId: this.nodeId, role: this.role, metadata: { ...this.metadata }, connectedAt: Date.now() };
  }

  async start(): Promise<void> {
    if (this.started) return;
    const existing = this.hub.nodes.get(this.nodeId);
    if (existing && existing !== this)
      throw new TransportError('ALREADY_EXISTS', `MemoryTransport: node id '${this.nodeId}' is already started on this hub`);
    for (const target of this.connectTo) {
      const server = this.hub.nodes.get(target);
      if (!server) throw new TransportError('UNAVAILABLE', `MemoryTransport '${this.nodeId}': connectTo peer '${target}' is not started on this hub`, { remote: target });
      if (target === this.nodeId) throw new TransportError('INVALID_ARGUMENT', `MemoryTransport '${this.nodeId}': cannot connect to itself`);
    }
    this.hub.nodes.set(this.nodeId, this);
    this.started = true;
    for (const target of this.connectTo) {
      const server = this.hub.nodes.get(target)!;
      server.acceptPeer(this.info());
      const peer = { ...server.info(), dialed: true };
      this.peerMap.set(target, peer);
      this.emit('peer-joined', peer);
    }
  }

  private acceptPeer(peer: PeerInfo): void {
    this.peerMap.set(peer.nodeId, { ...peer, dialed: false });
    this.logger.info(`transport ${this.nodeId}: peer joined`, { peer: peer.nodeId, role: peer.role });
    this.emit('peer-joined', peer);
  }

  private dropPeer(nodeId: string): void {
    const peer = this.peerMap.get(nodeId);
    if (!peer) return;
    this.peerMap.delete(nodeId);
    this.emit(peer.dialed ? 'disconnected' : 'peer-left', peer);
  }

  async stop(): Promise<void> {
    if (!this.started) return;
    this.started = false;
    if (this.hub.nodes.get(this.nodeId) === this) this.hub.nodes.delete(this.nodeId);
    const peers = [...this.peerMap.keys()];
    this.peerMap.clear();
    for (const id of peers) this.hub.nodes.get(id)?.dropPeer(this.nodeId);
    this.abortRunning(`node '${this.nodeId}' stopped`);
  }

  peers(): PeerInfo[] {
    return [...this.peerMap.values()].map(({ dialed: _d, ...p }) => ({ ...p, metadata: { ...p.metadata } }));
  }

  private resolveTarget(target: string, method: string): MemoryTransport {
    if (!this.started) throw new TransportError('UNAVAILABLE', `transport '${this.nodeId}' is not started`, { remote: target, method });
    const node = this.peerMap.has(target) ? this.hub.nodes.get(target) : undefined;
    if (!node)
      throw new TransportError('UNKNOWN_PEER', `node '${this.nodeId}' has no connected peer '${target}' (known: ${[...this.peerMap.keys()].join(', ') || 'none'})`, {
        remote: target,
        method,
      });
    return node;
  }

  async call(target: string, method: string, payload: Payload, options: CallOptions = {}): Promise<Payload> {
    const node = this.resolveTarget(target, method);
    const timeoutMs = resolveTimeout(options.timeoutMs, this.timeoutMs, `call('${target}', '${method}')`);
    const { payload: copy, bytes } = clonePayload(payload, `call('${target}', '${method}')`);
    this.counters.callsSent++;
    this.counters.bytesSent += bytes;
    const cancel = new AbortController();
    const run = (async () => {
      node.counters.bytesReceived += bytes;
      try {
        const result = await node.invoke(method, copy, { source: this.nodeId, metadata: {}, timeoutMs, signal: cancel.signal });
        const out = clonePayload(result, `reply of ${target} to '${method}'`);
        node.counters.bytesSent += out.bytes;
        this.counters.bytesReceived += out.bytes;
        return out.payload;
      } catch (err) {
        if (err instanceof HandlerFailure) throw new RemoteError(err.code, err.message, { remote: target, method });
        throw err;
      }
    })();
    return withDeadline(run, { timeoutMs, signal: options.signal, target, method, onGiveUp: (e) => cancel.abort(e) });
  }

  async notify(target: string, method: string, payload: Payload): Promise<void> {
    const node = this.resolveTarget(target, method);
    if (!node.handlers.has(method))
      throw new TransportError('UNKNOWN_METHOD', `node '${target}' has no handler for method '${method}'`, { remote: target, method });
    const { payload: copy, bytes } = clonePayload(payload, `notify('${target}', '${method}')`);
    this.counters.callsSent++;
    this.counters.bytesSent += bytes;
    node.counters.bytesReceived += bytes;
    void node.invoke(method, copy, { source: this.nodeId, metadata: {} }).catch((err: unknown) => {
      node.logger.warn(`transport ${target}: notify handler '${method}' failed`, { source: this.nodeId, error: (err as Error).message });
    });
  }
}
