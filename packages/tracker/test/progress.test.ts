import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createProgress } from '@oiafed/tracker';

function capture(tty: boolean): { stream: Writable & { isTTY?: boolean; columns?: number }; text: () => string } {
  let text = '';
  const stream = new Writable({
    write(chunk, _enc, cb) {
      text += String(chunk);
      cb();
    },
  }) as Writable & { isTTY?: boolean; columns?: number };
  if (tty) {
    stream.isTTY = true;
    stream.columns = 100;
  }
  return { stream, text: () => text };
}

describe('createProgress', () => {
  it('prints plain lines at each tenth on a non-TTY stream', () => {
    const out = capture(false);
    const progress = createProgress({ stream: out.stream });
    progress.start(200, 'epoch 1');
    for (let i = 0; i < 200; i++) progress.tick(1, i === 150 ? 'loss=0.41' : undefined);
    progress.done();
    const lines = out.text().split('\n').filter(Boolean);
    expect(lines[0]).toBe('epoch 1: started (200 total)');
    expect(lines.slice(1, -1).map((l) => l.replace(/ [\d.]+\/s/, ''))).toEqual([
      'epoch 1: 20/200 (10%)',
      'epoch 1: 40/200 (20%)',
      'epoch 1: 60/200 (30%)',
      'epoch 1: 80/200 (40%)',
      'epoch 1: 100/200 (50%)',
      'epoch 1: 120/200 (60%)',
      'epoch 1: 140/200 (70%)',
      'epoch 1: 160/200 (80%) loss=0.41',
      'epoch 1: 180/200 (90%) loss=0.41',
    ]);
    expect(lines[lines.length - 1]).toMatch(/^epoch 1: done 200\/200 \(100%\) in [\d.]+s loss=0\.41$/);
    expect(out.text()).not.toContain('\r');
  });

  it('handles an unknown total and ignores ticks outside a task', () => {
    const out = capture(false);
    const progress = createProgress({ stream: out.stream, label: 'download' });
    progress.tick();
    progress.start(0, '');
    progress.tick(5);
    progress.done('ok');
    expect(out.text().split('\n').filter(Boolean)).toEqual([
      'download: started',
      expect.stringMatching(/^download: done 5 in [\d.]+s ok$/),
    ]);
  });

  it('redraws one bar in place on a TTY', () => {
    const out = capture(true);
    const progress = createProgress({ stream: out.stream, ansi: true });
    progress.start(10, 'train');
    progress.tick(10);
    progress.done('acc=0.9');
    const text = out.text();
    expect(text.startsWith('\rtrain [')).toBe(true);
    expect(text.endsWith('\n')).toBe(true);
    expect(text.split('\n').filter(Boolean)).toHaveLength(1);
    expect(text).toMatch(/\rtrain \[#{10,}\] 10\/10 \(100%\).* in [\d.]+s acc=0\.9\x1b\[K\n$/);
  });
});
