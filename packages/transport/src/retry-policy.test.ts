import { describe, expect, it } from 'vitest';
import { RetryPolicy } from './retry-policy.js';
import { TransportError } from './errors.js';

describe('RetryPolicy', () => {
  it('constant delays stay at initialDelayMs, capped by maxDelayMs', () => {
    const p = new RetryPolicy({ maxAttempts: 5, strategy: 'constant', initialDelayMs: 300, maxDelayMs: 1000 });
    expect([1, 2, 3, 10].map((a) => p.delayMs(a))).toEqual([300, 300, 300, 300]);
    const capped = new RetryPolicy({ maxAttempts: 5, strategy: 'constant', initialDelayMs: 300, maxDelayMs: 100 });
    expect(capped.delayMs(1)).toBe(100);
  });

  it('linear delays grow by initialDelayMs per attempt up to the cap', () => {
    const p = new RetryPolicy({ maxAttempts: 9, strategy: 'linear', initialDelayMs: 100, maxDelayMs: 350 });
    expect([1, 2, 3, 4, 8].map((a) => p.delayMs(a))).toEqual([100, 200, 300, 350, 350]);
  });

  it('exponential delays multiply (default x2, or multiplier) up to the cap', () => {
    const p = new RetryPolicy({ maxAttempts: 9, strategy: 'exponential', initialDelayMs: 100, maxDelayMs: 1000 });
    expect([1, 2, 3, 4, 5, 30].map((a) => p.delayMs(a))).toEqual([100, 200, 400, 800, 1000, 1000]);
    const p3 = new RetryPolicy({ maxAttempts: 9, strategy: 'exponential', initialDelayMs: 10, maxDelayMs: 10_000, multiplier: 3 });
    expect([1, 2, 3, 4].map((a) => p3.delayMs(a))).toEqual([10, 30, 90, 270]);
  });

  it('jitter spreads the delay by ±jitter and never exceeds the cap', () => {
    const lo = new RetryPolicy({ maxAttempts: 3, strategy: 'constant', initialDelayMs: 1000, maxDelayMs: 1000, jitter: 0.5 }, () => 0);
    const hi = new RetryPolicy({ maxAttempts: 3, strategy: 'constant', initialDelayMs: 1000, maxDelayMs: 5000, jitter: 0.5 }, () => 1);
    const capped = new RetryPolicy({ maxAttempts: 3, strategy: 'constant', initialDelayMs: 1000, maxDelayMs: 1000, jitter: 0.5 }, () => 1);
    expect(lo.delayMs(1)).toBe(500);
    expect(hi.delayMs(1)).toBe(1500);
    expect(capped.delayMs(1)).toBe(1000);
  });

  it('run() retries retryable failures, reports each retry and gives up after maxAttempts', async () => {
    const p = new RetryPolicy({ maxAttempts: 3, strategy: 'linear', initialDelayMs: 1, maxDelayMs: 5 });
    const seen: Array<[number, number]> = [];
    let calls = 0;
    await expect(
      p.run(
        async () => {
          calls++;
          throw new TransportError('UNAVAILABLE', 'down');
        },
        { onRetry: (a, d) => seen.push([a, d]) },
      ),
    ).rejects.toThrow('down');
    expect(calls).toBe(3);
    expect(seen).toEqual([
      [1, 1],
      [2, 2],
    ]);
    const ok = await p.run(async (attempt) => {
      if (attempt < 2) throw new Error('once');
      return attempt;
    });
    expect(ok).toBe(2);
  });

  it('run() stops at a non-retryable error and on abort', async () => {
    const p = new RetryPolicy({ maxAttempts: 5, strategy: 'constant', initialDelayMs: 10_000, maxDelayMs: 10_000 });
    let calls = 0;
    const fatal = new TransportError('INVALID_ARGUMENT', 'bad');
    await expect(p.run(async () => (calls++, Promise.reject(fatal)), { isRetryable: () => false })).rejects.toBe(fatal);
    expect(calls).toBe(1);
    const ctrl = new AbortController();
    const pending = p.run(async () => Promise.reject(new Error('x')), { signal: ctrl.signal, onRetry: () => ctrl.abort() });
    await expect(pending).rejects.toMatchObject({ code: 'CANCELLED' });
  });

  it('rejects bad options with a message naming the field', () => {
    expect(() => new RetryPolicy({ maxAttempts: 0, strategy: 'constant', initialDelayMs: 1, maxDelayMs: 1 })).toThrow(/maxAttempts/);
    expect(() => new RetryPolicy({ maxAttempts: 1, strategy: 'fibonacci' as 'linear', initialDelayMs: 1, maxDelayMs: 1 })).toThrow(/strategy/);
    expect(() => new RetryPolicy({ maxAttempts: 1, strategy: 'linear', initialDelayMs: -1, maxDelayMs: 1 })).toThrow(/initialDelayMs/);
  });
});
