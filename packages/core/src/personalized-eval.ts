/**
 * Personalized evaluation (issue 15 §2): at evaluation rounds the trainer asks every learner that
 * holds its own test split (`partition.test_fraction`) to evaluate its personalized model there,
 * and reports the sample-weighted mean and the spread beside the global model's accuracy, as
 * personalized-FL papers do (FedPer, FedRep, Ditto and FedRoD test each client's model on held-out
 * data from that client's distribution).
 *
 * A learner's personalized model is the round's global model with the tensors its algorithms
 * keep local put over it (`keepsLocal`); an algorithm may supply other weights through
 * `personalizedWeights` (FedBABU fine-tunes the head first). For plain FedAvg it is the global
 * model itself, evaluated on each learner's own split.
 */
import type { WeightLayout } from '@oiafed/aggregators';
import type { ArrayDataset } from '@oiafed/datasets';
import type { FedModel, TrainOptions, TrainResult } from '@oiafed/models';
import type { RoundRecord } from '@oiafed/tracker';
import type { PeerInfo, Transport } from '@oiafed/transport';
import type { LearnerAlgorithms } from './learner-algorithms/learner-algorithms.js';
import type { LocalTrainingSettings } from './learner-algorithms/types.js';
import { errorMessage, type Logger } from './logger.js';
import { LearnerMethods, RegistrationKeys, type EvaluateResponseBody, type ModelSpecBody } from './protocol.js';
import { weightsToTensors } from './serde.js';

/** The learners' personalized accuracy in one round: weighted mean and spread. */
export interface PersonalizedAccuracy {
  /** Mean accuracy (0..1), each learner weighted by its test samples. */
  accuracy: number;
  /** Mean loss, weighted the same way. */
  loss: number;
  /** Standard deviation of the learners' accuracies around `accuracy`, with the same weights. */
  std: number;
  /** Lowest and highest accuracy of a single learner. */
  min: number;
  max: number;
  /** Learners that answered, and their test samples together. */
  learners: number;
  samples: number;
}

/** One learner's answer: its test samples, accuracy and loss. */
export type LearnerEvaluation = Pick<EvaluateResponseBody, 'num_samples' | 'accuracy' | 'loss'>;

/**
 * Weighted mean and spread of the learners' evaluations; undefined when none has samples.
 * std = sqrt(sum n_i (a_i - mean)^2 / sum n_i) (the population form: these are all the learners).
 */
export function summarizePersonalized(results: readonly LearnerEvaluation[]): PersonalizedAccuracy | undefined {
  const ok = results.filter((r) => r.num_samples > 0);
  const samples = ok.reduce((sum, r) => sum + r.num_samples, 0);
  if (samples === 0) return undefined;
  const mean = (pick: (r: LearnerEvaluation) => number) => ok.reduce((sum, r) => sum + pick(r) * r.num_samples, 0) / samples;
  const accuracy = mean((r) => r.accuracy);
  const variance = mean((r) => (r.accuracy - accuracy) ** 2);
  return {
    accuracy,
    loss: mean((r) => r.loss),
    std: Math.sqrt(variance),
    min: Math.min(...ok.map((r) => r.accuracy)),
    max: Math.max(...ok.map((r) => r.accuracy)),
    learners: ok.length,
    samples,
  };
}

/** The round record's fields for a personalized evaluation (none when there was none). */
export function personalizedRecordFields(p: PersonalizedAccuracy | undefined): Partial<RoundRecord> {
  if (!p) return {};
  return {
    personalized_accuracy: p.accuracy,
    personalized_loss: p.loss,
    personalized_accuracy_std: p.std,
    personalized_accuracy_min: p.min,
    personalized_accuracy_max: p.max,
    personalized_learners: p.learners,
  };
}

/** `  personalized 85.20% sd 4.10 [70.00..99.00]` for the round line, or '' when not evaluated. */
export function formatPersonalized(record: RoundRecord): string {
  const { personalized_accuracy: mean, personalized_accuracy_std: std, personalized_accuracy_min: min, personalized_accuracy_max: max } = record;
  if (typeof mean !== 'number') return '';
  const points = (v: unknown) => (typeof v === 'number' ? (v * 100).toFixed(2) : '-');
  return `  personalized ${points(mean)}% sd ${points(std)} [${points(min)}..${points(max)}]`;
}

/** The test samples a learner announced at registration (0: it holds no split of its own). */
export function announcedLocalTestSamples(peer: PeerInfo): number {
  const n = Number(peer.metadata[RegistrationKeys.localTestSamples] ?? 0);
  return Number.isInteger(n) && n > 0 ? n : 0;
}

