/**
 * The node's HTTP side: Prometheus `/metrics`, liveness `/health` and readiness `/ready`, on
 * node's own http module (no framework), one server per port.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { silentLogger, type Logger } from '@oiafed/component';
import { METRICS_CONTENT_TYPE, type NodeMetrics } from './metrics.js';

/** What `/ready` reports. */
export interface ReadinessState {
  ready: boolean;
  detail?: Record<string, unknown>;
}

/** Status callback of {@link startObservability}: called on every `/health` and `/ready` request. */
export interface NodeStatus {
  /** False when the node is wedged and should be restarted (e.g. its transport died). */
  live: boolean;
  /** True once the node can do its job (trainer: listening with enough learners; learner: registered). */
  ready: boolean;
  detail?: Record<string, unknown>;
}

/** An endpoint's config, as in the node config's `metrics` / `health` sections. */
export interface EndpointConfig {
  enabled: boolean;
  /** Default `0.0.0.0`. */
  host?: string;
  /** 0 picks a free port (tests); the bound one is on the returned server. */
  port: number;
}

/** Options of {@link startObservability}. */
export interface ObservabilityOptions {
  metrics?: EndpointConfig;
  health?: EndpointConfig;
  nodeMetrics?: NodeMetrics;
  status: () => NodeStatus;
  logger?: Logger;
}

/** Running endpoints; ports are the bound ones (useful with port 0). */
export interface ObservabilityServer {
  readonly metricsPort?: number;
  readonly healthPort?: number;
  close(): Promise<void>;
}

type Route = '/metrics' | '/health' | '/ready';

/**
 * Starts the enabled endpoints. Metrics and health on the same host and port (0 included) share
 * one server; otherwise `/metrics` is served only on the metrics port and `/health`, `/ready`
 * only on the health port. Anything else is 404, methods other than GET/HEAD 405.
 *
 * @throws Error naming the endpoint, host and port when a port cannot be bound; servers already
 *   started by this call are closed first.
 */
export async function startObservability(options: ObservabilityOptions): Promise<ObservabilityServer> {
  const logger = options.logger ?? silentLogger;
  const metrics = options.metrics?.enabled ? options.metrics : undefined;
  const health = options.health?.enabled ? options.health : undefined;
  if (metrics && !options.nodeMetrics) {
    throw new Error('metrics.enabled is true but no nodeMetrics were given to startObservability');
  }
  for (const [name, cfg] of [['metrics', metrics], ['health', health]] as const) {
    if (cfg && (!Number.isInteger(cfg.port) || cfg.port < 0 || cfg.port > 65535)) {
      throw new Error(`${name}.port: ${JSON.stringify(cfg.port)} is not a TCP port; expected an integer 0..65535`);
    }
  }
  const host = (cfg: EndpointConfig): string => cfg.host ?? '0.0.0.0';
  const shared = metrics && health && metrics.port === health.port && host(metrics) === host(health);

  const servers: Server[] = [];
  const closeAll = async (): Promise<void> => {
    await Promise.all(servers.map((s) => closeServer(s)));
  };
  let metricsPort: number | undefined;
  let healthPort: number | undefined;
  try {
    if (shared) {
      const port = await listen(servers, ['/metrics', '/health', '/ready'], metrics, 'metrics and health', options, logger);
      metricsPort = port;
      healthPort = port;
    } else {
      if (metrics) metricsPort = await listen(servers, ['/metrics'], metrics, 'metrics', options, logger);
      if (health) healthPort = await listen(servers, ['/health', '/ready'], health, 'health', options, logger);
    }
  } catch (err) {
    await closeAll();
    throw err;
  }
  let closing: Promise<void> | undefined;
  return {
    metricsPort,
    healthPort,
    close: () => (closing ??= closeAll()),
  };
}

async function listen(
  servers: Server[],
  routes: readonly Route[],
  cfg: EndpointConfig,
  name: string,
  options: ObservabilityOptions,
  logger: Logger,
): Promise<number> {
  const server = createServer((req, res) => {
    handle(req, res, routes, options, logger).catch((err: unknown) => {
      logger.error('observability request failed', { url: req.url, error: String(err) });
      if (!res.headersSent) send(res, 500, 'text/plain; charset=utf-8', `internal error: ${String(err)}\n`, req.method);
      else res.end();
    });
  });
  const host = cfg.host ?? '0.0.0.0';
  await new Promise<void>((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException): void => {
      reject(new Error(`${name} endpoint cannot listen on ${host}:${cfg.port}: ${err.code ?? err.message}`));
    };
    server.once('error', onError);
    server.listen(cfg.port, host, () => {
      server.off('error', onError);
      resolve();
    });
  });
  servers.push(server);
  server.on('error', (err) => logger.error(`${name} endpoint error`, { error: String(err) }));
  const port = (server.address() as AddressInfo).port;
  // The default host is every interface (so probes and scrapers in other pods reach it); say so.
  const everywhere = host === '0.0.0.0' || host === '::' || host === '[::]';
  const scope = everywhere ? ` on all interfaces (${host}:${port}); set ${name === 'metrics and health' ? 'metrics.host and health.host' : `${name}.host`}: 127.0.0.1 to keep it on this machine` : '';
  logger.info(`${name} endpoint listening${scope}`, { host, port, routes: routes.join(',') });
  return port;
}

async function handle(
  req: IncomingMessage,
  res: ServerResponse,
  routes: readonly Route[],
  options: ObservabilityOptions,
  logger: Logger,
): Promise<void> {
  const path = (req.url ?? '/').split('?')[0] as Route;
  if (!routes.includes(path)) {
    send(res, 404, 'application/json', JSON.stringify({ error: 'not found', routes }), req.method);
    return;
  }
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.setHeader('Allow', 'GET, HEAD');
    send(res, 405, 'application/json', JSON.stringify({ error: `method ${req.method} not allowed` }), req.method);
    return;
  }
  if (path === '/metrics') {
    const text = await (options.nodeMetrics as NodeMetrics).render();
    send(res, 200, METRICS_CONTENT_TYPE, text, req.method);
    return;
  }
  const status = options.status();
  const uptime_s = Math.round(process.uptime() * 10) / 10;
  if (path === '/health') {
    const body = status.live
      ? { status: 'ok', live: true, ready: status.ready, uptime_s }
      : { status: 'unhealthy', live: false, ready: status.ready, uptime_s, detail: status.detail };
    send(res, status.live ? 200 : 503, 'application/json', JSON.stringify(body), req.method);
  } else {
    const body = { status: status.ready ? 'ready' : 'not_ready', ready: status.ready, detail: status.detail ?? {} };
    send(res, status.ready ? 200 : 503, 'application/json', JSON.stringify(body), req.method);
  }
  logger.debug('observability request', { path, live: status.live, ready: status.ready });
}

function send(res: ServerResponse, code: number, type: string, body: string, method?: string): void {
  res.statusCode = code;
  res.setHeader('Content-Type', type);
  res.setHeader('Cache-Control', 'no-store');
  res.setHeader('Content-Length', Buffer.byteLength(body));
  res.end(method === 'HEAD' ? undefined : body);
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    // Prometheus scrapers keep connections alive; without this, close() waits for them to time out.
    server.closeAllConnections();
  });
}
