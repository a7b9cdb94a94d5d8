/**
 * Progress of long steps (dataset download, local epochs): a bar redrawn in place on a
 * terminal, and a few plain lines in logs and CI, where carriage returns turn into noise.
 * A bar on screen is the terminal's live line: log lines written meanwhile clear it and redraw
 * it (see writeAboveLiveLine), so a log line never lands in the middle of a bar.
 */
import { claimLiveLine, colorEnabled, releaseLiveLine, type LiveLine, type TerminalStream } from './terminal.js';

/** A progress display; `start` may be called again for the next task. */
export interface Progress {
  /** Begins a task of `total` units (0 or less when unknown). */
  start(total: number, label: string): void;
  /** Advances by `n` units (default 1); `note` is shown beside the count (e.g. `loss=0.41`). */
  tick(n?: number, note?: string): void;
  /** Ends the task; the final line stays. */
  done(note?: string): void;
}

/** Options of {@link createProgress}. */
export interface ProgressOptions {
  /** Default `process.stderr`. A stream with `isTTY` gets the redrawn bar. */
  stream?: TerminalStream;
  /** Label used when `start` gets an empty one. */
  label?: string;
  /**
   * Whether the bar may erase with an ANSI code; default {@link colorEnabled} (no under NO_COLOR).
   * Without it the bar overwrites its old text with spaces.
   */
  ansi?: boolean;
}

/** Plain mode prints at each 10% step, and at least every this many ms when ticks are slow to reach one. */
const PLAIN_INTERVAL_MS = 10_000;
/** TTY redraws at most this often; `done` always draws. */
const TTY_INTERVAL_MS = 100;

/** Creates a progress display on `stream` (stderr by default). */
export function createProgress(options: ProgressOptions = {}): Progress {
  const stream = options.stream ?? process.stderr;
  const tty = stream.isTTY === true;
  const ansi = options.ansi ?? colorEnabled(stream);
  /** The bar as last drawn, and how many columns of it are on screen now. */
  let lastLine = '';
  let shown = 0;
  let label = options.label ?? '';
  let total = 0;
  let count = 0;
  let startedAt = 0;
  let lastDraw = 0;
  let lastStep = -1;
  let active = false;
  let lastNote: string | undefined;

  const rate = (now: number): number => {
    const elapsed = (now - startedAt) / 1000;
    return elapsed > 0 ? count / elapsed : 0;
  };

  const counts = (): string => (total > 0 ? `${count}/${total} (${Math.floor((Math.min(count, total) / total) * 100)}%)` : `${count}`);

  const drawTty = (now: number, final: boolean, note?: string): void => {
    const width = Math.max(40, stream.columns ?? 80);
    const speed = rate(now);
    const eta = total > 0 && speed > 0 && !final ? ` eta ${duration((total - count) / speed)}` : '';
    const tail = ` ${[counts(), formatRate(speed)].filter(Boolean).join(' ')}${final ? ` in ${duration((now - startedAt) / 1000)}` : eta}${note ? ` ${note}` : ''}`;
    let bar = '';
    if (total > 0) {
      const barWidth = Math.max(10, Math.min(40, width - label.length - tail.length - 4));
      const filled = Math.round((Math.min(count, total) / total) * barWidth);
      bar = ` [${'#'.repeat(filled)}${'-'.repeat(barWidth - filled)}]`;
    }
    const line = `${label}${bar}${tail}`.slice(0, width - 1);
    const erase = ansi ? '\x1b[K' : ' '.repeat(Math.max(0, shown - line.length));
    stream.write(`\r${line}${erase}${final ? '\n' : ''}`);
    lastLine = line;
    shown = final ? 0 : line.length;
    if (final) releaseLiveLine(live);
    else claimLiveLine(live);
  };

  const live: LiveLine = {
    stream,
    clear(): void {
      stream.write(ansi ? '\r\x1b[K' : `\r${' '.repeat(shown)}\r`);
      shown = 0;
    },
    redraw(): void {
      stream.write(`\r${lastLine}`);
      shown = lastLine.length;
    },
  };

  return {
    start(n: number, newLabel: string): void {
      if (active && tty) {
        stream.write('\n');
        shown = 0;
      }
      total = Number.isFinite(n) && n > 0 ? n : 0;
      label = newLabel || options.label || 'progress';
      count = 0;
      startedAt = Date.now();
      lastDraw = startedAt;
      lastStep = 0;
      lastNote = undefined;
      active = true;
      if (tty) drawTty(startedAt, false);
      else stream.write(`${label}: started${total > 0 ? ` (${total} total)` : ''}\n`);
    },

    tick(n = 1, note?: string): void {
      if (!active) return;
      count += n;
      if (note !== undefined) lastNote = note;
      const now = Date.now();
      if (tty) {
        if (now - lastDraw >= TTY_INTERVAL_MS) {
          lastDraw = now;
          drawTty(now, false, lastNote);
        }
        return;
      }
      const step = total > 0 ? Math.floor((Math.min(count, total) / total) * 10) : -1;
      const newStep = step > lastStep && step < 10;
      if (newStep || now - lastDraw >= PLAIN_INTERVAL_MS) {
        if (newStep) lastStep = step;
        lastDraw = now;
        stream.write(`${[`${label}:`, counts(), formatRate(rate(now)), lastNote].filter(Boolean).join(' ')}\n`);
      }
    },

    done(note?: string): void {
      if (!active) return;
      active = false;
      const now = Date.now();
      const finalNote = note ?? lastNote;
      if (tty) drawTty(now, true, finalNote);
      else stream.write(`${label}: done ${counts()} in ${duration((now - startedAt) / 1000)}${finalNote ? ` ${finalNote}` : ''}\n`);
    },
  };
}

function formatRate(perSecond: number): string {
  if (perSecond <= 0) return '';
  return perSecond >= 100 ? `${Math.round(perSecond)}/s` : `${Number(perSecond.toFixed(1))}/s`;
}

function duration(s: number): string {
  if (s < 60) return `${Number(s.toFixed(1))}s`;
  const m = Math.floor(s / 60);
  return m < 60 ? `${m}m${Math.round(s % 60)}s` : `${Math.floor(m / 60)}h${m % 60}m`;
}
