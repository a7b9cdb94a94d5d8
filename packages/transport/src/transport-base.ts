// Behaviour shared by every Transport: handler table, events, stats and the transport-agnostic
// dispatch that both the gRPC servicer and the memory transport hand incoming calls to.
import { errorMessage, handlerErrorCode, TransportError } from './errors.js';
import { noopLogger, type CallHandler, type Logger, type Payload, type PeerInfo, type TransportEvent, type TransportStats } from './types.js';

const EVENTS: ReadonlySet<string> = new Set(['peer-joined', 'peer-left', 'reconnected', 'disconnected']);

/** A local handler threw; carries the code/message that go back to the caller. */
export class HandlerFailure extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'HandlerFailure';
  }
}

export interface InvokeContext {
  source: string;
  metadata: Record<string, string>;
  /** Remaining time budget from the caller; 0 or undefined = none. */
  timeoutMs?: number;
  /** Aborts when the caller cancels. */
  signal?: AbortSignal;
}

export abstract class TransportBase {
  readonly nodeId: string;
  protected readonly logger: Logger;
  protected readonly handlers = new Map<string, CallHandler>();
  protected readonly counters: TransportStats = { bytesSent: 0, bytesReceived: 0, callsSent: 0, callsReceived: 0 };
  private readonly listeners = new Map<TransportEvent, Set<(peer: PeerInfo) => void>>();
  /** Controllers of handlers now running, aborted by stop(). */
  protected readonly running = new Set<AbortController>();

  protected constructor(nodeId: string, logger: Logger | undefined, where: string) {
    if (typeof nodeId !== 'string' || nodeId.length === 0)
      throw new TransportError('INVALID_ARGUMENT', `${where}: nodeId must be a non-empty string, got ${JSON.stringify(nodeId)}`);
    this.nodeId = nodeId;
    this.logger = logger ?? noopLogger;
  }

  handle(method: string, handler: CallHandler): void {
    if (typeof method !== 'string' || method.length === 0)
      throw new TransportError('INVALID_ARGUMENT', `handle(): method must be a non-empty string, got ${JSON.stringify(method)}`);
    if (typeof handler !== 'function')
      throw new TransportError('INVALID_ARGUMENT', `handle('${method}'): handler must be a function, got ${typeof handler}`);
    this.handlers.set(method, handler);
  }

  on(event: TransportEvent, listener: (peer: PeerInfo) => void): () => void {
    if (!EVENTS.has(event))
      throw new TransportError('INVALID_ARGUMENT', `on(): event must be one of ${[...EVENTS].join('|')}, got '${String(event)}'`);
    let set = this.listeners.get(event);
    if (!set) this.listeners.set(event, (set = new Set()));
    set.add(listener);
    return () => {
      set.delete(listener);
    };
  }

  stats(): TransportStats {
    return { ...this.counters };
  }

  protected emit(event: TransportEvent, peer: PeerInfo): void {
    for (const listener of [...(this.listeners.get(event) ?? [])]) {
      try {
        listener({ ...peer, metadata: { ...peer.metadata } });
      } catch (err) {
        this.logger.error(`transport ${this.nodeId}: '${event}' listener threw`, { error: errorMessage(err) });
      }
    }
  }

  protected abortRunning(reason: string): void {
    for (const ctrl of this.running) ctrl.abort(new TransportError('CANCELLED', reason));
    this.running.clear();
  }

  /**
   * Runs the local handler for `method`. Throws TransportError UNKNOWN_METHOD when none is
   * registered, HandlerFailure when the handler throws.
   */
  protected async invoke(method: string, payload: Payload, ctx: InvokeContext): Promise<Payload> {
    const handler = this.handlers.get(method);
    if (!handler) {
      throw new TransportError('UNKNOWN_METHOD', `node '${this.nodeId}' has no handler for method '${method}'`, {
        remote: this.nodeId,
        method,
      });
    }
    this.counters.callsReceived++;
    const ctrl = new AbortController();
    this.running.add(ctrl);
    const onCallerAbort = () => ctrl.abort(new TransportError('CANCELLED', `call '${method}' cancelled by ${ctx.source}`));
    if (ctx.signal?.aborted) onCallerAbort();
    else ctx.signal?.addEventListener('abort', onCallerAbort, { once: true });
    const timer =
      ctx.timeoutMs && ctx.timeoutMs > 0
        ? setTimeout(
            () => ctrl.abort(new TransportError('DEADLINE_EXCEEDED', `call '${method}' from ${ctx.source} passed its ${ctx.timeoutMs} ms deadline`)),
            ctx.timeoutMs,
          )
        : undefined;
    try {
      const result = await handler(payload, { source: ctx.source, method, metadata: ctx.metadata, signal: ctrl.signal });
      return result ?? {};
    } catch (err) {
      throw new HandlerFailure(handlerErrorCode(err), errorMessage(err));
    } finally {
      if (timer) clearTimeout(timer);
      ctx.signal?.removeEventListener('abort', onCallerAbort);
      this.running.delete(ctrl);
    }
  }
}

/** Races `promise` against a deadline and an abort signal; the error names target and method. */
export function withDeadline<T>(
  promise: Promise<T>,
  o: { timeoutMs: number; signal?: AbortSignal; target: string; method: string; onGiveUp?: (reason: TransportError) => void },
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let done = false;
    const finish = (fn: () => void) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      o.signal?.removeEventListener('abort', onAbort);
      fn();
    };
    const giveUp = (err: TransportError) =>
      finish(() => {
        o.onGiveUp?.(err);
        reject(err);
      });
    const onAbort = () =>
      giveUp(new TransportError('CANCELLED', `call '${o.method}' to ${o.target} was cancelled`, { remote: o.target, method: o.method, cause: o.signal?.reason }));
    const timer = setTimeout(
      () =>
        giveUp(
          new TransportError('DEADLINE_EXCEEDED', `call '${o.method}' to ${o.target} got no answer within ${o.timeoutMs} ms`, {
            remote: o.target,
            method: o.method,
          }),
        ),
      o.timeoutMs,
    );
    if (o.signal?.aborted) onAbort();
    else o.signal?.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (v) => finish(() => resolve(v)),
      (e) => finish(() => reject(e)),
    );
  });
}

export const DEFAULT_TIMEOUT_MS = 60_000;

export function resolveTimeout(optionMs: number | undefined, defaultMs: number, where: string): number {
  const ms = optionMs ?? defaultMs;
  if (!(typeof ms === 'number' && ms > 0 && Number.isFinite(ms)))
    throw new TransportError('INVALID_ARGUMENT', `${where}: timeoutMs must be a positive number of milliseconds, got ${ms}`);
  return ms;
}
