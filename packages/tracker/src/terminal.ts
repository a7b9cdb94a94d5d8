/**
 * What a terminal gets: whether escape codes are welcome (no-color.org's NO_COLOR, FORCE_COLOR,
 * TTY or not), and one coordination point between the progress bar being redrawn in place and
 * the lines (logs, round lines) written while it is up, so the two never share a line.
 */

/** A stream that may be a terminal. */
export type TerminalStream = NodeJS.WritableStream & { isTTY?: boolean; columns?: number };

/**
 * Whether output to `stream` may carry ANSI escape codes (colors, erase-line). NO_COLOR set and
 * non-empty says no (no-color.org); FORCE_COLOR says yes unless it is `0` or `false`; otherwise
 * only a TTY whose TERM is not `dumb` gets them.
 */
export function colorEnabled(stream: TerminalStream, env: NodeJS.ProcessEnv = process.env): boolean {
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== '') return false;
  const force = env.FORCE_COLOR;
  if (force !== undefined && force !== '') return force !== '0' && force !== 'false';
  return stream.isTTY === true && env.TERM !== 'dumb';
}

/** A line redrawn in place (a progress bar) that other output has to step around. */
export interface LiveLine {
  readonly stream: TerminalStream;
  /** Blanks the line and returns the cursor to its start. */
  clear(): void;
  /** Draws the line again, as it was. */
  redraw(): void;
}

interface LiveLineState {
  line?: LiveLine;
}

// On globalThis so two copies of this package in one process still share the one terminal.
const STATE_KEY = Symbol.for('oiafed.tracker.liveLine');

function state(): LiveLineState {
  const holder = globalThis as unknown as Record<symbol, LiveLineState | undefined>;
  holder[STATE_KEY] ??= {};
  return holder[STATE_KEY]!;
}

/** Makes `line` the one in-place line on the terminal (the newest bar wins). */
export function claimLiveLine(line: LiveLine): void {
  state().line = line;
}

/** Gives the terminal back once a bar has finished (no-op if another bar has claimed it since). */
export function releaseLiveLine(line: LiveLine): void {
  const current = state();
  if (current.line === line) current.line = undefined;
}

/**
 * Writes `text` (whole lines) to `stream` without mixing it into a progress bar: when a bar is up
 * on a terminal and `stream` is a terminal too (stdout and stderr share the screen), the bar is
 * cleared first and redrawn after, all synchronously, so the text lands on lines of its own.
 */
export function writeAboveLiveLine(stream: TerminalStream, text: string): void {
  const line = state().line;
  const shared = line !== undefined && stream.isTTY === true && line.stream.isTTY === true;
  if (shared) line.clear();
  stream.write(text);
  if (shared) line.redraw();
}
