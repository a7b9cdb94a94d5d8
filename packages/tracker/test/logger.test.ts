import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { createLogger, parseSize } from '@oiafed/tracker';

/** A non-TTY stream that keeps what it receives. */
function capture(tty = false): { stream: Writable & { isTTY?: boolean }; lines: () => string[] } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk, _enc, cb) {
      chunks.push(String(chunk));
      cb();
    },
  }) as Writable & { isTTY?: boolean };
  if (tty) stream.isTTY = true;
  return { stream, lines: () => chunks.join('').split('\n').filter((l) => l.length > 0) };
}

const dirs: string[] = [];
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'oiafed-tracker-log-'));
  dirs.push(dir);
  return dir;
}
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

describe('parseSize', () => {
  it('reads decimal and binary units', () => {
    expect(parseSize('100 MB')).toBe(100_000_000);
    expect(parseSize('10KB')).toBe(10_000);
    expect(parseSize('10 kb')).toBe(10_000);
    expect(parseSize('1.5 GB')).toBe(1_500_000_000);
    expect(parseSize('512 B')).toBe(512);
    expect(parseSize('2048')).toBe(2048);
    expect(parseSize('4 MiB')).toBe(4 * 1024 * 1024);
    expect(parseSize(' 1 KiB ')).toBe(1024);
  });

  it('rejects garbage with the text and the expected form', () => {
    expect(() => parseSize('lots')).toThrow(/invalid size "lots": expected a number and a unit such as "100 MB"/);
    expect(() => parseSize('10 XB')).toThrow(/invalid size "10 XB"/);
    expect(() => parseSize('-5 MB')).toThrow(/invalid size/);
    expect(() => parseSize('')).toThrow(/invalid size ""/);
    expect(() => parseSize('0 KB')).toThrow(/at least 1 byte/);
  });
});

describe('createLogger console', () => {
  it('writes JSON lines with node id and meta on a non-TTY stream', async () => {
    const out = capture();
    const logger = createLogger({ nodeId: 'learner_3', console: { stream: out.stream } });
    logger.info('round done', { round: 4, accuracy: 0.5 });
    logger.debug('hidden at info');
    logger.child({ learner: 'learner_3' }).warn('slow', { seconds: 2.5 });
    await logger.flush();
    const records = out.lines().map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(records).toHaveLength(2);
    expect(records[0]).toMatchObject({ level: 'info', node: 'learner_3', message: 'round done', round: 4, accuracy: 0.5 });
    expect(typeof records[0].timestamp).toBe('string');
    expect(records[1]).toMatchObject({ level: 'warn', node: 'learner_3', message: 'slow', learner: 'learner_3', seconds: 2.5 });
  });

  it('writes human lines on a TTY and honours level', async () => {
    const out = capture(true);
    const logger = createLogger({ nodeId: 'trainer', backends: [{ type: 'console', level: 'debug' }], console: { stream: out.stream } });
    logger.debug('registered', { learner: 'learner_0', note: 'two words' });
    await logger.flush();
    const [line] = out.lines();
    expect(line).toMatch(/^\d{4}-\d\d-\d\dT[\d:.]+Z \S*DEBUG\S* +\[trainer\] registered learner=learner_0 note="two words"$/);
  });

  it('does not throw on cyclic meta or errors', async () => {
    const out = capture();
    const logger = createLogger({ nodeId: 'n', console: { stream: out.stream } });
    const cyclic: Record<string, unknown> = { a: 1 };
    cyclic.self = cyclic;
    logger.error('boom', { err: new Error('bad thing'), cyclic, big: 10n });
    await logger.flush();
    const record = JSON.parse(out.lines()[0]) as { err: { message: string }; cyclic: { self: string }; big: string };
    expect(record.err.message).toBe('bad thing');
    expect(record.cyclic.self).toBe('[Circular]');
    expect(record.big).toBe('10');
  });

  it('names the backend on bad config', () => {
    expect(() => createLogger({ nodeId: 'n', backends: [{ type: 'console' }, { type: 'file', rotation: 'huge' }] })).toThrow(
      /tracker\.backends\[1\]\.rotation: invalid size "huge"/,
    );
    expect(() => createLogger({ nodeId: 'n', backends: [{ type: 'syslog' as 'file' }] })).toThrow(
      /tracker\.backends\[0\]\.type: unknown log backend "syslog"/,
    );
    expect(() => createLogger({ nodeId: 'n', backends: [{ type: 'console', level: 'loud' as 'info' }] })).toThrow(
      /tracker\.backends\[0\]\.level: "loud" is not a log level/,
    );
  });
});

