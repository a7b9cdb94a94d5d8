import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { colorEnabled, createLogger, createProgress, writeAboveLiveLine } from '@oiafed/tracker';

const ESC = '\x1b';

/** A fake terminal stream (isTTY) that keeps every chunk in order. */
function terminal(): { stream: Writable & { isTTY: boolean; columns: number }; text: () => string } {
  let text = '';
  const stream = new Writable({
    write(chunk, _enc, cb) {
      text += String(chunk);
      cb();
    },
  }) as Writable & { isTTY: boolean; columns: number };
  stream.isTTY = true;
  stream.columns = 100;
  return { stream, text: () => text };
}

describe('colorEnabled', () => {
  const tty = { isTTY: true } as NodeJS.WritableStream & { isTTY: boolean };
  const pipe = {} as NodeJS.WritableStream;

  it('follows no-color.org: NO_COLOR set and non-empty turns color off, even on a TTY', () => {
    expect(colorEnabled(tty, {})).toBe(true);
    expect(colorEnabled(tty, { NO_COLOR: '1' })).toBe(false);
    expect(colorEnabled(tty, { NO_COLOR: '' })).toBe(true);
    expect(colorEnabled(tty, { NO_COLOR: '1', FORCE_COLOR: '1' })).toBe(false);
  });

  it('gives no color off a TTY or on a dumb terminal unless FORCE_COLOR asks', () => {
    expect(colorEnabled(pipe, {})).toBe(false);
    expect(colorEnabled(tty, { TERM: 'dumb' })).toBe(false);
    expect(colorEnabled(pipe, { FORCE_COLOR: '1' })).toBe(true);
    expect(colorEnabled(tty, { FORCE_COLOR: '0' })).toBe(false);
  });
});

describe('no ANSI codes without color', () => {
  it('human log lines on a TTY carry colored levels only when color is on', async () => {
    const colored = terminal();
    const plain = terminal();
    const a = createLogger({ nodeId: 'n', console: { stream: colored.stream, color: true } });
    const b = createLogger({ nodeId: 'n', console: { stream: plain.stream, color: false } });
    a.warn('careful');
    b.warn('careful');
    await Promise.all([a.flush(), b.flush()]);
    expect(colored.text()).toContain(`${ESC}[33mWARN`);
    expect(plain.text()).toMatch(/ WARN +\[n\] careful\n$/);
    expect(plain.text()).not.toContain(ESC);
  });

  it('the TTY bar erases with spaces instead of an escape code', () => {
    const out = terminal();
    const bar = createProgress({ stream: out.stream, ansi: false });
    bar.start(100, 'a-long-label-for-the-first-task');
    bar.done();
    bar.start(1, 'short');
    bar.tick(1);
    bar.done();
    expect(out.text()).not.toContain(ESC);
    expect(out.text()).toContain('\rshort');
  });
});

describe('bar and log lines on one terminal', () => {
  it('a log line clears the bar, lands on its own line, and the bar is redrawn after it', async () => {
    const out = terminal();
    const bar = createProgress({ stream: out.stream, ansi: true });
    const logger = createLogger({ nodeId: 'trainer', console: { stream: out.stream, color: false } });
    bar.start(10, 'rounds');
    bar.tick(5);
    const before = out.text().length;
    logger.info('learner_1 registered');
    await logger.flush();
    const written = out.text().slice(before);
    expect(written.startsWith(`\r${ESC}[K`)).toBe(true);
    expect(written).toMatch(/\r\x1b\[K\S+ INFO +\[trainer\] learner_1 registered\n\rrounds \[[#-]+\] 0\/10 \(0%\)$/);
    bar.done();
  });

  it('plain round lines on another TTY stream step around the bar too; nothing is added without a bar', () => {
    const out = terminal();
    writeAboveLiveLine(out.stream, 'round 1/3\n');
    expect(out.text()).toBe('round 1/3\n');
    const bar = createProgress({ stream: out.stream, ansi: false });
    bar.start(3, 'rounds');
    writeAboveLiveLine(out.stream, 'round 2/3\n');
    bar.done();
    const afterDone = out.text().length;
    writeAboveLiveLine(out.stream, 'summary\n');
    expect(out.text().slice(afterDone)).toBe('summary\n');
    expect(out.text()).toMatch(/\rrounds \[-+\] 0\/3 \(0%\)\r +\rround 2\/3\n\rrounds \[-+\] 0\/3 \(0%\)\rrounds/);
  });
});
