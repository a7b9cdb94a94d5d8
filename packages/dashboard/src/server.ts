/**
 * The dashboard's HTTP server on node's http module: the page (`/`), its script, the event
 * stream (`/events`), a JSON snapshot (`/state`), the run report (`/report`) and routes other
 * parts of the trainer add (`route`, e.g. the browser learner's `/join`). Read-only: nothing here
 * changes the run. With an auth token every route needs it.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type RequestListener, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { buildReportHtml, type Logger, type StoredRoundRecord } from '@oiafed/tracker';
import {
  applyEvent,
  emptyState,
  toSnapshot,
  type DashboardEvent,
  type DashboardLinks,
  type DashboardState,
  type LearnerRow,
  type RoundProgress,
  type RunInfo,
} from './model.js';
import { pageHtml } from './page-html.js';
import { SseHub, sseFrame } from './sse.js';

/** A request handler registered with {@link DashboardServer.route}. */
export type RouteHandler = (req: IncomingMessage, res: ServerResponse) => void;

/** Options of {@link startDashboard}. */
export interface DashboardOptions {
  /** Default `127.0.0.1`: the page shows the run to whoever reaches it. */
  host?: string;
  /** 0 picks a free port; the bound one is {@link DashboardServer.port}. */
  port: number;
  /** When set, every route needs `Authorization: Bearer <token>` or `?token=<token>`. */
  authToken?: string;
  /** Run header fields known at start. */
  run?: Partial<RunInfo>;
  links?: DashboardLinks;
  /** Run directory (history.jsonl): `/report` renders the report from it. */
  runDir?: string;
  /** Open event streams allowed at once (default 64). */
  maxClients?: number;
  /** Bytes queued for one stream before that client is dropped (default 1 MiB). */
  maxBufferedBytes?: number;
  /** Keep-alive comment period on event streams in ms (default 15000). */
  keepAliveMs?: number;
  /** PEM certificate chain and key: serve HTTPS (and wss:// for browser learners) instead of HTTP. */
  tls?: { cert: string | Buffer; key: string | Buffer };
  logger?: Pick<Logger, 'debug' | 'info' | 'warn' | 'error'>;
}

/** A running dashboard: the HTTP server, extra routes, and the feed the trainer calls. */
export interface DashboardServer {
  readonly port: number;
  /** The node http server; attach upgrade handlers (WebSocket) here. */
  readonly server: Server;
  /** Serves `path` (exact match, query ignored) with `handler`, behind the same auth check. */
  route(path: string, handler: RouteHandler): void;
  /** Whether a request carries the auth token (always true without one); for upgrade handlers. */
  authorized(req: IncomingMessage): boolean;
  /** Updates the run header (merged into what is known). */
  setRun(run: Partial<RunInfo>): void;
  /** Adds a finished round and sends it as a `round` event. */
  addRound(record: StoredRoundRecord): void;
  /** Merges `row` into the learner's row (created when new) and sends the row as a `learner` event. */
  updateLearner(row: Partial<LearnerRow> & { id: string }): void;
  /** Sets (or clears, with null) the current round's progress. */
  setProgress(progress: RoundProgress | null): void;
  /** The current state as a snapshot (what a new page receives). */
  snapshot(): ReturnType<typeof toSnapshot>;
  /** Open event streams. */
  readonly clients: number;
  close(): Promise<void>;
}

const NOOP = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };
const BUILTIN = new Set(['/', '/index.html', '/dashboard.js', '/events', '/state', '/report']);

/**
 * Starts the dashboard server.
 *
 * @throws Error naming host and port when the port cannot be bound.
 */
export async function startDashboard(options: DashboardOptions): Promise<DashboardServer> {
  const logger = options.logger ?? NOOP;
  const state = emptyState(options.run);
  state.links = { ...options.links, ...(options.runDir ? { report: 'report' } : {}) };
  const hub = new SseHub({
    maxClients: options.maxClients ?? 64,
    maxBufferedBytes: options.maxBufferedBytes ?? 1 << 20,
    keepAliveMs: options.keepAliveMs ?? 15_000,
  });
  const routes = new Map<string, RouteHandler>();
  const authorized = tokenCheck(options.authToken);
  const ctx: RequestContext = { state, hub, routes, authorized, options, logger };
  const onRequest: RequestListener = (req, res) => {
    try {
      handle(ctx, req, res);
    } catch (err) {
      logger.error('dashboard request failed', { url: req.url, error: String(err) });
      if (!res.headersSent) send(res, 500, 'text/plain; charset=utf-8', 'internal error\n');
      else res.end();
    }
  };
  const server: Server = options.tls ? createHttpsServer({ cert: options.tls.cert, key: options.tls.key }, onRequest) : createServer(onRequest);
  const host = options.host ?? '127.0.0.1';
  await listen(server, host, options.port);
  const port = (server.address() as AddressInfo).port;
  const scheme = options.tls ? 'https' : 'http';
  logger.info('dashboard listening', { url: `${scheme}://${host.includes(':') ? `[${host}]` : host}:${port}/`, auth: options.authToken ? 'token' : 'none' });
  const publish = (event: DashboardEvent): void => {
    applyEvent(state, event);
    hub.broadcast(event.type, event.data);
  };
  let closing: Promise<void> | undefined;
  return {
    port,
    server,
    route: (path, handler) => {
      if (BUILTIN.has(path)) throw new Error(`dashboard route ${path} is built in and cannot be replaced`);
      routes.set(path, handler);
    },
    authorized,
    setRun: (run) => publish({ type: 'run', data: { ...state.run, ...run } }),
    addRound: (record) => publish({ type: 'round', data: record }),
    updateLearner: (row) => publish({ type: 'learner', data: mergeLearner(state.learners.get(row.id), row) }),
    setProgress: (progress) => publish({ type: 'progress', data: progress }),
    snapshot: () => toSnapshot(state),
    get clients() {
      return hub.size;
    },
    close: () => (closing ??= closeServer(server, hub)),
  };
}

