/**
 * Feeds the trainer's live dashboard (@oiafed/dashboard) from a run: the run header, one `round`
 * event per finished round (the history record itself), and each learner's state as the trainer
 * sees it: registered when it joins (and idle between rounds), training while a train call to it
 * is out, uploading from the learner's notice that training is done (the train request asks for it
 * with `config.report_status`) until its update is in, lost when its stream closes or its
 * heartbeat stops.
 * Everything is observed from outside the round loop (a trainer callback plus a watching wrapper
 * around the transport), so the trainer does not know the dashboard exists.
 */
import type { NodeConfig } from '@oiafed/config';
import { startDashboard, type DashboardServer, type LearnerRow } from '@oiafed/dashboard';
import { readPem, type Payload, type PeerInfo, type Transport } from '@oiafed/transport';
import type { RoundRecord, TrainerCallback } from './callbacks.js';
import { errorMessage, type Logger } from './logger.js';
import { LearnerMethods, RegistrationKeys, TrainerMethods, type LearnerStatusBody, type TrainRequestBody } from './protocol.js';

/** The dashboard of one trainer run. */
export interface DashboardFeed {
  /** The HTTP server (other trainer parts add routes and upgrade handlers to it). */
  readonly server: DashboardServer;
  /** Add to the trainer's callbacks: run start, round progress and finished rounds. */
  readonly callback: TrainerCallback;
  /** The transport to give the trainer: the same one, with its learner calls watched. */
  observe(transport: Transport): Transport;
  /** Marks the run finished (with why it stopped before max_rounds, if it did), or failed with the error. */
  finish(error?: unknown, stopReason?: string): void;
  close(): Promise<void>;
}

/** What the run header shows besides the config. */
export interface DashboardRunInfo {
  runDir: string;
  aggregator: string;
  /** The trainer's Prometheus port, when metrics are enabled (linked from the page). */
  metricsPort?: number;
}

/** Starts the dashboard when `dashboard.enabled`; undefined otherwise. */
export async function startDashboardFeed(config: NodeConfig, info: DashboardRunInfo, logger: Logger): Promise<DashboardFeed | undefined> {
  const cfg = config.dashboard;
  if (!cfg?.enabled) return undefined;
  const server = await startDashboard({
    host: cfg.host,
    port: cfg.port,
    authToken: cfg.auth_token,
    tls: dashboardTls(config),
    runDir: info.runDir,
    links: info.metricsPort === undefined ? {} : { metrics_port: info.metricsPort },
    run: {
      exp_name: config.exp_name,
      model: config.model?.type ?? '',
      aggregator: info.aggregator,
      max_rounds: config.trainer.args.max_rounds,
      status: 'waiting',
    },
    logger,
  });
  const shownHost = cfg.host === '0.0.0.0' || cfg.host === '::' ? 'localhost' : cfg.host;
  const scheme = config.transport.grpc.tls ? 'https' : 'http';
  logger.info(`dashboard on ${scheme}://${shownHost.includes(':') ? `[${shownHost}]` : shownHost}:${server.port}/${cfg.auth_token ? '?token=<dashboard.auth_token>' : ''}`);
  return new Feed(server, config.heartbeat.enabled ? config.heartbeat.interval : 0);
}

/**
 * A trainer with TLS serves its dashboard (and the browser learners' WebSocket path on it) over
 * HTTPS with the same certificate, so the token and the updates never cross the network in clear.
 */
function dashboardTls(config: NodeConfig): { cert: Buffer; key: Buffer } | undefined {
  const tls = config.transport.grpc.tls;
  if (!tls) return undefined;
  const cert = readPem(tls.cert, 'cert');
  const key = readPem(tls.key, 'key');
  if (!cert || !key) throw new Error('dashboard: transport.grpc.tls needs cert and key on the trainer to serve the dashboard over HTTPS');
  return { cert, key };
}

class Feed implements DashboardFeed {
  /** Learner states as this feed last sent them (a late call failure must not undo `lost`). */
  private readonly states = new Map<string, LearnerRow['state']>();
  private readonly totals = new Map<string, { up: number; down: number; rejected: number }>();
  private progress: { round: number; selected: number; done: number; started_at: string } | undefined;
  private sweep?: NodeJS.Timeout;
  readonly callback: TrainerCallback;

  constructor(
    readonly server: DashboardServer,
    private readonly heartbeatIntervalS: number,
  ) {
    this.callback = {
      onTrainStart: () => server.setRun({ status: 'running' }),
      onRoundStart: (round) => this.setProgress({ round, selected: 0, done: 0, started_at: new Date().toISOString() }),
      onRoundEnd: (record) => this.roundEnded(record),
    };
  }

