/**
 * A size-rotating JSON-lines file transport for winston.
 *
 * winston 3.19's own File transport loses data when a burst of records crosses `maxsize`: it
 * waits forever for a `drain` after rotating and leaves empty files (seen here with 600 lines
 * of 150 bytes and maxsize 10 KB). This one appends synchronously, which for a federated node's
 * few records a second costs microseconds, makes `flush` trivial, and keeps every line written
 * before a `kill -9` on disk.
 */
import { closeSync, existsSync, fstatSync, mkdirSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import winston from 'winston';

const MESSAGE = Symbol.for('message');

/** winston's typings call the base class `transport`; at run time it is exported as `Transport`. */
type TransportConstructor = new (options?: { level?: string; format?: winston.Logform.Format }) => winston.transport;
export const TransportBase = (winston as unknown as { Transport: TransportConstructor }).Transport;

/** Options of {@link RotatingFileTransport}. */
export interface RotatingFileOptions {
  dir: string;
  /** File name without extension; rotated files insert a number before the extension. */
  base: string;
  /** Extension with its dot, e.g. `.log`. */
  ext: string;
  /** Rotate before a write would make the live file exceed this many bytes; absent: never. */
  maxsize?: number;
  /** Files kept in all, live one included; 0 or absent: all. */
  maxFiles?: number;
  level?: string;
  format?: winston.Logform.Format;
}

/**
 * `<dir>/<base><ext>` is always the live file; on rotation it becomes `<base>1<ext>`, the former
 * `<base>1<ext>` becomes `<base>2<ext>`, and so on, dropping whatever passes `maxFiles`.
 */
export class RotatingFileTransport extends TransportBase {
  /** Path of the live file. */
  readonly file: string;
  private readonly options: RotatingFileOptions;
  private fd: number | undefined;
  private size = 0;

  constructor(options: RotatingFileOptions) {
    super({ level: options.level, format: options.format });
    this.options = options;
    this.file = join(options.dir, `${options.base}${options.ext}`);
    mkdirSync(options.dir, { recursive: true });
    this.open();
  }

  /** winston calls this once per record that passed the level and format. */
  override log(info: Record<string | symbol, unknown>, next: () => void): void {
    const line = `${String(info[MESSAGE])}\n`;
    const bytes = Buffer.byteLength(line);
    try {
      const { maxsize } = this.options;
      if (maxsize !== undefined && this.size > 0 && this.size + bytes > maxsize) this.rotate();
      if (this.fd === undefined) this.open();
      writeSync(this.fd as number, line);
      this.size += bytes;
    } catch (err) {
      // Logging must never take the node down; drop the fd so the next record retries opening.
      this.closeFd();
      this.emit('error', err);
    }
    this.emit('logged', info);
    next();
  }

  /** Closes the file; a later record reopens it. */
  override close(): void {
    this.closeFd();
  }

  private open(): void {
    this.fd = openSync(this.file, 'a');
    this.size = fstatSync(this.fd).size;
  }

  private closeFd(): void {
    if (this.fd === undefined) return;
    const fd = this.fd;
    this.fd = undefined;
    try {
      closeSync(fd);
    } catch {
      // already closed or invalid: nothing left to release
    }
  }

  private rotate(): void {
    this.closeFd();
    const { dir, base, ext } = this.options;
    const name = (n: number): string => join(dir, n === 0 ? `${base}${ext}` : `${base}${n}${ext}`);
    const maxFiles = this.options.maxFiles && this.options.maxFiles > 0 ? this.options.maxFiles : Infinity;
    if (maxFiles === 1) {
      rmSync(name(0), { force: true });
    } else {
      let highest = 0;
      while (existsSync(name(highest + 1))) highest++;
      for (let n = highest; n >= maxFiles - 1; n--) rmSync(name(n), { force: true });
      for (let n = Math.min(highest, maxFiles - 2); n >= 0; n--) renameSync(name(n), name(n + 1));
    }
    this.open();
  }
}
