/**
 * The server side of a federation. The round loop lives here once; algorithms change what a
 * round asks of learners and how updates merge through the Aggregator they plug in.
 */
import type {
  Accumulator,
  Aggregator,
  AggregatorState,
  ClientUpdate,
  LearnerInstructions,
  RoundContext,
  RoundFailure,
  RoundPlan,
  TensorSpec,
} from '@oiafed/aggregators';
import { setMaxListeners } from 'node:events';
import { createRng } from '@oiafed/datasets';
import type { ArrayDataset } from '@oiafed/datasets';
import type { EvalResult, FedModel } from '@oiafed/models';
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
import { SECURE_AGGREGATION_CAPABILITY, type SecureAggregationSettings } from './secure-aggregation.js';
import { collectSecurely, type SecureRoundOutcome } from './secure-aggregation-trainer.js';
import { collectPersonalizedEvaluation, formatPersonalized, personalizedRecordFields, type PersonalizedAccuracy } from './personalized-eval.js';
import { privacyStopReason } from './local-dp.js';
import { PayloadMismatchError, extrasToTensors, tensorsToExtras, tensorsToWeights, weightsToTensors } from './serde.js';
import { announcedSampleCount, checkReplyScalars, clipUpdateNorm, firstNonFinite, type CheckedScalars } from './update-checks.js';

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
  /** `update_norm_clip`: caps the L2 norm of each update's delta (update - global); off when undefined. */
  updateNormClip?: number;
  /** `secure_aggregation`: rounds run SecAgg+ and the trainer sees only the sum (secure-aggregation-trainer.ts). */
  secureAggregation?: SecureAggregationSettings;
}

export interface TrainerOptions {
  nodeId: string;
  /**
   * Fold each round's updates in learner-id order instead of arrival order (an update that
   * arrives early is held until those before it are in), so the aggregate does not depend on
   * which learner finished first. Serial mode's learner pool sets it; off by default because the
   * held updates cost memory that streaming aggregation otherwise avoids.
   */
  foldInLearnerOrder?: boolean;
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
  /** Threads the global model's evaluation uses (data-parallel on the wasm backend); default 1. */
  evalThreads?: number;
  /** Evaluates the global model instead of `model.evaluate` (serial mode's learner pool: on its workers). */
  evaluator?: { evaluate(model: FedModel, data: ArrayDataset, options: { batchSize: number }): Promise<EvalResult> };
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
  /** Learners' personalized accuracy (weighted mean) at the last round that had one. */
  finalPersonalizedAccuracy?: number;
  stoppedBy: 'max_rounds' | 'callback' | 'aborted';
  stopReason?: string;
  seconds: number;
  weights: Float32Array;
}

const CONSUMED = new Float32Array(0);

/**
 * Hands items to `fold` in the order of `ids`, whatever order they arrive in: `put` an item or
 * `skip` an id (no item will come); everything ready at the front of the order is folded at once.
 * Without `ids`, in arrival order.
 */
function inSelectionOrder<T>(ids: readonly string[] | undefined, fold: (item: T) => void): { put(id: string, item: T): void; skip(id: string): void } {
  if (ids === undefined) return { put: (_id, item) => fold(item), skip: () => undefined };
  const waiting = new Map<string, T | undefined>();
  let next = 0;
  const flush = (): void => {
    while (next < ids.length && waiting.has(ids[next]!)) {
      const item = waiting.get(ids[next]!);
      waiting.delete(ids[next]!);
      next++;
      if (item !== undefined) fold(item);
    }
  };
  return {
    put(id, item) {
      waiting.set(id, item);
      flush();
    },
    skip(id) {
      waiting.set(id, undefined);
      flush();
    },
  };
}

interface CollectedUpdate {
  update: ClientUpdate;
  trainSeconds: number;
  samplesPerSecond: number;
  trainLoss: number;
  trainAccuracy: number;
}

/** What broadcast-and-collect gathered in one round. */
interface RoundOutcome {
  /** The rule's streaming accumulator, when it has one (updates are already folded into it). */
  accumulator: Accumulator | undefined;
  /** Usable updates (with the vectors dropped once an accumulator consumed them). */
  collected: CollectedUpdate[];
  /** Selected learners whose update did not come or was refused, and why. */
  failed: RoundRecord['failed'];
  fold: { put(id: string, item: CollectedUpdate): void; skip(id: string): void };
}

