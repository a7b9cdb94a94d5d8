// The default learner (plain local SGD/Adam on the received global model) for a browser tab: the
// same replies as @oiafed/core's Learner for the trainer's train / evaluate / info / shutdown
// calls, with the model built from the trainer's spec and tfjs running in the page.
import { createModel, type DataSource, type FedModel } from '@oiafed/models';
import type { WebHandler, WebPayload, WebTensor } from './browser-link.js';

/** Method names and registration keys of the learner protocol (@oiafed/core's protocol.ts). */
export const LEARNER_METHODS = {
  train: 'oiafed.learner.train',
  evaluate: 'oiafed.learner.evaluate',
  info: 'oiafed.learner.info',
  shutdown: 'oiafed.learner.shutdown',
} as const;

const WEIGHT_PREFIX = 'weights/';

export interface WebLearnerSettings {
  batchSize: number;
  lr: number;
  optimizer: 'sgd' | 'adam';
  momentum: number;
  weightDecay: number;
  /** Overrides the trainer's local_epochs when set. */
  localEpochs?: number;
}

export const DEFAULT_WEB_SETTINGS: WebLearnerSettings = { batchSize: 32, lr: 0.01, optimizer: 'sgd', momentum: 0, weightDecay: 0 };

export type WebLearnerEvent =
  | { type: 'model'; modelType: string; numParams: number }
  | { type: 'epoch'; round: number; epoch: number; epochs: number; loss: number; accuracy: number }
  | { type: 'trained'; round: number; loss: number; accuracy: number; seconds: number; samplesPerSecond: number }
  | { type: 'evaluated'; round: number; loss: number; accuracy: number }
  | { type: 'shutdown'; reason: string };

export interface WebLearnerOptions {
  nodeId: string;
  data: DataSource;
  testData?: DataSource;
  settings?: Partial<WebLearnerSettings>;
  seed?: number;
  /** The tfjs backend in use (announced to the trainer). */
  backend: string;
  onEvent?: (event: WebLearnerEvent) => void;
}

interface ModelSpecBody {
  type: string;
  args?: Record<string, unknown>;
}

/** A PayloadMismatchError's wire code, so the trainer logs a refusal rather than a crash. */
function mismatch(message: string): Error {
  return Object.assign(new Error(message), { code: 'INVALID_ARGUMENT' });
}

/** The flat weight vector of `tensors`, checked against the model's layout. */
export function weightsOf(tensors: WebTensor[] | undefined, model: FedModel): Float32Array {
  const weights = (tensors ?? []).filter((t) => t.name.startsWith(WEIGHT_PREFIX));
  if (weights.length !== model.layout.length) throw mismatch(`expected ${model.layout.length} weight tensors, got ${weights.length}`);
  const flat = new Float32Array(model.numParams);
  model.layout.forEach((spec, i) => {
    const t = weights[i]!;
    if (t.name !== WEIGHT_PREFIX + spec.name || t.data.length !== spec.size) throw mismatch(`tensor ${i} is ${t.name}[${t.data.length}], expected ${spec.name}[${spec.size}]`);
    flat.set(t.data, spec.offset);
  });
  return flat;
}

function tensorsOf(flat: Float32Array, model: FedModel): WebTensor[] {
  return model.layout.map((spec) => ({ name: WEIGHT_PREFIX + spec.name, shape: [...spec.shape], data: flat.subarray(spec.offset, spec.offset + spec.size) }));
}

export class WebLearner {
  private model?: FedModel;
  private readonly settings: WebLearnerSettings;
  private busy: Promise<unknown> = Promise.resolve();
  readonly finished: Promise<string>;
  private finish!: (reason: string) => void;

  constructor(private readonly o: WebLearnerOptions) {
    this.settings = { ...DEFAULT_WEB_SETTINGS, ...o.settings };
    this.finished = new Promise((resolve) => (this.finish = resolve));
  }

