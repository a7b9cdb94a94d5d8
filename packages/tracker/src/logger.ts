/**
 * Structured logging on winston: a console transport (human lines on a TTY, JSON lines
 * otherwise) and size-rotated JSON-lines files. One winston logger per node, so serial mode can
 * run many nodes in one process without their files or levels mixing.
 */
import type { Logger as ComponentLogger } from '@oiafed/component';
import winston from 'winston';
import { RotatingFileTransport, TransportBase } from './rotating-file.js';
import { parseSize } from './size.js';
import { colorEnabled, writeAboveLiveLine, type TerminalStream } from './terminal.js';

type Transport = winston.transport;

/** A node's logger: the Logger every OiaFed package accepts (@oiafed/component's), plus `child` and `flush`. */
export interface Logger extends ComponentLogger {
  /** A logger that adds `fields` to every record (and shares this one's transports). */
  child(fields: Record<string, unknown>): Logger;
  /** Resolves once every record logged so far has been handed to the OS by every transport. */
  flush(): Promise<void>;
}

/** One entry of `tracker.backends[]`. */
export interface LogBackendConfig {
  /**
   * `console`: stderr. `file`: `<log_dir>/<nodeId>.log`. `jsonl`: `<log_dir>/<nodeId>.jsonl`.
   * `loguru` (the deployment guide's name): console and `file` together.
   */
  type: 'console' | 'file' | 'loguru' | 'jsonl';
  /** Most verbose level written by this backend; default `info`. */
  level?: LogLevel;
  /** Folder of the log file; default `./logs`. */
  log_dir?: string;
  /** Size at which the file rotates, e.g. `"100 MB"`; default: never. */
  rotation?: string;
  /** Files kept in all (current one included) once rotating; 0 or absent keeps all. */
  retention?: number;
}

/** Options of {@link createLogger}. */
export interface CreateLoggerOptions {
  /** Written on every record as `node`. */
  nodeId: string;
  /** Default: one console backend at `info`. */
  backends?: LogBackendConfig[];
  console?: {
    /** Force JSON lines (true) or human lines (false); default: human on a TTY, JSON otherwise. */
    json?: boolean;
    /** Default `process.stderr`, so stdout stays free for the trainer's round lines. */
    stream?: NodeJS.WritableStream;
    /** Colored levels in human lines; default {@link colorEnabled}: a TTY, unless NO_COLOR is set. */
    color?: boolean;
  };
}

export type LogLevel = 'error' | 'warn' | 'info' | 'debug';

const LEVELS: Readonly<Record<LogLevel, number>> = { error: 0, warn: 1, info: 2, debug: 3 };
const MESSAGE = Symbol.for('message');
const FIELDS = Symbol('oiafed.fields');

interface Record_ {
  level: string;
  message: string;
  [FIELDS]: Record<string, unknown>;
  [MESSAGE]?: string;
}

/**
 * Builds a node's logger from `tracker.backends`. Console output goes to stderr; file backends
 * write JSON lines under `log_dir`, rotating by size when `rotation` is set.
 *
 * @throws Error naming the backend index and key when a backend is malformed.
 */
export function createLogger(options: CreateLoggerOptions): Logger {
  const nodeId = options.nodeId;
  const backends = options.backends && options.backends.length > 0 ? options.backends : [{ type: 'console' as const }];
  const transports: Transport[] = [];
  let consoleLevel: LogLevel | undefined;
  backends.forEach((backend, index) => {
    const where = `tracker.backends[${index}]`;
    const level = checkLevel(backend.level, where);
    switch (backend.type) {
      case 'console':
        consoleLevel = moreVerbose(consoleLevel, level);
        break;
      case 'loguru':
        consoleLevel = moreVerbose(consoleLevel, level);
        transports.push(fileTransport(nodeId, backend, level, '.log', where));
        break;
      case 'file':
        transports.push(fileTransport(nodeId, backend, level, '.log', where));
        break;
      case 'jsonl':
        transports.push(fileTransport(nodeId, backend, level, '.jsonl', where));
        break;
      default:
        throw new Error(
          `${where}.type: unknown log backend ${JSON.stringify((backend as { type: unknown }).type)}; ` +
            `expected one of console, file, loguru, jsonl`,
        );
    }
  });
  let consoleStream: NodeJS.WritableStream | undefined;
  if (consoleLevel !== undefined) {
    const stream = options.console?.stream ?? process.stderr;
    consoleStream = stream;
    const tty = (stream as TerminalStream).isTTY === true;
    const json = options.console?.json ?? !tty;
    const color = options.console?.color ?? colorEnabled(stream);
    transports.push(new ConsoleTransport(stream, consoleLevel, json ? jsonFormat(nodeId) : humanFormat(nodeId, color)));
  }
  const maxLevel = Math.max(...transports.map((t) => LEVELS[(t.level ?? 'info') as LogLevel] ?? 0));
  const root = winston.createLogger({ levels: { ...LEVELS }, level: 'debug', transports, exitOnError: false });
  // A failing file (disk full, permissions) must not crash the node it observes.
  root.on('error', () => undefined);
  for (const t of transports) t.on('error', () => undefined);

  const write = (level: LogLevel, fields: Record<string, unknown>, msg: string, meta?: object): void => {
    if (LEVELS[level] > maxLevel) return;
    const record: Record_ = { level, message: String(msg), [FIELDS]: meta ? { ...fields, ...meta } : fields };
    root.write(record);
  };
  const flush = (): Promise<void> => waitDrained([root, ...transports, ...(consoleStream ? [consoleStream] : [])]);
  const make = (fields: Record<string, unknown>): Logger => ({
    debug: (msg, meta) => write('debug', fields, msg, meta),
    info: (msg, meta) => write('info', fields, msg, meta),
    warn: (msg, meta) => write('warn', fields, msg, meta),
    error: (msg, meta) => write('error', fields, msg, meta),
    child: (extra) => make({ ...fields, ...extra }),
    flush,
  });
  return make({});
}

