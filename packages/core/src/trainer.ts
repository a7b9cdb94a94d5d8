/**
 * The server side of a federation. The round loop lives here once; algorithms change what a
 * round asks of learners and how updates merge through the Aggregator they plug in.
 */
import type { Aggregator, ClientUpdate, LearnerInstructions, RoundContext, TensorSpec } from '@oiafed/aggregators';
import { setMaxListeners } from 'node:events';
import { createRng } from '@oiafed/datasets';
import type { ArrayDataset } from '@oiafed/datasets';
import type { FedModel } from '@oiafed/models';
import type { NodeMetrics, RunHistory } from '@oiafed/tracker';
import type { PeerInfo, Transport } from '@oiafed/transport';
import type { RoundControl, RoundRecord, TrainerCallback } from './callbacks.js';
import { errorMessage, silentLogger, type Logger } from './logger.js';
import {
  LearnerMethods,
  RegistrationKeys,
  type EvaluateResponseBody,
  type ModelSpecBody,
  type TrainRequestBody,
  type TrainResponseBody,
} from './protocol.js';
import { decodeUpdateWeights } from './compression.js';
import { extrasToTensors, tensorsToExtras, tensorsToWeights, weightsToTensors } from './serde.js';

export interface TrainerSettings {
  maxRounds: number;
  localEpochs: number;
  clientFraction: number;
  minClients: number;
  /** Learners that must be registered before round 1 (defaults to minClients). */
  minAvailableClients?: number;
  evalEvery: number;
  roundTimeoutS: number;
  registrationTimeoutS: number;
  /** Asked of every learner: how to compress its update (transport.update_compression). */
  updateCompression?: { type: 'none' | 'float16' | 'int8' | 'topk'; topk_ratio?: number };
  /** Upper bound accepted for a learner's reported sample count; protects weighting from lies. */
  maxSamplesPerUpdate?: number;
}

export interface TrainerOptions {
  nodeId: string;
  transport: Transport;
  /** Holds the initial global weights and evaluates the global model on `testData`. */
  model: FedModel;
  /** Registry entry of `model`, sent to learners that have no model section of their own. */
  modelSpec: ModelSpecBody;
  aggregator: Aggregator;
  settings: TrainerSettings;
  seed: number;
  testData?: ArrayDataset;
  evalBatchSize?: number;
  logger?: Logger;
  metrics?: NodeMetrics;
  history?: RunHistory;
  callbacks?: TrainerCallback[];
  /** Receives the one human line per round and the final summary (stdout in the apps). */
  report?: (line: string) => void;
  signal?: AbortSignal;
  /** Resume point: weights and the round they belong to. */
  initialWeights?: Float32Array;
  startRound?: number;
  /** Called after each round with everything needed to resume (checkpointing lives outside). */
  onRoundComplete?: (state: { round: number; weights: Float32Array }) => void | Promise<void>;
}

export interface TrainingSummary {
  rounds: RoundRecord[];
  finalAccuracy?: number;
  finalLoss?: number;
  stoppedBy: 'max_rounds' | 'callback' | 'aborted';
  stopReason?: string;
  seconds: number;
  weights: Float32Array;
}

const CONSUMED = new Float32Array(0);

interface CollectedUpdate {
  update: ClientUpdate;
  trainSeconds: number;
  samplesPerSecond: number;
  trainLoss: number;
  trainAccuracy: number;
}

export class Trainer {
  private readonly logger: Logger;
  private readonly layout: readonly TensorSpec[];
  private global: Float32Array;
  private stopReason: string | undefined;

  constructor(private readonly options: TrainerOptions) {
    this.logger = options.logger ?? silentLogger;
    this.layout = options.model.layout;
    this.global = options.initialWeights ?? options.model.getWeights();
    if (this.global.length !== options.model.numParams) {
      throw new Error(`initial weights have ${this.global.length} values, the model has ${options.model.numParams}`);
    }
  }

  /** The current global weights (a copy). */
  globalWeights(): Float32Array {
    return this.global.slice();
  }

  learners(): PeerInfo[] {
    return this.options.transport.peers().filter((peer) => peer.role === 'learner');
  }