describe('createLogger files', () => {
  it('file backend writes JSON lines to <log_dir>/<nodeId>.log', async () => {
    const dir = join(tempDir(), 'nested', 'logs');
    const out = capture();
    const logger = createLogger({ nodeId: 'trainer', backends: [{ type: 'file', log_dir: dir, level: 'debug' }], console: { stream: out.stream } });
    logger.info('started', { port: 50051 });
    logger.debug('details');
    await logger.flush();
    const lines = readFileSync(join(dir, 'trainer.log'), 'utf8').trim().split('\n');
    expect(lines.map((l) => JSON.parse(l))).toMatchObject([
      { level: 'info', node: 'trainer', message: 'started', port: 50051 },
      { level: 'debug', node: 'trainer', message: 'details' },
    ]);
    expect(out.lines()).toEqual([]);
  });

  it('rotates by size and keeps at most `retention` files', async () => {
    const dir = tempDir();
    const logger = createLogger({ nodeId: 'learner_0', backends: [{ type: 'file', log_dir: dir, rotation: '10 KB', retention: 3 }] });
    const padding = 'x'.repeat(100);
    for (let i = 0; i < 600; i++) logger.info(`line ${i}`, { i, padding });
    await logger.flush();
    const files = readdirSync(dir).sort();
    expect(files).toEqual(['learner_0.log', 'learner_01.log', 'learner_02.log']);
    for (const f of files) {
      const text = readFileSync(join(dir, f), 'utf8');
      expect(text.length).toBeLessThan(10_000 + 400);
      for (const l of text.trim().split('\n')) expect(() => JSON.parse(l)).not.toThrow();
    }
    const live = readFileSync(join(dir, 'learner_0.log'), 'utf8').trim().split('\n');
    expect(JSON.parse(live[live.length - 1])).toMatchObject({ message: 'line 599', i: 599 });
  });

  it('numbers rotated files upwards and keeps them all without retention', async () => {
    const dir = tempDir();
    const logger = createLogger({ nodeId: 't', backends: [{ type: 'file', log_dir: dir, rotation: '1 KB' }] });
    // Each line is about 110 bytes: 9 fit in 1000 bytes, so 40 lines make 5 files.
    for (let i = 0; i < 40; i++) logger.info(`line ${String(i).padStart(2, '0')}`, { pad: 'y'.repeat(20) });
    await logger.flush();
    expect(readdirSync(dir).sort()).toEqual(['t.log', 't1.log', 't2.log', 't3.log', 't4.log']);
    const first = readFileSync(join(dir, 't4.log'), 'utf8').trim().split('\n');
    expect(JSON.parse(first[0])).toMatchObject({ message: 'line 00' });
    const total = ['t4', 't3', 't2', 't1', 't'].flatMap((f) => readFileSync(join(dir, `${f}.log`), 'utf8').trim().split('\n'));
    expect(total.map((l) => (JSON.parse(l) as { message: string }).message)).toEqual(
      Array.from({ length: 40 }, (_, i) => `line ${String(i).padStart(2, '0')}`),
    );
  });

  it('loguru writes to the console and to the file', async () => {
    const dir = tempDir();
    const out = capture();
    const logger = createLogger({ nodeId: 'trainer', backends: [{ type: 'loguru', log_dir: dir, rotation: '100 MB' }], console: { stream: out.stream } });
    logger.info('hello', { round: 1 });
    await logger.flush();
    expect(JSON.parse(out.lines()[0])).toMatchObject({ message: 'hello', round: 1 });
    expect(JSON.parse(readFileSync(join(dir, 'trainer.log'), 'utf8').trim())).toMatchObject({ message: 'hello', round: 1 });
  });

  it('jsonl writes <nodeId>.jsonl at its own level', async () => {
    const dir = tempDir();
    const out = capture();
    const logger = createLogger({
      nodeId: 'n1',
      backends: [{ type: 'console', level: 'error' }, { type: 'jsonl', log_dir: dir, level: 'warn' }],
      console: { stream: out.stream },
    });
    logger.info('dropped');
    logger.warn('kept in file');
    logger.error('everywhere');
    await logger.flush();
    expect(out.lines().map((l) => (JSON.parse(l) as { message: string }).message)).toEqual(['everywhere']);
    const fileLines = readFileSync(join(dir, 'n1.jsonl'), 'utf8').trim().split('\n');
    expect(fileLines.map((l) => (JSON.parse(l) as { message: string }).message)).toEqual(['kept in file', 'everywhere']);
  });
});
