import { describe, expect, it } from 'vitest';
import { RateLimitedLog, sanitizeForLog } from './rate-limited-log.js';
import type { Logger } from './types.js';

function recorder(): { logger: Logger; lines: Array<{ level: string; msg: string; meta?: object }> } {
  const lines: Array<{ level: string; msg: string; meta?: object }> = [];
  const rec = (level: string) => (msg: string, meta?: object) => lines.push({ level, msg, meta });
  return { logger: { debug: rec('debug'), info: rec('info'), warn: rec('warn'), error: rec('error') }, lines };
}

describe('RateLimitedLog', () => {
  it('logs a (peer, reason) once per interval and reports how many were suppressed', () => {
    let now = 0;
    const { logger, lines } = recorder();
    const log = new RateLimitedLog(logger, { intervalMs: 1000, now: () => now });
    expect(log.refuse('p1', 'bad chunk', 'seq 3')).toBe(true);
    for (let i = 0; i < 50_000; i++) log.refuse('p1', 'bad chunk', `seq ${i}`);
    expect(log.refuse('p2', 'bad chunk')).toBe(true);
    expect(log.refuse('p1', 'too large')).toBe(true);
    expect(lines).toHaveLength(3);
    now = 1000;
    expect(log.refuse('p1', 'bad chunk', 'again', 'error')).toBe(true);
    expect(lines[3]).toMatchObject({ level: 'error', msg: "refused 'p1': bad chunk: again [50000 more like this suppressed]" });
  });

  it('keeps at most maxKeys keys, forgetting the oldest', () => {
    const { logger, lines } = recorder();
    const log = new RateLimitedLog(logger, { intervalMs: 1e9, maxKeys: 2, now: () => 0 });
    log.refuse('a', 'r');
    log.refuse('b', 'r');
    log.refuse('c', 'r');
    log.refuse('b', 'r');
    expect(lines).toHaveLength(3);
    log.refuse('a', 'r');
    expect(lines).toHaveLength(4);
  });

  it('line(): writes a plain message once per (peer, kind) per interval, sanitised', () => {
    let now = 0;
    const { logger, lines } = recorder();
    const log = new RateLimitedLog(logger, { intervalMs: 1000, now: () => now });
    for (let i = 0; i < 1000; i++) log.line('p1', 'bad chunk #', `bad chunk ${i}\nforged`, 'error');
    log.line('p1', 'link closed', 'link closed');
    expect(lines.map((l) => l.msg)).toEqual(['bad chunk 0\\u000aforged', 'link closed']);
    now = 1000;
    log.line('p1', 'bad chunk #', 'bad chunk 1000', 'error');
    expect(lines[2]).toMatchObject({ level: 'error', msg: 'bad chunk 1000 [999 more like this suppressed]' });
  });

  it('never lets a wire string forge a line or flood the log', () => {
    expect(sanitizeForLog('x\nERROR forged')).toBe('x\\u000aERROR forged');
    const long = sanitizeForLog('i'.repeat(16 * 1024 * 1024));
    expect(long.length).toBeLessThan(120);
    expect(long).toMatch(/\(16777216 chars\)$/);
  });
});