  async run(): Promise<TrainingSummary> {
    const { settings, callbacks = [] } = this.options;
    const started = performance.now();
    const startRound = this.options.startRound ?? 1;
    const history: RoundRecord[] = [];
    await this.waitForLearners(settings.minAvailableClients ?? settings.minClients);
    this.checkCapabilities(startRound);
    for (const callback of callbacks) await callback.onTrainStart?.({ maxRounds: settings.maxRounds, startRound });

    let stoppedBy: TrainingSummary['stoppedBy'] = 'max_rounds';
    for (let round = startRound; round <= settings.maxRounds; round++) {
      if (this.options.signal?.aborted) {
        stoppedBy = 'aborted';
        break;
      }
      // A learner may have dropped since the last round: give it the registration window to come back.
      await this.waitForLearners(settings.minClients, { throwOnTimeout: false });
      for (const callback of callbacks) await callback.onRoundStart?.(round);
      const record = await this.runRound(round);
      if (!record) {
        stoppedBy = 'aborted';
        this.logger.warn(`round ${round} abandoned: stop requested; the global model stays at round ${round - 1}`);
        break;
      }
      history.push(record);
      this.options.history?.append(record as unknown as Parameters<RunHistory['append']>[0]);
      this.options.report?.(formatRoundLine(record, settings.maxRounds));
      const control: RoundControl = {
        stop: (reason) => {
          this.stopReason ??= reason;
        },
        globalWeights: () => this.global,
        layout: this.layout,
      };
      for (const callback of callbacks) await callback.onRoundEnd?.(record, control);
      await this.options.onRoundComplete?.({ round, weights: this.global });
      if (this.stopReason) {
        stoppedBy = 'callback';
        this.logger.info(`stopping early: ${this.stopReason}`);
        break;
      }
    }
    for (const callback of callbacks) await callback.onTrainEnd?.(history);
    const evaluated = history.filter((r) => r.accuracy !== undefined);
    const last = evaluated[evaluated.length - 1];
    const summary: TrainingSummary = {
      rounds: history,
      finalAccuracy: last?.accuracy,
      finalLoss: last?.loss,
      stoppedBy,
      stopReason: this.stopReason,
      seconds: (performance.now() - started) / 1000,
      weights: this.global,
    };
    this.options.report?.(formatSummary(summary));
    return summary;
  }

  /** Asks every registered learner to exit; failures are logged, not thrown. */
  async shutdownLearners(reason: string): Promise<void> {
    await Promise.all(
      this.learners().map((peer) =>
        this.options.transport
          .notify(peer.nodeId, LearnerMethods.shutdown, { body: { reason } })
          .catch((error) => this.logger.debug(`shutdown notice to ${peer.nodeId} failed: ${errorMessage(error)}`)),
      ),
    );
  }

  private async waitForLearners(needed: number, options: { throwOnTimeout?: boolean } = {}): Promise<void> {
    const timeoutMs = this.options.settings.registrationTimeoutS * 1000;
    const deadline = Date.now() + timeoutMs;
    let lastLog = 0;
    while (this.learners().length < needed) {
      if (this.options.signal?.aborted) throw new Error('aborted while waiting for learners');
      const now = Date.now();
      if (now >= deadline) {
        if (options.throwOnTimeout === false) {
          this.logger.warn(
            `only ${this.learners().length} of min_clients=${needed} learners after waiting ${this.options.settings.registrationTimeoutS}s; ` +
              'running the round with them (it aggregates only if enough updates arrive)',
          );
          return;
        }
        throw new Error(
          `only ${this.learners().length} of ${needed} learners registered within ${this.options.settings.registrationTimeoutS}s ` +
            '(check that learners can reach this trainer: connect_to, ports, auth token)',
        );
      }
      if (now - lastLog >= 5000) {
        lastLog = now;
        this.logger.info(`waiting for learners: ${this.learners().length}/${needed} registered`, {
          registered: this.learners().map((p) => p.nodeId),
        });
      }
      await waitForPeerChange(this.options.transport, Math.min(1000, deadline - now));
    }
    this.options.metrics?.learnersRegistered.set(this.learners().length);
  }

