// One log line per refusal, rate-limited per (peer, reason): a hostile peer that repeats the same
// bad frame 50,000 times must not write 50,000 lines, yet the first refusal is always visible and
// later ones are counted. Peer ids come off the wire, so they are sanitised before they are logged.
import type { Logger } from './types.js';

export interface RateLimitedLogOptions {
  /** Same (peer, reason) is logged at most once per this many ms (default 10 000). */
  intervalMs?: number;
  /** Most (peer, reason) keys remembered; the oldest is forgotten first (default 1 024). */
  maxKeys?: number;
  /** Clock, for tests. */
  now?: () => number;
}

interface Slot {
  lastMs: number;
  suppressed: number;
}

/** Longest peer id / reason quoted in a log line; the rest is cut (a 16 MB id must not reach the log). */
const MAX_QUOTED = 80;

/** Longest detail text kept in one line. */
const MAX_DETAIL = 400;

/** A string from the wire made safe for one log line: control characters escaped, length capped. */
export function sanitizeForLog(value: string, maxChars = MAX_QUOTED): string {
  const s = String(value);
  const cut = s.length > maxChars ? `${s.slice(0, maxChars)}...(${s.length} chars)` : s;
  // eslint-disable-next-line no-control-regex
  return cut.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/**
 * Logs refusals of hostile or broken input: `refused <peer>: <reason> (<detail>)`, once per
 * (peer, reason) per interval; the next line that gets through says how many were suppressed.
 * Memory is bounded by maxKeys whatever ids a peer invents.
 */
export class RateLimitedLog {
  private readonly slots = new Map<string, Slot>();
  private readonly intervalMs: number;
  private readonly maxKeys: number;
  private readonly now: () => number;

  constructor(
    private readonly logger: Logger,
    o: RateLimitedLogOptions = {},
  ) {
    this.intervalMs = o.intervalMs ?? 10_000;
    this.maxKeys = Math.max(1, o.maxKeys ?? 1024);
    this.now = o.now ?? Date.now;
  }

  /**
   * Logs (at `level`, default warn) that `peer` was refused for `reason` (a short fixed phrase,
   * the rate-limit key) with a free-form `detail`. Returns true when the line was written.
   */
  refuse(peer: string, reason: string, detail = '', level: 'warn' | 'error' | 'info' = 'warn'): boolean {
    const suppressed = this.pass(peer, reason);
    if (suppressed === undefined) return false;
    const more = suppressed > 0 ? ` [${suppressed} more like this suppressed]` : '';
    const tail = detail ? `: ${sanitizeForLog(detail, MAX_DETAIL)}` : '';
    this.logger[level](`refused '${sanitizeForLog(peer)}': ${sanitizeForLog(reason)}${tail}${more}`, {
      peer: sanitizeForLog(peer),
      reason,
      suppressed,
    });
    return true;
  }

  /**
   * Writes `message` (sanitised, capped) at `level` unless the same (peer, kind) was logged within
   * the interval; for messages that are not refusals, e.g. a peer's stream errors. `kind` is the
   * rate-limit key: the message with its varying parts (ids, counts) left out.
   */
  line(peer: string, kind: string, message: string, level: 'warn' | 'error' | 'info' = 'warn'): boolean {
    const suppressed = this.pass(peer, kind);
    if (suppressed === undefined) return false;
    const more = suppressed > 0 ? ` [${suppressed} more like this suppressed]` : '';
    this.logger[level](`${sanitizeForLog(message, MAX_DETAIL)}${more}`, { peer: sanitizeForLog(peer), suppressed });
    return true;
  }

  /** Counts (peer, key): the suppressed count to report when a line may be written now, else undefined. */
  private pass(peer: string, key: string): number | undefined {
    const slotKey = `${peer}\u0000${key}`;
    const t = this.now();
    const slot = this.slots.get(slotKey);
    if (slot && t - slot.lastMs < this.intervalMs) {
      slot.suppressed++;
      return undefined;
    }
    // Re-insert so Map order is least-recently-logged first, the eviction order.
    this.slots.delete(slotKey);
    this.slots.set(slotKey, { lastMs: t, suppressed: 0 });
    while (this.slots.size > this.maxKeys) this.slots.delete(this.slots.keys().next().value!);
    return slot?.suppressed ?? 0;
  }
}