  observe(transport: Transport): Transport {
    transport.on('peer-joined', (peer) => this.joined(peer));
    transport.on('peer-left', (peer) => this.setState(peer.nodeId, 'lost'));
    transport.handle(TrainerMethods.learnerStatus, (payload, ctx) => {
      const body = payload.body as Partial<LearnerStatusBody> | undefined;
      // A learner moves only its own row, and only from training: a peer cannot repaint the table.
      if (body?.state === 'uploading' && this.states.get(ctx.source) === 'training') this.setState(ctx.source, 'uploading');
      return {};
    });
    for (const peer of transport.peers()) if (peer.role === 'learner') this.joined(peer);
    // While a learner stays registered its heartbeats arrive (the transport drops it otherwise):
    // refresh "last heartbeat" at the heartbeat period, at most every 2 s (one event per learner each time).
    if (this.heartbeatIntervalS > 0) {
      this.sweep = setInterval(() => this.markAlive(transport.peers()), Math.max(this.heartbeatIntervalS, 2) * 1000);
      this.sweep.unref();
    }
    const call = this.watchedCall(transport);
    return new Proxy(transport, {
      get: (target, prop) => {
        if (prop === 'call') return call;
        const value: unknown = Reflect.get(target, prop, target);
        return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
      },
    });
  }

  finish(error?: unknown, stopReason?: string): void {
    this.server.setRun(error === undefined ? { status: 'finished', stop_reason: stopReason } : { status: 'failed', error: errorMessage(error) });
    this.setProgress(undefined);
  }

  async close(): Promise<void> {
    if (this.sweep) clearInterval(this.sweep);
    await this.server.close();
  }

  /** `transport.call` that keeps each learner's state, bytes and round progress up to date. */
  private watchedCall(transport: Transport): Transport['call'] {
    return async (target, method, payload, options) => {
      const train = method === LearnerMethods.train;
      if (train) payload = askForStatus(payload);
      this.addBytes(target, 0, payloadBytes(payload));
      if (train) {
        this.setState(target, 'training');
        if (this.progress) this.setProgress({ ...this.progress, selected: this.progress.selected + 1 });
      }
      try {
        const reply = await transport.call(target, method, payload, options);
        this.addBytes(target, payloadBytes(reply), 0);
        if (train) this.trained(target, reply);
        return reply;
      } catch (error) {
        if (this.states.get(target) !== 'lost') this.setState(target, 'registered');
        throw error;
      } finally {
        if (train && this.progress) this.setProgress({ ...this.progress, done: this.progress.done + 1 });
      }
    };
  }

  /** The reply is in: the learner is idle again until the next round; its training time goes in the row. */
  private trained(id: string, reply: Payload): void {
    const seconds = (reply.body as { metrics?: { seconds?: unknown } } | undefined)?.metrics?.seconds;
    const row: Partial<LearnerRow> & { id: string } = { id, last_heartbeat: new Date().toISOString() };
    if (this.states.get(id) !== 'lost') row.state = 'registered';
    if (typeof seconds === 'number' && Number.isFinite(seconds)) row.last_round_s = seconds;
    this.send(row);
  }

  private joined(peer: PeerInfo): void {
    if (peer.role !== 'learner') return;
    const samples = Number(peer.metadata[RegistrationKeys.numSamples]);
    this.send({
      id: peer.nodeId,
      state: 'registered',
      backend: peer.metadata[RegistrationKeys.backend],
      samples: Number.isFinite(samples) ? samples : undefined,
      last_heartbeat: new Date(peer.connectedAt || Date.now()).toISOString(),
    });
  }

  private markAlive(peers: PeerInfo[]): void {
    const now = new Date().toISOString();
    for (const peer of peers) if (peer.role === 'learner' && this.states.get(peer.nodeId) !== 'lost') this.send({ id: peer.nodeId, last_heartbeat: now });
  }

  private roundEnded(record: RoundRecord): void {
    for (const { learner, reason } of record.failed) {
      const totals = this.totalsOf(learner);
      totals.rejected++;
      this.send({ id: learner, rejected: totals.rejected, last_rejection: `round ${record.round}: ${reason}` });
    }
    this.server.addRound(record);
    this.setProgress(undefined);
  }

  private addBytes(id: string, up: number, down: number): void {
    const totals = this.totalsOf(id);
    totals.up += up;
    totals.down += down;
    this.send({ id, bytes_up: totals.up, bytes_down: totals.down });
  }

  private totalsOf(id: string): { up: number; down: number; rejected: number } {
    let totals = this.totals.get(id);
    if (!totals) this.totals.set(id, (totals = { up: 0, down: 0, rejected: 0 }));
    return totals;
  }

  private setState(id: string, state: LearnerRow['state']): void {
    this.send({ id, state });
  }

  private send(row: Partial<LearnerRow> & { id: string }): void {
    if (row.state) this.states.set(row.id, row.state);
    this.server.updateLearner(row);
  }

  private setProgress(progress: Feed['progress']): void {
    this.progress = progress;
    this.server.setProgress(progress ?? null);
  }
}

/** The train request with `config.report_status` set, so the learner says when it starts sending its update. */
function askForStatus(payload: Payload): Payload {
  const body = payload.body as TrainRequestBody | undefined;
  if (!body || typeof body !== 'object') return payload;
  return { ...payload, body: { ...body, config: { ...body.config, report_status: true } } };
}

/** Bytes of a call's payload: tensor data plus the JSON body (what the update or model costs on the wire, before framing). */
function payloadBytes(payload: Payload | undefined): number {
  if (!payload) return 0;
  let bytes = payload.body === undefined ? 0 : JSON.stringify(payload.body).length;
  for (const t of payload.tensors ?? []) bytes += t.data.byteLength;
  return bytes;
}