export class Trainer {
  private readonly logger: Logger;
  private readonly layout: readonly TensorSpec[];
  private global: Float32Array;
  private stopReason: string | undefined;
  /** Capabilities the algorithm asks of learners (keys of its round instructions). */
  private required: string[] = [];
  /** The rule's metrics of the last successful aggregation (e.g. `dp_epsilon` from central DP). */
  private aggregateMetrics: Record<string, number> | undefined;
  /** Learners already refused for missing capabilities (logged once each). */
  private readonly refused = new Set<string>();
  /**
   * The first round's plan, asked before learners register (its instructions decide which
   * learners are capable); that round uses it, so configureRound runs once per round.
   */
  private firstPlan: { round: number; plan: RoundPlan } | undefined;

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

  /**
   * Registered learners that can serve the algorithm. A peer lacking a capability the rule needs
   * is left out (logged once and told to stop) instead of stopping the federation.
   */
  learners(): PeerInfo[] {
    return this.options.transport.peers().filter((peer) => peer.role === 'learner' && this.isCapable(peer));
  }

  async run(): Promise<TrainingSummary> {
    const { settings, callbacks = [] } = this.options;
    const started = performance.now();
    const startRound = this.options.startRound ?? 1;
    const history: RoundRecord[] = [];
    const firstPlan = this.options.aggregator.configureRound(this.roundContext(startRound, []));
    this.firstPlan = { round: startRound, plan: firstPlan };
    this.required = requiredCapabilities(firstPlan);
    // Learners that cannot run SecAgg+ are refused at registration, before round 1.
    if (settings.secureAggregation) this.required.push(SECURE_AGGREGATION_CAPABILITY);
    let stoppedBy: TrainingSummary['stoppedBy'] = 'aborted';
    if (await this.waitForLearners(settings.minAvailableClients ?? settings.minClients)) {
      for (const callback of callbacks) await callback.onTrainStart?.({ maxRounds: settings.maxRounds, startRound });
      stoppedBy = await this.runRounds(startRound, history);
      for (const callback of callbacks) await callback.onTrainEnd?.(history);
    }
    const evaluated = history.filter((r) => r.accuracy !== undefined);
    const last = evaluated[evaluated.length - 1];
    const summary: TrainingSummary = {
      rounds: history,
      finalAccuracy: last?.accuracy,
      finalLoss: last?.loss,
      finalPersonalizedAccuracy: history.filter((r) => r.personalized_accuracy !== undefined).pop()?.personalized_accuracy,
      stoppedBy,
      stopReason: this.stopReason,
      seconds: (performance.now() - started) / 1000,
      weights: this.global,
    };
    this.options.report?.(formatSummary(summary));
    return summary;
  }

  /** The round loop; returns why it stopped. */
  private async runRounds(startRound: number, history: RoundRecord[]): Promise<TrainingSummary['stoppedBy']> {
    const { settings, callbacks = [] } = this.options;
    for (let round = startRound; round <= settings.maxRounds; round++) {
      if (this.options.signal?.aborted) return 'aborted';
      // A learner may have dropped since the last round: give it the registration window to come back.
      if (!(await this.waitForLearners(settings.minClients, { throwOnTimeout: false }))) return 'aborted';
      for (const callback of callbacks) await callback.onRoundStart?.(round);
      const record = await this.runRound(round);
      if (!record) {
        this.logger.warn(`round ${round} abandoned: stop requested; the global model stays at round ${round - 1}`);
        return 'aborted';
      }
      history.push(record);
      this.options.history?.append(record);
      this.options.report?.(formatRoundLine(record, settings.maxRounds));
      const control: RoundControl = {
        stop: (reason) => {
          this.stopReason ??= reason;
        },
        globalWeights: () => this.global,
        layout: this.layout,
      };
      for (const callback of callbacks) await callback.onRoundEnd?.(record, control);
      // target_epsilon: stop before the round that would exceed it (or that a learner refused for its budget).
      this.stopReason ??= privacyStopReason(this.options.aggregator, record);
      await this.options.onRoundComplete?.({ round, weights: this.global });
      if (this.stopReason) {
        this.logger.info(`stopping early: ${this.stopReason}`);
        return 'callback';
      }
    }
    return 'max_rounds';
  }

