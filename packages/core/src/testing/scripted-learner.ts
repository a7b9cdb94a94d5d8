/**
 * A learner whose local training is scripted: it answers the ordinary train call and the SecAgg+
 * stages with `update(round, global)` as its new weights, so tests and benchmarks know every
 * learner's update exactly while the protocol, the transport and the trainer are the real ones.
 */
import type { TensorSpec } from '@oiafed/aggregators';
import type { Payload, Tensor, Transport } from '@oiafed/transport';
import { silentLogger, type Logger } from '../logger.js';
import { DEFAULT_LEARNER_CAPABILITIES, LearnerMethods, RegistrationKeys, type TrainRequestBody, type TrainResponseBody } from '../protocol.js';
import { SECURE_AGGREGATION_CAPABILITY } from '../secure-aggregation.js';
import { serveSecureAggregation } from '../secure-aggregation-learner.js';
import { tensorsToWeights, weightsToTensors } from '../serde.js';

export interface ScriptedLearnerOptions {
  nodeId: string;
  numSamples: number;
  /** The model's layout; read from the first train request's weight tensors when absent. */
  layout?: readonly TensorSpec[];
  /** The learner's new weights for a round, given the global ones. */
  update: (round: number, global: Float32Array) => Float32Array;
  logger?: Logger;
}

/** Registration metadata of a scripted learner: it announces secure aggregation and its sample count. */
export function scriptedLearnerMetadata(numSamples: number): Record<string, string> {
  return {
    [RegistrationKeys.capabilities]: [...DEFAULT_LEARNER_CAPABILITIES, SECURE_AGGREGATION_CAPABILITY].join(','),
    [RegistrationKeys.numSamples]: String(numSamples),
    [RegistrationKeys.learnerType]: 'scripted',
  };
}

/** Serves train and the SecAgg+ stages on `transport` (build it with scriptedLearnerMetadata). */
export function serveScriptedLearner(transport: Transport, options: ScriptedLearnerOptions): void {
  let layout = options.layout;
  const train = async (payload: Payload): Promise<Payload> => {
    const request = payload.body as TrainRequestBody;
    layout ??= layoutOf(payload.tensors ?? []);
    const global = tensorsToWeights(payload.tensors, layout);
    const body: TrainResponseBody = {
      round: request.round,
      num_samples: options.numSamples,
      local_steps: 1,
      metrics: { loss: 0, accuracy: 0, seconds: 0, samples_per_second: 0 },
      meta: {},
    };
    return { body, tensors: weightsToTensors(options.update(request.round, global), layout) };
  };
  transport.handle(LearnerMethods.train, train);
  const host = { numSamples: options.numSamples, train, modelLayout: () => layout };
  serveSecureAggregation(options.nodeId, transport, host, options.logger ?? silentLogger);
}

/** The layout the trainer's weight tensors describe (names after `weights/`, in order). */
function layoutOf(tensors: readonly Tensor[]): TensorSpec[] {
  let offset = 0;
  return tensors
    .filter((t) => t.name.startsWith('weights/'))
    .map((t) => {
      const size = t.shape.reduce((a, b) => a * b, 1);
      const spec = { name: t.name.slice('weights/'.length), shape: [...t.shape], offset, size, trainable: true, isNormalization: false };
      offset += size;
      return spec;
    });
}