/** What the trainer needs to ask for one round's personalized evaluation. */
export interface PersonalizedRequest {
  transport: Transport;
  learners: readonly PeerInfo[];
  round: number;
  global: Float32Array;
  layout: WeightLayout;
  modelSpec: ModelSpecBody;
  timeoutMs: number;
  signal?: AbortSignal;
  logger: Logger;
}

/**
 * Asks every learner that announced a split of its own to evaluate its personalized model on it;
 * a learner that fails or answers out of bounds is logged and left out of the mean.
 */
export async function collectPersonalizedEvaluation(request: PersonalizedRequest): Promise<PersonalizedAccuracy | undefined> {
  const holders = request.learners.filter((peer) => announcedLocalTestSamples(peer) > 0);
  if (holders.length === 0) return undefined;
  const tensors = weightsToTensors(request.global, request.layout);
  const results = await Promise.all(holders.map((peer) => askOne(request, peer, tensors)));
  return summarizePersonalized(results.filter((r): r is LearnerEvaluation => r !== undefined));
}

async function askOne(request: PersonalizedRequest, peer: PeerInfo, tensors: ReturnType<typeof weightsToTensors>): Promise<LearnerEvaluation | undefined> {
  const { round } = request;
  try {
    const reply = await request.transport.call(
      peer.nodeId,
      LearnerMethods.evaluatePersonalized,
      { body: { round, model: request.modelSpec }, tensors },
      { timeoutMs: request.timeoutMs, signal: request.signal },
    );
    return checkedEvaluation(reply.body, round, announcedLocalTestSamples(peer));
  } catch (error) {
    request.logger.warn(`round ${round}: personalized evaluation on ${peer.nodeId} failed: ${errorMessage(error)}`);
    return undefined;
  }
}

/** A reply within bounds: this round, 1..announced samples (a learner cannot outweigh its split), accuracy in 0..1. */
function checkedEvaluation(body: unknown, round: number, announced: number): LearnerEvaluation {
  const r = body as Partial<EvaluateResponseBody> | undefined;
  if (!r || typeof r !== 'object') throw new Error('reply has no body');
  if (r.round !== round) throw new Error(`reply is for round ${String(r.round)}, expected ${round}`);
  const n = r.num_samples;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 1 || n > announced) {
    throw new Error(`num_samples ${String(n)} is outside 1..${announced} (the split it announced)`);
  }
  if (typeof r.accuracy !== 'number' || !(r.accuracy >= 0 && r.accuracy <= 1)) throw new Error(`accuracy ${String(r.accuracy)} is outside 0..1`);
  if (typeof r.loss !== 'number' || !Number.isFinite(r.loss)) throw new Error(`loss ${String(r.loss)} is not finite`);
  return { num_samples: n, accuracy: r.accuracy, loss: r.loss };
}

/** What a learner needs to evaluate its personalized model (its lock held by the caller). */
export interface PersonalizedModelInput {
  round: number;
  global: Float32Array;
  model: FedModel;
  algorithms: LearnerAlgorithms;
  trainData: ArrayDataset;
  testData: ArrayDataset;
  settings: LocalTrainingSettings;
  /** The learner's local training options (seed, threads, signal) the hooks' `train` starts from. */
  trainOptions: TrainOptions;
  train: (model: FedModel, data: ArrayDataset, options: TrainOptions) => Promise<TrainResult>;
  evalBatchSize: number;
  threads?: number;
}

/** Learner side: builds the personalized weights, then evaluates them on the learner's own split. */
export async function evaluatePersonalizedModel(input: PersonalizedModelInput): Promise<EvaluateResponseBody> {
  const { model } = input;
  model.setWeights(await personalizedWeights(input));
  const result = await model.evaluate(input.testData, { batchSize: input.evalBatchSize, threads: input.threads });
  return { round: input.round, num_samples: result.numSamples, loss: result.loss, accuracy: result.accuracy };
}

/** The global model with the kept local tensors over it, then each algorithm's own `personalizedWeights` in turn. */
async function personalizedWeights(input: PersonalizedModelInput): Promise<Float32Array> {
  const { model, global, round } = input;
  let weights = input.algorithms.evaluationWeights(global, model.layout);
  const train = async (start: Float32Array, options: Partial<TrainOptions> = {}): Promise<Float32Array> => {
    model.setWeights(start);
    await input.train(model, input.trainData, { ...input.trainOptions, ...options });
    return model.getWeights();
  };
  for (const algorithm of input.algorithms.instancesSoFar()) {
    if (!algorithm.personalizedWeights) continue;
    const own = await algorithm.personalizedWeights({ round, global, weights, layout: model.layout, settings: input.settings, train });
    if (own === undefined) continue;
    if (own.length !== model.numParams) {
      throw new Error(`learner algorithm "${algorithm.type}": personalizedWeights gave ${own.length} values, the model has ${model.numParams}`);
    }
    weights = own;
  }
  return weights;
}
