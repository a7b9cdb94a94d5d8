import { TransportError } from './errors.js';

export interface RetryOptions {
  /** Total attempts including the first (>= 1). */
  maxAttempts: number;
  strategy: 'constant' | 'linear' | 'exponential';
  initialDelayMs: number;
  maxDelayMs: number;
  /** Growth factor for 'exponential' (default 2). */
  multiplier?: number;
  /** Relative random spread in [0, 1]: the delay is scaled by 1 ± jitter (default 0). */
  jitter?: number;
}

/** Default used by GrpcTransport when no `retry` option is given. */
export const DEFAULT_RETRY: RetryOptions = {
  maxAttempts: 5,
  strategy: 'exponential',
  initialDelayMs: 200,
  maxDelayMs: 5_000,
  multiplier: 2,
  jitter: 0.1,
};

/** Backoff schedule plus a loop that retries an async function. */
export class RetryPolicy {
  readonly options: Readonly<Required<RetryOptions>>;
  private readonly random: () => number;

  constructor(o: RetryOptions, random: () => number = Math.random) {
    const where = 'RetryPolicy';
    if (!Number.isInteger(o.maxAttempts) || o.maxAttempts < 1)
      throw new TransportError('INVALID_ARGUMENT', `${where}: maxAttempts must be an integer >= 1, got ${o.maxAttempts}`);
    if (!['constant', 'linear', 'exponential'].includes(o.strategy))
      throw new TransportError('INVALID_ARGUMENT', `${where}: strategy must be constant|linear|exponential, got '${o.strategy}'`);
    for (const key of ['initialDelayMs', 'maxDelayMs'] as const)
      if (!(o[key] >= 0)) throw new TransportError('INVALID_ARGUMENT', `${where}: ${key} must be >= 0, got ${o[key]}`);
    const multiplier = o.multiplier ?? 2;
    if (!(multiplier >= 1)) throw new TransportError('INVALID_ARGUMENT', `${where}: multiplier must be >= 1, got ${multiplier}`);
    const jitter = o.jitter ?? 0;
    if (!(jitter >= 0 && jitter <= 1)) throw new TransportError('INVALID_ARGUMENT', `${where}: jitter must be in [0, 1], got ${jitter}`);
    this.options = { ...o, multiplier, jitter };
    this.random = random;
  }

  /** Delay before retry number `attempt` (1 = after the first failure), capped at maxDelayMs. */
  delayMs(attempt: number): number {
    const { strategy, initialDelayMs, maxDelayMs, multiplier, jitter } = this.options;
    const n = Math.max(1, Math.floor(attempt));
    let base: number;
    if (strategy === 'constant') base = initialDelayMs;
    else if (strategy === 'linear') base = initialDelayMs * n;
    else base = initialDelayMs * Math.pow(multiplier, n - 1);
    base = Math.min(base, maxDelayMs);
    if (jitter > 0) base = base * (1 + jitter * (this.random() * 2 - 1));
    return Math.max(0, Math.min(Math.round(base), maxDelayMs));
  }

  /**
   * Runs `fn(attempt)` (attempt starts at 1) until it resolves, a failure is not retryable,
   * maxAttempts is reached (the last error is rethrown) or `signal` aborts.
   */
  async run<T>(
    fn: (attempt: number) => Promise<T>,
    o: {
      signal?: AbortSignal;
      isRetryable?: (e: unknown) => boolean;
      onRetry?: (attempt: number, delayMs: number, error: unknown) => void;
    } = {},
  ): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      if (o.signal?.aborted) throw new TransportError('CANCELLED', 'retry aborted', { cause: o.signal.reason });
      try {
        return await fn(attempt);
      } catch (err) {
        if (attempt >= this.options.maxAttempts || (o.isRetryable && !o.isRetryable(err))) throw err;
        const delay = this.delayMs(attempt);
        o.onRetry?.(attempt, delay, err);
        await sleep(delay, o.signal);
      }
    }
  }
}

/** Resolves after `ms`, or rejects with CANCELLED when `signal` aborts first. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(new TransportError('CANCELLED', 'sleep aborted'));
    const onAbort = () => {
      clearTimeout(timer);
      reject(new TransportError('CANCELLED', 'sleep aborted'));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