  /** Fails fast when the algorithm needs learner behaviour a registered learner does not offer. */
  private checkCapabilities(round: number): void {
    const plan = this.options.aggregator.configureRound(this.roundContext(round, this.learners().map((p) => p.nodeId)));
    for (const peer of this.learners()) {
      const missing = missingCapabilities(plan.instructions, peer);
      if (missing.length > 0) {
        throw new Error(
          `aggregator "${this.options.aggregator.type}" needs learner support for ${missing.join(', ')}, ` +
            `but learner "${peer.nodeId}" (type ${peer.metadata[RegistrationKeys.learnerType] ?? 'unknown'}) ` +
            `offers only [${capabilitiesOf(peer).join(', ')}]`,
        );
      }
    }
  }

  private roundContext(round: number, selected: string[]): RoundContext {
    return {
      round,
      global: this.global,
      layout: this.layout,
      totalClients: Math.max(1, this.learners().length),
      selectedClients: selected,
    };
  }

  private selectLearners(round: number): string[] {
    const { clientFraction, minClients } = this.options.settings;
    const available = this.learners()
      .map((peer) => peer.nodeId)
      .sort();
    const wanted = Math.min(available.length, Math.max(minClients, Math.ceil(clientFraction * available.length)));
    // Seeded per round so a resumed run samples the same learners as an uninterrupted one.
    const rng = createRng(this.options.seed * 1_000_003 + round);
    for (let i = available.length - 1; i > 0; i--) {
      const j = rng.nextInt(i + 1);
      [available[i], available[j]] = [available[j]!, available[i]!];
    }
    return available.slice(0, wanted).sort();
  }

  /** One round; undefined when the signal aborted it (its partial updates are discarded). */
  private async runRound(round: number): Promise<RoundRecord | undefined> {
    const { transport, aggregator, settings, metrics } = this.options;
    const started = performance.now();
    const statsBefore = transport.stats();
    const selected = this.selectLearners(round);
    metrics?.currentRound.set(round);
    metrics?.learnersParticipating.set(selected.length);
    const ctx = this.roundContext(round, selected);
    const plan = aggregator.configureRound(ctx);
    const request: TrainRequestBody = {
      round,
      model: this.options.modelSpec,
      config: { local_epochs: settings.localEpochs, update_compression: settings.updateCompression },
      instructions: plan.instructions,
    };
    const tensors = [...weightsToTensors(this.global, this.layout), ...extrasToTensors(plan.tensors)];
    const accumulator = aggregator.createAccumulator?.(ctx);
    const collected: CollectedUpdate[] = [];
    const failed: RoundRecord['failed'] = [];
    const deadline = Date.now() + settings.roundTimeoutS * 1000;
    // One listener per in-flight call: a round's own signal, so hundreds of learners do not trip
    // Node's MaxListeners warning on the caller's signal.
    const roundAbort = new AbortController();
    setMaxListeners(selected.length + 10, roundAbort.signal);
    const forwardAbort = () => roundAbort.abort(this.options.signal?.reason);
    if (this.options.signal?.aborted) forwardAbort();
    this.options.signal?.addEventListener('abort', forwardAbort, { once: true });

    await Promise.all(
      selected.map(async (learner) => {
        try {
          const reply = await transport.call(learner, LearnerMethods.train, { body: request, tensors }, {
            timeoutMs: Math.max(1, deadline - Date.now()),
            signal: roundAbort.signal,
          });
          const item = this.decodeUpdate(learner, round, reply.body, reply.tensors);
          if (accumulator) {
            accumulator.add(item.update);
            // Streaming rules have consumed the vectors: keep only the bookkeeping, so the trainer
            // holds O(model) memory during a round instead of O(learners x model).
            collected.push({ ...item, update: { ...item.update, weights: CONSUMED, extras: undefined } });
          } else {
            collected.push(item);
          }
          metrics?.updatesAccepted.inc();
          metrics?.localTrainSeconds.observe({ learner }, item.trainSeconds);
          metrics?.localSamplesPerSecond.set({ learner }, item.samplesPerSecond);
        } catch (error) {
          const reason = errorMessage(error);
          failed.push({ learner, reason });
          metrics?.updatesRejected.inc({ reason: rejectionLabel(error) });
          this.logger.warn(`round ${round}: no usable update from ${learner}: ${reason}`);
        }
      }),
    );

    this.options.signal?.removeEventListener('abort', forwardAbort);
    if (this.options.signal?.aborted) return undefined;
    const aggregated = collected.length >= settings.minClients && collected.length > 0;
    if (aggregated) {
      const result = accumulator
        ? accumulator.finish()
        : aggregator.aggregate(ctx, collected.map((c) => c.update));
      this.global = result.weights;
    } else {
      this.logger.warn(
        `round ${round}: ${collected.length} usable updates, fewer than min_clients=${settings.minClients}; global model unchanged`,
      );
    }

    const evaluation = await this.evaluate(round, collected.map((c) => c.update.clientId));
    const statsAfter = transport.stats();
    const weightOf = (c: CollectedUpdate) => c.update.numSamples;
    const totalSamples = collected.reduce((sum, c) => sum + weightOf(c), 0);
    const weightedMean = (pick: (c: CollectedUpdate) => number) =>
      totalSamples > 0 ? collected.reduce((sum, c) => sum + pick(c) * weightOf(c), 0) / totalSamples : undefined;
    const record: RoundRecord = {
      round,
      timestamp: new Date().toISOString(),
      selected: selected.length,
      participants: collected.length,
      failed,
      accuracy: evaluation?.accuracy,
      loss: evaluation?.loss,
      eval_source: evaluation?.source,
      train_loss: weightedMean((c) => c.trainLoss),
      train_accuracy: weightedMean((c) => c.trainAccuracy),
      duration_s: (performance.now() - started) / 1000,
      slowest_train_s: Math.max(0, ...collected.map((c) => c.trainSeconds)),
      bytes_sent: statsAfter.bytesSent - statsBefore.bytesSent,
      bytes_received: statsAfter.bytesReceived - statsBefore.bytesReceived,
      aggregated,
    };
    if (metrics) {
      metrics.roundsCompleted.inc();
      metrics.roundDuration.observe(record.duration_s);
      metrics.bytesSent.inc(record.bytes_sent);
      metrics.bytesReceived.inc(record.bytes_received);
      if (record.accuracy !== undefined) metrics.globalAccuracy.set(record.accuracy);
      if (record.loss !== undefined) metrics.globalLoss.set(record.loss);
    }
    return record;
  }