/** Console lines that step around a progress bar on the same terminal instead of splitting it. */
class ConsoleTransport extends TransportBase {
  constructor(
    private readonly stream: NodeJS.WritableStream,
    level: LogLevel,
    format: winston.Logform.Format,
  ) {
    super({ level, format });
  }

  override log(info: Record<string | symbol, unknown>, next: () => void): void {
    writeAboveLiveLine(this.stream, `${String(info[MESSAGE])}\n`);
    this.emit('logged', info);
    next();
  }
}

/** A logger that drops everything; the default wherever a logger is optional. */
export function createNoopLogger(): Logger {
  const noop = (): void => undefined;
  const logger: Logger = {
    debug: noop,
    info: noop,
    warn: noop,
    error: noop,
    child: () => logger,
    flush: () => Promise.resolve(),
  };
  return logger;
}

function checkLevel(level: unknown, where: string): LogLevel {
  if (level === undefined) return 'info';
  if (typeof level === 'string' && Object.hasOwn(LEVELS, level)) return level as LogLevel;
  throw new Error(`${where}.level: ${JSON.stringify(level)} is not a log level; expected error, warn, info or debug`);
}

function moreVerbose(a: LogLevel | undefined, b: LogLevel): LogLevel {
  return a === undefined || LEVELS[b] > LEVELS[a] ? b : a;
}

function fileTransport(nodeId: string, backend: LogBackendConfig, level: LogLevel, ext: string, where: string): Transport {
  let maxsize: number | undefined;
  if (backend.rotation !== undefined) {
    try {
      maxsize = parseSize(backend.rotation);
    } catch (err) {
      throw new Error(`${where}.rotation: ${(err as Error).message}`);
    }
  }
  const retention = backend.retention ?? 0;
  if (!Number.isInteger(retention) || retention < 0) {
    throw new Error(`${where}.retention: ${JSON.stringify(retention)} is not a count of files; expected an integer >= 0`);
  }
  return new RotatingFileTransport({
    dir: backend.log_dir ?? './logs',
    base: nodeId,
    ext,
    level,
    maxsize,
    maxFiles: retention,
    format: jsonFormat(nodeId),
  });
}

function jsonFormat(nodeId: string): winston.Logform.Format {
  return winston.format((info) => {
    const record = info as unknown as Record_;
    const line = { timestamp: new Date().toISOString(), level: record.level, node: nodeId, message: record.message, ...record[FIELDS] };
    record[MESSAGE] = safeStringify(line);
    return info;
  })();
}

const COLORS: Readonly<Record<string, string>> = { error: '\x1b[31m', warn: '\x1b[33m', info: '\x1b[32m', debug: '\x1b[90m' };

function humanFormat(nodeId: string, color: boolean): winston.Logform.Format {
  return winston.format((info) => {
    const record = info as unknown as Record_;
    const level = record.level.toUpperCase().padEnd(5);
    const shownLevel = color ? `${COLORS[record.level] ?? ''}${level}\x1b[0m` : level;
    const pairs = Object.entries(record[FIELDS])
      .filter(([, v]) => v !== undefined)
      .map(([k, v]) => `${k}=${humanValue(v)}`);
    const tail = pairs.length > 0 ? ` ${pairs.join(' ')}` : '';
    record[MESSAGE] = `${new Date().toISOString()} ${shownLevel} [${nodeId}] ${record.message}${tail}`;
    return info;
  })();
}

function humanValue(value: unknown): string {
  if (typeof value === 'string') return /^[^\s"=]+$/.test(value) ? value : JSON.stringify(value);
  if (typeof value === 'number') return Number.isInteger(value) ? String(value) : String(Number(value.toPrecision(6)));
  return safeStringify(value);
}

/** JSON that survives cycles, bigints and errors instead of throwing inside a log call. */
export function safeStringify(value: unknown): string {
  const seen = new WeakSet<object>();
  return JSON.stringify(value, (_key, v: unknown) => {
    if (typeof v === 'bigint') return v.toString();
    if (v instanceof Error) return { name: v.name, message: v.message, stack: v.stack };
    if (ArrayBuffer.isView(v)) return `<${v.constructor.name} ${v.byteLength} bytes>`;
    if (typeof v === 'object' && v !== null) {
      if (seen.has(v)) return '[Circular]';
      seen.add(v);
    }
    return v;
  }) ?? 'null';
}

interface StreamState {
  _writableState?: { length: number };
  _readableState?: { length: number };
}

function streamIdle(s: StreamState | undefined): boolean {
  return !s || ((s._writableState?.length ?? 0) === 0 && (s._readableState?.length ?? 0) === 0);
}

/**
 * winston has no flush. Records pass the logger's Transform, each transport's Writable buffer and,
 * for the console, the output stream's buffer, asynchronously; file transports write synchronously
 * once a record reaches them. So wait until every buffer is empty over a few event-loop turns.
 */
async function waitDrained(streams: object[], timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let quiet = 0;
  while (quiet < 3 && Date.now() < deadline) {
    await new Promise((resolve) => setImmediate(resolve));
    const idle = streams.every((s) => streamIdle(s as StreamState));
    quiet = idle ? quiet + 1 : 0;
  }
}
