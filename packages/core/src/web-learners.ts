/**
 * Browser learners on the trainer (issue 17 §2): with `transport.web.enabled`, learners join over
 * WebSocket at `transport.web.path` on the dashboard's HTTP server (GrpcTransport.acceptWebSockets:
 * the Connect stream's frames, so the round loop cannot tell them from gRPC learners), and the
 * dashboard serves the `/join` page (@oiafed/web-learner's bundle) and, with
 * `dashboard.serve_partitions`, the trainer's dataset partitions for demos and tests.
 */
import { existsSync, readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { DatasetConfig, NodeConfig } from '@oiafed/config';
import type { DashboardServer } from '@oiafed/dashboard';
import { loadPartition } from '@oiafed/datasets';
import { GrpcTransport, type Transport } from '@oiafed/transport';
import { DEFAULT_NUM_PARTITIONS } from './derive.js';
import { errorMessage, type Logger } from './logger.js';

/** Files of the web-learner bundle the /join page loads (built by `npm run build`). */
const PAGE_FILES: Record<string, string> = {
  'join.js': 'text/javascript; charset=utf-8',
  'assets/tfjs-backend-wasm.wasm': 'application/wasm',
  'assets/tfjs-backend-wasm-simd.wasm': 'application/wasm',
  'assets/tfjs-backend-wasm-threaded-simd.wasm': 'application/wasm',
};

/** Where @oiafed/web-learner's browser bundle lies (dist/browser), or why it cannot be used. */
export function webLearnerBundleDir(): { dir: string } | { missing: string } {
  let pkg: string;
  try {
    pkg = createRequire(import.meta.url).resolve('@oiafed/web-learner/package.json');
  } catch {
    return { missing: '@oiafed/web-learner is not installed' };
  }
  const dir = join(dirname(pkg), 'dist', 'browser');
  return existsSync(join(dir, 'join.js')) ? { dir } : { missing: `${dir}/join.js is missing (run npm run build)` };
}

// The page runs only its own script (and tfjs's wasm); it talks only to this server (fetch, WebSocket, events).
const JOIN_CSP = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; style-src 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'self'";

function send(res: ServerResponse, status: number, type: string, body: string | Buffer): void {
  const csp = type.startsWith('text/html') ? { 'content-security-policy': JOIN_CSP } : {};
  res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store', 'x-content-type-options': 'nosniff', ...csp });
  res.end(body);
}

/** The page, with the dashboard token (when the request carried one) passed on to its script. */
function joinHtml(html: string, req: IncomingMessage): string {
  const token = new URL(req.url ?? '/', 'http://trainer.invalid').searchParams.get('token');
  return token ? html.replace('src="join.js"', `src="join.js?token=${encodeURIComponent(token)}"`) : html;
}

/** What the page reads at /join/config.json. */
function joinConfig(config: NodeConfig, partitions: number): object {
  const a = config.learner.args;
  return {
    ws_path: config.transport.web!.path,
    auth_required: config.transport.grpc.auth_token !== undefined || config.transport.grpc.auth_tokens !== undefined,
    partitions,
    model: { type: config.model?.type ?? '', args: { seed: config.seed, ...(config.model?.args ?? {}) } },
    learner: { batch_size: a.batch_size, lr: a.lr, optimizer: a.optimizer, momentum: a.momentum, weight_decay: a.weight_decay },
    events_path: '/events',
  };
}

/**
 * Encodes a partition for the page (decodePartition in @oiafed/web-learner): u32 LE header
 * length, JSON header, zero padding to 4 bytes, float32 features, int32 labels.
 */
export function encodePartition(
  data: { features: Float32Array; labels: Int32Array; sampleShape: readonly number[]; numClasses: number; length: number },
  partition: number,
  numPartitions: number,
): Buffer {
  const header = Buffer.from(JSON.stringify({ length: data.length, sampleShape: data.sampleShape, numClasses: data.numClasses, partition, numPartitions }));
  const start = Math.ceil((4 + header.byteLength) / 4) * 4;
  const out = Buffer.alloc(start + data.features.byteLength + data.labels.byteLength);
  out.writeUInt32LE(header.byteLength, 0);
  header.copy(out, 4);
  Buffer.from(data.features.buffer, data.features.byteOffset, data.features.byteLength).copy(out, start);
  Buffer.from(data.labels.buffer, data.labels.byteOffset, data.labels.byteLength).copy(out, start + data.features.byteLength);
  return out;
}

/** The trainer's first train-split dataset, which learners partition (derive.ts does the same). */
function partitionedDataset(config: NodeConfig): { spec: DatasetConfig; count: number } | undefined {
  const spec = config.datasets.find((d) => d.split !== 'test');
  if (!spec) return undefined;
  return { spec, count: spec.partition?.num_partitions ?? DEFAULT_NUM_PARTITIONS };
}

function routePartitions(dashboard: DashboardServer, config: NodeConfig, logger: Logger): number {
  const found = partitionedDataset(config);
  if (!found) {
    logger.warn('dashboard.serve_partitions: the trainer config has no dataset to partition; none served');
    return 0;
  }
  const { spec, count } = found;
  const cache = new Map<number, Promise<Buffer>>();
  const load = (i: number) => {
    const partition = { strategy: spec.partition?.strategy ?? 'iid', ...(spec.partition?.config ? { config: spec.partition.config } : {}), num_partitions: count, partition_id: i };
    return loadPartition({ ...spec, split: 'train', partition } as DatasetConfig, { seed: config.seed, logger }).then((p) => {
      if (!p.train) throw new Error(`partition ${i} has no train split`);
      return encodePartition(p.train, i, count);
    });
  };
  for (let i = 0; i < count; i++) {
    dashboard.route(`/join/partition/${i}`, (_req, res) => {
      if (!cache.has(i)) cache.set(i, load(i));
      cache.get(i)!.then(
        (bytes) => send(res, 200, 'application/octet-stream', bytes),
        (error: unknown) => send(res, 500, 'text/plain; charset=utf-8', `partition ${i}: ${errorMessage(error)}\n`),
      );
    });
  }
  logger.info(`dashboard: serving ${count} partitions of dataset ${spec.type} at /join/partition/<0..${count - 1}> (dashboard.serve_partitions)`);
  return count;
}

function routeJoinPage(dashboard: DashboardServer, config: NodeConfig, dir: string, partitions: number): void {
  const html = readFileSync(join(dir, 'join.html'), 'utf8');
  const page = (req: IncomingMessage, res: ServerResponse) => send(res, 200, 'text/html; charset=utf-8', joinHtml(html, req));
  dashboard.route('/join', page);
  dashboard.route('/join/', page);
  const body = JSON.stringify(joinConfig(config, partitions));
  dashboard.route('/join/config.json', (_req, res) => send(res, 200, 'application/json', body));
  for (const [file, type] of Object.entries(PAGE_FILES)) {
    const path = join(dir, file);
    dashboard.route(`/join/${file}`, (_req, res) => send(res, 200, type, readFileSync(path)));
  }
}

/**
 * Accepts browser learners when `transport.web.enabled`: the WebSocket endpoint on the dashboard's
 * server, the /join page and (serve_partitions) the partitions. `transport` must be the trainer's
 * GrpcTransport itself (not a wrapper). Undefined when transport.web is off.
 */
export function attachWebLearners(config: NodeConfig, dashboard: DashboardServer | undefined, transport: Transport, logger: Logger): { close(): void } | undefined {
  const web = config.transport.web;
  if (!web?.enabled) return undefined;
  if (!dashboard) throw new Error("transport.web.enabled needs dashboard.enabled: browser learners join on the dashboard's HTTP server");
  if (!(transport instanceof GrpcTransport)) throw new Error('transport.web.enabled needs the gRPC transport (transport.mode grpc): browser learners join the listening trainer');
  const accepted = transport.acceptWebSockets(dashboard.server, web.path);
  const partitions = config.dashboard?.serve_partitions ? routePartitions(dashboard, config, logger) : 0;
  const bundle = webLearnerBundleDir();
  if ('dir' in bundle) routeJoinPage(dashboard, config, bundle.dir, partitions);
  else logger.warn(`dashboard: no /join page (${bundle.missing}); browser learners can still join at ${web.path}`);
  logger.info(`browser learners join over WebSocket at ${web.path}${'dir' in bundle ? '; page at /join' : ''}`);
  return accepted;
}