  private decodeUpdate(
    learner: string,
    round: number,
    body: unknown,
    tensors: Parameters<typeof tensorsToWeights>[0],
  ): CollectedUpdate {
    const reply = body as Partial<TrainResponseBody> | undefined;
    if (!reply || typeof reply !== 'object') throw new Error('reply has no body');
    if (reply.round !== round) throw new Error(`reply is for round ${String(reply.round)}, expected ${round}`);
    const numSamples = reply.num_samples;
    const maxSamples = this.options.settings.maxSamplesPerUpdate ?? 1e9;
    if (typeof numSamples !== 'number' || !Number.isInteger(numSamples) || numSamples <= 0 || numSamples > maxSamples) {
      throw new Error(`num_samples must be an integer in 1..${maxSamples}, got ${JSON.stringify(numSamples)}`);
    }
    // Plain weights, or global + delta when the learner compresses its update (compression.ts).
    const weights = decodeUpdateWeights(tensors, this.layout, this.global);
    const extras = tensorsToExtras(tensors, weights.length);
    const metrics = reply.metrics ?? { loss: NaN, accuracy: NaN, seconds: 0, samples_per_second: 0 };
    const localSteps = typeof reply.local_steps === 'number' ? reply.local_steps : undefined;
    return {
      update: {
        clientId: learner,
        weights,
        numSamples,
        localSteps,
        extras,
        meta: reply.meta ?? {},
        metrics: { loss: metrics.loss, accuracy: metrics.accuracy },
      },
      trainSeconds: Number(metrics.seconds) || 0,
      samplesPerSecond: Number(metrics.samples_per_second) || 0,
      trainLoss: Number(metrics.loss),
      trainAccuracy: Number(metrics.accuracy),
    };
  }