  /** Asks every registered learner (capable or not) to exit; failures are logged, not thrown. */
  async shutdownLearners(reason: string): Promise<void> {
    const all = this.options.transport.peers().filter((peer) => peer.role === 'learner');
    await Promise.all(
      all.map((peer) =>
        this.options.transport
          .notify(peer.nodeId, LearnerMethods.shutdown, { body: { reason } })
          .catch((error) => this.logger.debug(`shutdown notice to ${peer.nodeId} failed: ${errorMessage(error)}`)),
      ),
    );
  }

  /**
   * Waits until `needed` capable learners are registered. False when the signal aborted the wait
   * (a stop request, not an error: the caller ends the run normally and keeps finished rounds).
   */
  private async waitForLearners(needed: number, options: { throwOnTimeout?: boolean } = {}): Promise<boolean> {
    const timeoutMs = this.options.settings.registrationTimeoutS * 1000;
    const deadline = Date.now() + timeoutMs;
    let lastLog = 0;
    while (this.learners().length < needed) {
      if (this.options.signal?.aborted) return false;
      const now = Date.now();
      if (now >= deadline) {
        if (options.throwOnTimeout === false) {
          this.logger.warn(
            `only ${this.learners().length} of min_clients=${needed} learners after waiting ${this.options.settings.registrationTimeoutS}s; ` +
              'running the round with them (it aggregates only if enough updates arrive)',
          );
          return true;
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
      await waitForPeerChange(this.options.transport, Math.min(1000, deadline - now), this.options.signal);
    }
    this.options.metrics?.learnersRegistered.set(this.learners().length);
    return !this.options.signal?.aborted;
  }

  /**
   * Whether a learner offers every capability the algorithm needs. The first time a peer falls
   * short it is logged and told to stop; it is never selected, and the federation goes on.
   */
  private isCapable(peer: PeerInfo): boolean {
    const offered = new Set(capabilitiesOf(peer));
    const missing = this.required.filter((key) => !offered.has(key));
    if (missing.length === 0) return true;
    if (!this.refused.has(peer.nodeId)) {
      this.refused.add(peer.nodeId);
      const reason =
        `aggregator "${this.options.aggregator.type}" needs learner support for ${missing.join(', ')}, ` +
        `but learner "${peer.nodeId}" (type ${peer.metadata[RegistrationKeys.learnerType] ?? 'unknown'}) ` +
        `offers only [${capabilitiesOf(peer).join(', ')}]`;
      this.logger.warn(`refusing learner ${peer.nodeId}: ${reason}`);
      this.options.transport
        .notify(peer.nodeId, LearnerMethods.shutdown, { body: { reason } })
        .catch((error) => this.logger.debug(`refusal notice to ${peer.nodeId} failed: ${errorMessage(error)}`));
    }
    return false;
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

  /** The rule's choice when it has selectLearners, else the default sampling. */
  private selectLearners(round: number): string[] {
    const available = this.learners()
      .map((peer) => peer.nodeId)
      .sort();
    const sampled = this.sampleLearners(round, [...available]);
    const { aggregator } = this.options;
    if (!aggregator.selectLearners) return sampled;
    const chosen = aggregator.selectLearners(round, available, sampled);
    const known = new Set(available);
    const unknown = chosen.filter((id) => !known.has(id));
    if (unknown.length > 0) {
      this.logger.warn(`round ${round}: ${aggregator.type}.selectLearners named ${unknown.join(', ')}, not among the available learners; left out`);
    }
    return [...new Set(chosen.filter((id) => known.has(id)))].sort();
  }

  /** Today's default: a seeded sample of client_fraction of the learners (at least min_clients). */
  private sampleLearners(round: number, available: string[]): string[] {
    const { clientFraction, minClients } = this.options.settings;
    const wanted = Math.min(available.length, Math.max(minClients, Math.ceil(clientFraction * available.length)));
    // Seeded per round so a resumed run samples the same learners as an uninterrupted one.
    const rng = createRng(this.options.seed * 1_000_003 + round);
    for (let i = available.length - 1; i > 0; i--) {
      const j = rng.nextInt(i + 1);
      [available[i], available[j]] = [available[j]!, available[i]!];
    }
    return available.slice(0, wanted).sort();
  }

  /**
   * One round, as its phases: select learners, configure the round, broadcast the plan and collect
   * updates, aggregate, evaluate, record. Undefined when the signal aborted it (its partial
   * updates are discarded).
   */
  private async runRound(round: number): Promise<RoundRecord | undefined> {
    const started = performance.now();
    const statsBefore = this.options.transport.stats();
    const selected = this.selectPhase(round);
    const ctx = this.roundContext(round, selected);
    const plan = this.configurePhase(ctx);
    const outcome = await this.broadcastAndCollect(ctx, plan);
    if (!outcome) return undefined;
    const aggregation = this.aggregatePhase(ctx, outcome);
    const evaluation = await this.evaluate(round, outcome.collected.map((c) => c.update.clientId));
    const personalized = await this.personalizedPhase(round);
    return this.recordRound({ round, started, statsBefore, selected, outcome, aggregation, evaluation, personalized });
  }

  /** Configure: the rule's plan for the round (the one asked before round 1 serves that round). */
  private configurePhase(ctx: RoundContext): RoundPlan {
    const first = this.firstPlan;
    this.firstPlan = undefined;
    if (first?.round === ctx.round) return first.plan;
    return this.options.aggregator.configureRound(ctx);
  }

  /** Select: the learners asked to train this round. */
  private selectPhase(round: number): string[] {
    const selected = this.selectLearners(round);
    this.options.metrics?.currentRound.set(round);
    this.options.metrics?.learnersParticipating.set(selected.length);
    return selected;
  }

  /**
   * Broadcast and collect: sends the plan to every selected learner and gathers their checked
   * updates (folded into the rule's accumulator as they arrive when it streams). Undefined when
   * the signal aborted the round.
   */
  private async broadcastAndCollect(ctx: RoundContext, plan: RoundPlan): Promise<RoundOutcome | undefined> {
    const { round, selectedClients: selected } = ctx;
    const { settings } = this.options;
    const request: TrainRequestBody = {
      round,
      model: this.options.modelSpec,
      config: { local_epochs: settings.localEpochs, update_compression: settings.updateCompression },
      instructions: plan.instructions,
    };
    const tensors = [...weightsToTensors(this.global, this.layout), ...extrasToTensors(plan.tensors)];
    if (settings.secureAggregation) return this.secureBroadcastAndCollect(ctx, { body: request, tensors }, settings.secureAggregation);
    const outcome = this.newOutcome(ctx);
    const deadline = Date.now() + settings.roundTimeoutS * 1000;
    const roundSignal = this.roundSignal(selected.length);
    try {
      await Promise.all(
        selected.map((learner) =>
          this.trainOn(learner, round, { body: request, tensors }, { timeoutMs: Math.max(1, deadline - Date.now()), signal: roundSignal.signal }, outcome),
        ),
      );
    } finally {
      roundSignal.release();
    }
    return this.options.signal?.aborted ? undefined : outcome;
  }

  /**
   * A round's own abort signal, following the caller's: one listener per in-flight call on it, so
   * hundreds of learners do not trip Node's MaxListeners warning on the caller's signal.
   */
  private roundSignal(calls: number): { signal: AbortSignal; release(): void } {
    const roundAbort = new AbortController();
    setMaxListeners(calls + 10, roundAbort.signal);
    const forwardAbort = () => roundAbort.abort(this.options.signal?.reason);
    if (this.options.signal?.aborted) forwardAbort();
    this.options.signal?.addEventListener('abort', forwardAbort, { once: true });
    return { signal: roundAbort.signal, release: () => this.options.signal?.removeEventListener('abort', forwardAbort) };
  }

  /** The round's empty collection: the rule's accumulator (if it streams) and where updates fold to. */
  private newOutcome(ctx: RoundContext): RoundOutcome {
    const accumulator = this.options.aggregator.createAccumulator?.(ctx);
    const collected: CollectedUpdate[] = [];
    const failed: RoundRecord['failed'] = [];
    // With foldInLearnerOrder, updates are folded in the order of `selected` (sorted learner ids),
    // not of arrival: learners training concurrently then give the same bits as one after another.
    const order = this.options.foldInLearnerOrder ? ctx.selectedClients : undefined;
    const fold = inSelectionOrder(order, (item: CollectedUpdate) => {
      if (!accumulator) {
        collected.push(item);
        return;
      }
      try {
        accumulator.add(item.update);
      } catch (error) {
        // Folded on behalf of whichever learner's reply completed the prefix: blame the update's own learner.
        this.rejectUpdate(ctx.round, item.update.clientId, error, failed);
        return;
      }
      // Streaming rules have consumed the vectors: keep only the bookkeeping, so the trainer
      // holds O(model) memory during a round instead of O(learners x model).
      collected.push({ ...item, update: { ...item.update, weights: CONSUMED, extras: undefined } });
    });
    return { accumulator, collected, failed, fold };
  }

  /**
   * Broadcast and collect under secure aggregation: the SecAgg+ stages (local training inside)
   * yield the weighted mean delta of the learners whose masked input arrived, never an update.
   * The outcome's accumulator applies the rule to that mean, or fails the round when it could not
   * be unmasked. Undefined when the signal aborted the round.
   */
  private async secureBroadcastAndCollect(
    ctx: RoundContext,
    train: { body: TrainRequestBody; tensors: ReturnType<typeof weightsToTensors> },
    settings: SecureAggregationSettings,
  ): Promise<RoundOutcome | undefined> {
    const deadline = Date.now() + this.options.settings.roundTimeoutS * 1000;
    const roundSignal = this.roundSignal(ctx.selectedClients.length);
    let secure: SecureRoundOutcome;
    try {
      secure = await collectSecurely({
        transport: this.options.transport,
        logger: this.logger,
        settings,
        round: ctx.round,
        selected: ctx.selectedClients,
        global: this.global,
        // Masked updates are quantized deltas: update compression does not apply.
        train: { body: { ...train.body, config: { ...train.body.config, update_compression: undefined } }, tensors: train.tensors },
        callOptions: () => ({ timeoutMs: Math.max(1, deadline - Date.now()), signal: roundSignal.signal }),
        checkReply: (learner, body) => this.checkReplyBody(learner, ctx.round, body),
        maxSamples: (learner) => this.maxSamplesOf(learner),
      });
    } finally {
      roundSignal.release();
    }
    if (this.options.signal?.aborted) return undefined;
    if (secure.error) this.logger.error(`round ${ctx.round}: secure aggregation failed: ${secure.error}`);
    return this.secureOutcome(ctx, secure);
  }

  /** A secure round as the aggregate phase expects it: bookkeeping per participant, the mean in the accumulator. */
  private secureOutcome(ctx: RoundContext, secure: SecureRoundOutcome): RoundOutcome {
    const collected: CollectedUpdate[] = secure.participants.map(({ learner, scalars }) => ({
      update: { clientId: learner, weights: CONSUMED, numSamples: scalars.numSamples, localSteps: scalars.localSteps, meta: scalars.meta },
      trainSeconds: scalars.metrics.seconds,
      samplesPerSecond: scalars.metrics.samplesPerSecond,
      trainLoss: scalars.metrics.loss,
      trainAccuracy: scalars.metrics.accuracy,
    }));
    const numSamples = collected.reduce((sum, c) => sum + c.update.numSamples, 0);
    const { aggregator } = this.options;
    const accumulator: Accumulator = {
      add: () => {
        throw new Error('secure aggregation folds no individual update');
      },
      finish: (failures) => {
        if (!secure.mean) throw new Error(`secure aggregation: ${secure.error ?? 'no unmasked sum'}`);
        const weights = new Float32Array(this.global.length);
        for (let i = 0; i < weights.length; i++) weights[i] = this.global[i]! + secure.mean[i]!;
        // The rule sees one update, the unmasked weighted mean, as central DP hands it its noised mean.
        return aggregator.aggregate(ctx, [{ clientId: 'secure-aggregate', weights, numSamples }], failures);
      },
    };
    return { accumulator, collected, failed: secure.failed, fold: inSelectionOrder<CollectedUpdate>(undefined, () => undefined) };
  }

  /** Asks one learner to train and folds its checked update; a failure is recorded, not thrown. */
  private async trainOn(
    learner: string,
    round: number,
    message: { body: TrainRequestBody; tensors: ReturnType<typeof weightsToTensors> },
    callOptions: { timeoutMs: number; signal: AbortSignal },
    outcome: RoundOutcome,
  ): Promise<void> {
    const { metrics } = this.options;
    try {
      const reply = await this.options.transport.call(learner, LearnerMethods.train, message, callOptions);
      const item = this.decodeUpdate(learner, round, reply.body, reply.tensors);
      outcome.fold.put(learner, item);
      metrics?.updatesAccepted.inc();
      metrics?.localTrainSeconds.observe({ learner }, item.trainSeconds);
      metrics?.localSamplesPerSecond.set({ learner }, item.samplesPerSecond);
    } catch (error) {
      outcome.fold.skip(learner);
      this.rejectUpdate(round, learner, error, outcome.failed);
    }
  }

  private rejectUpdate(round: number, learner: string, error: unknown, failed: RoundRecord['failed']): void {
    const reason = errorMessage(error);
    failed.push({ learner, reason });
    this.options.metrics?.updatesRejected.inc({ reason: rejectionLabel(error) });
    this.logger.warn(`round ${round}: no usable update from ${learner}: ${reason}`);
  }

  /** Aggregate: new global weights when enough usable updates came in and the rule succeeds. */
  private aggregatePhase(ctx: RoundContext, outcome: RoundOutcome): { aggregated: boolean; error?: string } {
    const { settings, metrics } = this.options;
    const { collected } = outcome;
    if (!(collected.length >= settings.minClients && collected.length > 0)) {
      this.logger.warn(
        `round ${ctx.round}: ${collected.length} usable updates, fewer than min_clients=${settings.minClients}; global model unchanged`,
      );
      return { aggregated: false };
    }
    const error = this.aggregateRound(ctx.round, ctx, outcome);
    if (error === undefined) return { aggregated: true };
    metrics?.updatesRejected.inc({ reason: 'aggregation_failed' }, collected.length);
    return { aggregated: false, error };
  }

  /** Record: the round's history entry, and the metrics that summarise it. */
  private recordRound(phases: {
    round: number;
    started: number;
    statsBefore: ReturnType<Transport['stats']>;
    selected: string[];
    outcome: RoundOutcome;
    aggregation: { aggregated: boolean; error?: string };
    evaluation: Awaited<ReturnType<Trainer['evaluate']>>;
    personalized: PersonalizedAccuracy | undefined;
  }): RoundRecord {
    const { round, started, statsBefore, selected, outcome, aggregation, evaluation } = phases;
    const { collected, failed } = outcome;
    const statsAfter = this.options.transport.stats();
    const dpEpsilon = aggregation.aggregated ? this.aggregateMetrics?.dp_epsilon : undefined;
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
      ...personalizedRecordFields(phases.personalized),
      train_loss: weightedMean((c) => c.trainLoss),
      train_accuracy: weightedMean((c) => c.trainAccuracy),
      duration_s: (performance.now() - started) / 1000,
      slowest_train_s: Math.max(0, ...collected.map((c) => c.trainSeconds)),
      bytes_sent: statsAfter.bytesSent - statsBefore.bytesSent,
      bytes_received: statsAfter.bytesReceived - statsBefore.bytesReceived,
      aggregated: aggregation.aggregated,
      ...(aggregation.error === undefined ? {} : { aggregation_error: aggregation.error }),
      ...(dpEpsilon === undefined ? {} : { dp_epsilon: dpEpsilon }),
    };
    this.observeRound(record);
    return record;
  }

  private observeRound(record: RoundRecord): void {
    const { metrics } = this.options;
    if (!metrics) return;
    metrics.roundsCompleted.inc();
    metrics.roundDuration.observe(record.duration_s);
    metrics.bytesSent.inc(record.bytes_sent);
    metrics.bytesReceived.inc(record.bytes_received);
    if (record.accuracy !== undefined) metrics.globalAccuracy.set(record.accuracy);
    if (record.loss !== undefined) metrics.globalLoss.set(record.loss);
    if (typeof record.dp_epsilon === 'number') metrics.dpEpsilon.set(record.dp_epsilon);
    if (record.personalized_accuracy !== undefined) {
      metrics.personalizedAccuracy.set(record.personalized_accuracy);
      metrics.personalizedAccuracyStd.set(record.personalized_accuracy_std ?? 0);
      metrics.personalizedAccuracyMin.set(record.personalized_accuracy_min ?? record.personalized_accuracy);
      metrics.personalizedAccuracyMax.set(record.personalized_accuracy_max ?? record.personalized_accuracy);
    }
  }

  /**
   * Folds the round's updates into new global weights. The result replaces the global model only
   * when it is finite and model-sized; otherwise (or when the rule throws) the previous model and
   * the rule's previous state stay, and the reason is returned (the round counts as failed).
   */
  private aggregateRound(round: number, ctx: RoundContext, outcome: RoundOutcome): string | undefined {
    const { aggregator } = this.options;
    const { accumulator, collected } = outcome;
    const failures: readonly RoundFailure[] = outcome.failed.map((f) => ({ ...f }));
    const stateBefore = aggregator.getState();
    let reason: string;
    try {
      const result = accumulator ? accumulator.finish(failures) : aggregator.aggregate(ctx, collected.map((c) => c.update), failures);
      const bad = result.weights.length === this.global.length ? firstNonFinite(result.weights) : 0;
      if (bad < 0) {
        this.global = result.weights;
        this.aggregateMetrics = result.metrics;
        return undefined;
      }
      reason =
        result.weights.length !== this.global.length
          ? `aggregate has ${result.weights.length} weights, the model has ${this.global.length}`
          : `aggregate is not finite (value ${result.weights[bad]} at index ${bad})`;
    } catch (error) {
      reason = `aggregation failed: ${errorMessage(error)}`;
    }
    restoreState(aggregator, stateBefore, this.logger);
    this.logger.error(`round ${round}: ${reason}; the global model stays at round ${round - 1}`);
    return reason;
  }

  /** The trust boundary: a learner's reply becomes a ClientUpdate only if every field is in bounds (update-checks.ts). */
  private decodeUpdate(
    learner: string,
    round: number,
    body: unknown,
    tensors: Parameters<typeof tensorsToWeights>[0],
  ): CollectedUpdate {
    const scalars = this.checkReplyBody(learner, round, body);
    // Plain weights, or global + delta when the learner compresses its update (compression.ts).
    const weights = decodeUpdateWeights(tensors, this.layout, this.global);
    const extras = tensorsToExtras(tensors, weights.length);
    const clip = this.options.settings.updateNormClip;
    if (clip !== undefined) {
      const norm = clipUpdateNorm(weights, this.global, clip);
      if (norm > clip) this.logger.debug(`round ${round}: update of ${learner} clipped from L2 norm ${norm.toPrecision(4)} to ${clip}`);
    }
    const { metrics } = scalars;
    return {
      update: {
        clientId: learner,
        weights,
        numSamples: scalars.numSamples,
        localSteps: scalars.localSteps,
        extras,
        meta: scalars.meta,
        metrics: { loss: metrics.loss, accuracy: metrics.accuracy },
      },
      trainSeconds: metrics.seconds,
      samplesPerSecond: metrics.samplesPerSecond,
      trainLoss: metrics.loss,
      trainAccuracy: metrics.accuracy,
    };
  }

  /** A train reply's body: for this round, every scalar in bounds (update-checks.ts). */
  private checkReplyBody(learner: string, round: number, body: unknown): CheckedScalars {
    const reply = body as Partial<TrainResponseBody> | undefined;
    if (!reply || typeof reply !== 'object') throw new PayloadMismatchError('reply has no body');
    if (reply.round !== round) throw new PayloadMismatchError(`reply is for round ${String(reply.round)}, expected ${round}`);
    return checkReplyScalars(reply as Record<string, unknown>, {
      maxSamples: this.options.settings.maxSamplesPerUpdate ?? 1e9,
      announcedSamples: this.announcedSamplesOf(learner),
      localEpochs: this.options.settings.localEpochs,
    });
  }

  private announcedSamplesOf(learner: string): number | undefined {
    const peer = this.options.transport.peers().find((p) => p.nodeId === learner);
    return announcedSampleCount(peer?.metadata[RegistrationKeys.numSamples]);
  }

  /** The most samples one update of `learner` may claim: what it announced, capped by max_samples_per_update. */
  private maxSamplesOf(learner: string): number {
    return Math.min(this.options.settings.maxSamplesPerUpdate ?? 1e9, this.announcedSamplesOf(learner) ?? Infinity);
  }

  private async evaluate(
    round: number,
    participants: string[],
  ): Promise<{ accuracy: number; loss: number; source: 'trainer' | 'learners' } | undefined> {
    if (!this.evaluationDue(round)) return undefined;
    const { testData, model } = this.options;
    if (testData && testData.length > 0) {
      model.setWeights(this.global);
      const batchSize = this.options.evalBatchSize ?? 256;
      const { evaluator } = this.options;
      const result = evaluator ? await evaluator.evaluate(model, testData, { batchSize }) : await model.evaluate(testData, { batchSize, threads: this.options.evalThreads });
      return { accuracy: result.accuracy, loss: result.loss, source: 'trainer' };
    }
    return this.federatedEvaluate(round, participants);
  }

  /** Whether `round` evaluates: every eval_every rounds and the last one. */
  private evaluationDue(round: number): boolean {
    const { evalEvery, maxRounds } = this.options.settings;
    return evalEvery > 0 && (round % evalEvery === 0 || round === maxRounds);
  }

  /**
   * Personalized evaluation, at the rounds that evaluate: learners holding a test split of their
   * own evaluate their personalized models on it (personalized-eval.ts); undefined when none does.
   */
  private async personalizedPhase(round: number): Promise<PersonalizedAccuracy | undefined> {
    if (!this.evaluationDue(round) || this.options.signal?.aborted) return undefined;
    return collectPersonalizedEvaluation({
      transport: this.options.transport,
      learners: this.learners(),
      round,
      global: this.global,
      layout: this.layout,
      modelSpec: this.options.modelSpec,
      timeoutMs: this.options.settings.roundTimeoutS * 1000,
      signal: this.options.signal,
      logger: this.logger,
    });
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
            // A stop must not wait up to round_timeout for a slow learner's evaluation.
            signal: this.options.signal,
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

/** The instruction keys a rule's plan switches on: a learner must announce each as a capability. */
function requiredCapabilities({ instructions }: RoundPlan): string[] {
  return Object.entries(instructions as LearnerInstructions)
    .filter(([, value]) => value !== undefined && value !== false && value !== 0)
    .map(([key]) => key);
}

/** Puts a rule's state back after a failed aggregation (a rule may have updated it in finish()). */
function restoreState(aggregator: Aggregator, state: AggregatorState, logger: Logger): void {
  try {
    aggregator.setState(state);
  } catch (error) {
    logger.warn(`could not restore the ${aggregator.type} state after a failed aggregation: ${errorMessage(error)}`);
  }
}

function rejectionLabel(error: unknown): string {
  const code = (error as { code?: unknown })?.code;
  if (typeof code === 'string') return code.toLowerCase();
  return 'invalid_update';
}

/** Resolves after `ms`, when a peer joins, or when the signal aborts, whichever comes first. */
function waitForPeerChange(transport: Transport, ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, Math.max(0, ms));
    const unsubscribe = transport.on('peer-joined', done);
    signal?.addEventListener('abort', done, { once: true });
    if (signal?.aborted) done();
    function done() {
      clearTimeout(timer);
      unsubscribe();
      signal?.removeEventListener('abort', done);
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
  const eps = typeof record.dp_epsilon === 'number' ? `  eps=${record.dp_epsilon.toFixed(3)}` : '';
  return (
    `round ${String(record.round).padStart(width)}/${maxRounds}  learners ${record.participants}/${record.selected}` +
    `  accuracy ${percent(record.accuracy)}  loss ${loss}${formatPersonalized(record)}  ${record.duration_s.toFixed(2)}s${eps}${failed}`
  );
}

export function formatSummary(summary: TrainingSummary): string {
  const rounds = summary.rounds.length;
  const accuracy = summary.finalAccuracy === undefined ? 'n/a' : `${(summary.finalAccuracy * 100).toFixed(2)}%`;
  const loss = summary.finalLoss === undefined ? 'n/a' : summary.finalLoss.toFixed(4);
  const why = summary.stoppedBy === 'callback' ? ` (stopped early: ${summary.stopReason})` : summary.stoppedBy === 'aborted' ? ' (aborted)' : '';
  const personalized =
    summary.finalPersonalizedAccuracy === undefined ? '' : `, personalized accuracy ${(summary.finalPersonalizedAccuracy * 100).toFixed(2)}%`;
  return `done: ${rounds} rounds in ${summary.seconds.toFixed(1)}s, final accuracy ${accuracy}, loss ${loss}${personalized}${why}`;
}