interface RequestContext {
  state: DashboardState;
  hub: SseHub;
  routes: Map<string, RouteHandler>;
  authorized: (req: IncomingMessage) => boolean;
  options: DashboardOptions;
  logger: Pick<Logger, 'debug' | 'info' | 'warn' | 'error'>;
}

function handle(ctx: RequestContext, req: IncomingMessage, res: ServerResponse): void {
  const url = new URL(req.url ?? '/', 'http://dashboard.invalid');
  if (!ctx.authorized(req)) {
    res.setHeader('WWW-Authenticate', 'Bearer realm="oiafed-dashboard"');
    send(res, 401, 'text/plain; charset=utf-8', 'dashboard: missing or wrong token (Authorization: Bearer <token>, or ?token=<token>)\n');
    return;
  }
  const extra = ctx.routes.get(url.pathname);
  if (extra) {
    extra(req, res);
    return;
  }
  if (!BUILTIN.has(url.pathname)) {
    send(res, 404, 'text/plain; charset=utf-8', 'not found\n');
    return;
  }
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.setHeader('Allow', 'GET, HEAD');
    send(res, 405, 'text/plain; charset=utf-8', `method ${req.method ?? ''} not allowed\n`);
    return;
  }
  serveBuiltin(ctx, url, req, res);
}

function serveBuiltin(ctx: RequestContext, url: URL, req: IncomingMessage, res: ServerResponse): void {
  const head = req.method === 'HEAD';
  switch (url.pathname) {
    case '/':
    case '/index.html':
      return send(res, 200, 'text/html; charset=utf-8', pageHtml(url.searchParams.get('token')), head);
    case '/dashboard.js':
      return send(res, 200, 'text/javascript; charset=utf-8', pageScript(), head);
    case '/state':
      return send(res, 200, 'application/json', JSON.stringify(toSnapshot(ctx.state)), head);
    case '/report':
      return serveReport(ctx, res, head);
    case '/events':
      if (ctx.hub.full) {
        res.setHeader('Retry-After', '5');
        return send(res, 503, 'text/plain; charset=utf-8', 'dashboard: too many open event streams\n');
      }
      ctx.hub.open(res, sseFrame('snapshot', toSnapshot(ctx.state)));
      ctx.logger.debug('dashboard stream opened', { clients: ctx.hub.size });
      return;
  }
}

function serveReport(ctx: RequestContext, res: ServerResponse, head: boolean): void {
  if (!ctx.options.runDir || ctx.state.rounds.length === 0) {
    send(res, 404, 'text/plain; charset=utf-8', 'no run report yet (no finished round, or no run directory)\n', head);
    return;
  }
  send(res, 200, 'text/html; charset=utf-8', buildReportHtml(ctx.options.runDir, { title: ctx.state.run.exp_name || undefined }), head);
}

function mergeLearner(old: LearnerRow | undefined, row: Partial<LearnerRow> & { id: string }): LearnerRow {
  const merged: LearnerRow = { state: 'registered', ...old, ...row };
  for (const key of Object.keys(merged) as Array<keyof LearnerRow>) if (merged[key] === undefined) delete merged[key];
  return merged;
}

/** Constant-time token comparison (digests, so lengths never leak through timing). */
function tokenCheck(token: string | undefined): (req: IncomingMessage) => boolean {
  if (!token) return () => true;
  const want = createHash('sha256').update(token).digest();
  const matches = (given: string | null | undefined): boolean =>
    typeof given === 'string' && timingSafeEqual(createHash('sha256').update(given).digest(), want);
  return (req) => {
    const header = req.headers.authorization;
    if (header?.startsWith('Bearer ') && matches(header.slice(7).trim())) return true;
    return matches(new URL(req.url ?? '/', 'http://dashboard.invalid').searchParams.get('token'));
  };
}

let cachedScript: string | undefined;

/** The page script esbuild wrote to dist/ (next to this file when running from dist, ../dist from src). */
function pageScript(): string {
  if (cachedScript !== undefined) return cachedScript;
  for (const rel of ['./dashboard.js', '../dist/dashboard.js']) {
    try {
      cachedScript = readFileSync(fileURLToPath(new URL(rel, import.meta.url)), 'utf8');
      return cachedScript;
    } catch {
      // try the next location
    }
  }
  return 'document.body.textContent = "dashboard script missing: run npm run build -w @oiafed/dashboard";';
}

function send(res: ServerResponse, code: number, type: string, body: string, head = false): void {
  res.statusCode = code;
  res.setHeader('Content-Type', type);
  res.setHeader('Cache-Control', 'no-store');
  res.setHeader('X-Content-Type-Options', 'nosniff');
  // Defence in depth behind the escaping: no inline or foreign scripts can run on the page.
  res.setHeader('Content-Security-Policy', "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'");
  res.setHeader('Content-Length', Buffer.byteLength(body));
  res.end(head ? undefined : body);
}

function listen(server: Server, host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException): void => {
      reject(new Error(`dashboard cannot listen on ${host}:${port}: ${err.code ?? err.message}`));
    };
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      resolve();
    });
  });
}

function closeServer(server: Server, hub: SseHub): Promise<void> {
  hub.closeAll();
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}