  private async evaluate(
    round: number,
    participants: string[],
  ): Promise<{ accuracy: number; loss: number; source: 'trainer' | 'learners' } | undefined> {
    const { evalEvery, maxRounds } = this.options.settings;
    const due = evalEvery > 0 && (round % evalEvery === 0 || round === maxRounds);
    if (!due) return undefined;
    const { testData, model } = this.options;
    if (testData && testData.length > 0) {
      model.setWeights(this.global);
      const result = await model.evaluate(testData, { batchSize: this.options.evalBatchSize ?? 256 });
      return { accuracy: result.accuracy, loss: result.loss, source: 'trainer' };
    }
    return this.federatedEvaluate(round, participants);
  }

  /** Without a test split on the trainer, learners evaluate the new global model on their own data. */
  private async federatedEvaluate(
    round: number,
    participants: string[],
  ): Promise<{ accuracy: number; loss: number; source: 'learners' } | undefined> {
    const tensors = weightsToTensors(this.global, this.layout);
    const results = await Promise.all(
      participants.map(async (learner) => {
        try {
          const reply = await this.options.transport.call(learner, LearnerMethods.evaluate, { body: { round, model: this.options.modelSpec }, tensors }, {
            timeoutMs: this.options.settings.roundTimeoutS * 1000,
          });
          const body = reply.body as EvaluateResponseBody;
          return body.num_samples > 0 && Number.isFinite(body.accuracy) ? body : undefined;
        } catch (error) {
          this.logger.warn(`round ${round}: evaluation on ${learner} failed: ${errorMessage(error)}`);
          return undefined;
        }
      }),
    );
    const ok = results.filter((r): r is EvaluateResponseBody => r !== undefined);
    const total = ok.reduce((sum, r) => sum + r.num_samples, 0);
    if (total === 0) return undefined;
    return {
      accuracy: ok.reduce((sum, r) => sum + r.accuracy * r.num_samples, 0) / total,
      loss: ok.reduce((sum, r) => sum + r.loss * r.num_samples, 0) / total,
      source: 'learners',
    };
  }
}

function capabilitiesOf(peer: PeerInfo): string[] {
  const raw = peer.metadata[RegistrationKeys.capabilities];
  return raw ? raw.split(',').filter(Boolean) : [];
}

function missingCapabilities(instructions: LearnerInstructions, peer: PeerInfo): string[] {
  const offered = new Set(capabilitiesOf(peer));
  return Object.entries(instructions)
    .filter(([, value]) => value !== undefined && value !== false && value !== 0)
    .map(([key]) => key)
    .filter((key) => !offered.has(key));
}

function rejectionLabel(error: unknown): string {
  const code = (error as { code?: unknown })?.code;
  if (typeof code === 'string') return code.toLowerCase();
  return 'invalid_update';
}

function waitForPeerChange(transport: Transport, ms: number): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, Math.max(0, ms));
    const unsubscribe = transport.on('peer-joined', done);
    function done() {
      clearTimeout(timer);
      unsubscribe();
      resolve();
    }
  });
}

function percent(value: number | undefined): string {
  return value === undefined ? '   -  ' : `${(value * 100).toFixed(2).padStart(6)}%`;
}

export function formatRoundLine(record: RoundRecord, maxRounds: number): string {
  const width = String(maxRounds).length;
  const loss = record.loss === undefined ? '   -   ' : record.loss.toFixed(4).padStart(7);
  const failed = record.failed.length > 0 ? `  failed=${record.failed.map((f) => f.learner).join(',')}` : '';
  return (
    `round ${String(record.round).padStart(width)}/${maxRounds}  learners ${record.participants}/${record.selected}` +
    `  accuracy ${percent(record.accuracy)}  loss ${loss}  ${record.duration_s.toFixed(2)}s${failed}`
  );
}

export function formatSummary(summary: TrainingSummary): string {
  const rounds = summary.rounds.length;
  const accuracy = summary.finalAccuracy === undefined ? 'n/a' : `${(summary.finalAccuracy * 100).toFixed(2)}%`;
  const loss = summary.finalLoss === undefined ? 'n/a' : summary.finalLoss.toFixed(4);
  const why = summary.stoppedBy === 'callback' ? ` (stopped early: ${summary.stopReason})` : summary.stoppedBy === 'aborted' ? ' (aborted)' : '';
  return `done: ${rounds} rounds in ${summary.seconds.toFixed(1)}s, final accuracy ${accuracy}, loss ${loss}${why}`;
}