  /** What the learner announces when it registers (core's RegistrationKeys). */
  metadata(): Record<string, string> {
    return {
      'oiafed.learner_type': 'default',
      // Plain local training only: an aggregator that needs FedProx, SCAFFOLD... refuses this learner.
      'oiafed.capabilities': '',
      'oiafed.num_samples': String(this.o.data.length),
      'oiafed.backend': this.o.backend,
    };
  }

  handlers(): Record<string, WebHandler> {
    return {
      [LEARNER_METHODS.train]: (p, signal) => this.exclusive(() => this.train(p, signal)),
      [LEARNER_METHODS.evaluate]: (p) => this.exclusive(() => this.evaluate(p)),
      [LEARNER_METHODS.info]: () => ({
        body: { node_id: this.o.nodeId, learner_type: 'default', num_samples: this.o.data.length, backend: this.o.backend, capabilities: [] },
      }),
      [LEARNER_METHODS.shutdown]: (p) => {
        const reason = (p.body as { reason?: string } | undefined)?.reason ?? 'trainer finished';
        this.o.onEvent?.({ type: 'shutdown', reason });
        this.finish(reason);
        return {};
      },
    };
  }

  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.busy.then(fn, fn);
    this.busy = run.catch(() => undefined);
    return run;
  }

  private ensureModel(spec: ModelSpecBody | undefined): FedModel {
    if (this.model) return this.model;
    if (!spec || typeof spec.type !== 'string') throw mismatch('the request names no model');
    const { data } = this.o;
    this.model = createModel({ type: spec.type, args: spec.args ?? {} }, { inputShape: [...data.sampleShape], numClasses: data.numClasses });
    this.o.onEvent?.({ type: 'model', modelType: spec.type, numParams: this.model.numParams });
    return this.model;
  }

  private async train(payload: WebPayload, signal: AbortSignal): Promise<WebPayload> {
    const req = payload.body as { round: number; model: ModelSpecBody; config?: { local_epochs?: number } } | undefined;
    if (!req || typeof req.round !== 'number') throw mismatch('train request has no round');
    const model = this.ensureModel(req.model);
    model.setWeights(weightsOf(payload.tensors, model));
    const s = this.settings;
    const epochs = s.localEpochs ?? req.config?.local_epochs ?? 1;
    const result = await model.train(this.o.data, {
      epochs,
      batchSize: s.batchSize,
      lr: s.lr,
      optimizer: s.optimizer,
      momentum: s.momentum,
      weightDecay: s.weightDecay,
      seed: (this.o.seed ?? 0) * 7919 + req.round,
      signal,
      onEpochEnd: (epoch, logs) => this.o.onEvent?.({ type: 'epoch', round: req.round, epoch: epoch + 1, epochs, ...logs }),
    });
    this.o.onEvent?.({ type: 'trained', round: req.round, loss: result.loss, accuracy: result.accuracy, seconds: result.seconds, samplesPerSecond: result.samplesPerSecond });
    const body = {
      round: req.round,
      num_samples: this.o.data.length,
      local_steps: result.steps,
      metrics: { loss: result.loss, accuracy: result.accuracy, seconds: result.seconds, samples_per_second: result.samplesPerSecond },
      meta: { momentum: s.optimizer === 'sgd' ? s.momentum : 0, lr: s.lr },
    };
    return { body, tensors: tensorsOf(model.getWeights(), model) };
  }

  private async evaluate(payload: WebPayload): Promise<WebPayload> {
    const req = payload.body as { round?: number; model?: ModelSpecBody } | undefined;
    const model = this.ensureModel(req?.model);
    model.setWeights(weightsOf(payload.tensors, model));
    const data = this.o.testData && this.o.testData.length > 0 ? this.o.testData : this.o.data;
    const r = await model.evaluate(data, { batchSize: 256 });
    this.o.onEvent?.({ type: 'evaluated', round: req?.round ?? 0, loss: r.loss, accuracy: r.accuracy });
    return { body: { round: req?.round ?? 0, num_samples: r.numSamples, loss: r.loss, accuracy: r.accuracy } };
  }

  dispose(): void {
    this.model?.dispose();
    this.model = undefined;
  }
}
