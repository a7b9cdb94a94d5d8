/**
 * The trainer's side of a SecAgg+ round (issue 16 §1): the broadcast-and-collect phase becomes
 * four stages over transport.call (setup, share keys, masked input with local training, unmask),
 * driven by @oiafed/privacy's SecAggServer. The trainer learns the weighted mean of the round's
 * deltas and nothing about any one learner's update; a round that loses more learners than the
 * threshold allows fails with the model unchanged.
 */
import { randomBytes } from 'node:crypto';
import { SecAggServer } from '@oiafed/privacy';
import type { Payload, Tensor, Transport } from '@oiafed/transport';
import { errorMessage, type Logger } from './logger.js';
import type { TrainRequestBody } from './protocol.js';
import { SecureAggregationMethods, type SecureAggregationSettings } from './secure-aggregation.js';
import { PayloadMismatchError } from './serde.js';
import type { CheckedScalars } from './update-checks.js';

/** Name of the tensor that carries a learner's masked input (int32 view of Z_{2^bits} words). */
export const MASKED_INPUT_TENSOR = 'secagg/masked';

export interface SecureRoundInput {
  transport: Transport;
  logger: Logger;
  settings: SecureAggregationSettings;
  round: number;
  selected: readonly string[];
  /** The round's global weights (the learners' deltas are relative to them). */
  global: Float32Array;
  /** The plain train request and the global weights as tensors, as every round sends them. */
  train: { body: TrainRequestBody; tensors: Tensor[] };
  /** Deadline and abort signal for each call, as the plain round uses. */
  callOptions: () => { timeoutMs: number; signal: AbortSignal };
  /** The trainer's checks of a train reply's scalars (update-checks.ts). */
  checkReply: (learner: string, body: unknown) => CheckedScalars;
  /** The most samples `learner` may claim (what it announced, capped by the trainer): bounds its setup weight. */
  maxSamples: (learner: string) => number;
}

export interface SecureParticipant {
  learner: string;
  scalars: CheckedScalars;
}

export interface SecureRoundOutcome {
  /** Learners whose masked input is in the sum. */
  participants: SecureParticipant[];
  /** Learners that failed before their input counted, and why. */
  failed: Array<{ learner: string; reason: string }>;
  /** The weighted mean of the participants' deltas (clipped, quantized), when unmasking succeeded. */
  mean?: Float32Array;
  /** Per-coordinate bound of the quantization error of `mean`. */
  quantizationStep?: number;
  /** Why the round cannot be unmasked (the global model stays). */
  error?: string;
}

type Stage = keyof typeof SecureAggregationMethods;

/** Runs the four SecAgg+ stages with the selected learners; never throws for a learner's failure. */
export async function collectSecurely(input: SecureRoundInput): Promise<SecureRoundOutcome> {
  const outcome: SecureRoundOutcome = { participants: [], failed: [] };
  const { settings, round, selected } = input;
  let server: SecAggServer;
  try {
    server = new SecAggServer({
      round,
      ids: [...selected],
      neighbours: settings.neighbours,
      threshold: settings.threshold,
      bits: settings.quantizationBits,
      clip: settings.clipRange,
      length: input.global.length,
      salt: randomBytes(16).toString('hex'),
    });
  } catch (error) {
    return { ...outcome, error: errorMessage(error) };
  }
  try {
    await runStage(input, outcome, 'setup', selected, (id) => ({ body: { ...server.setupRequest(id), weighted: settings.weighted } }), (id, reply) => {
      checkSetupWeight(id, reply.body, settings.weighted ? input.maxSamples(id) : 1);
      server.receiveSetup(id, reply.body as never);
    });
    await runStage(input, outcome, 'shareKeys', server.shareKeysTargets(), (id) => ({ body: server.shareKeysRequest(id) }), (id, reply) =>
      server.receiveShareKeys(id, reply.body as never),
    );
    const maskedRequest = (id: string): Payload => ({ body: { secagg: server.maskedInputRequest(id), train: input.train.body }, tensors: input.train.tensors });
    await runStage(input, outcome, 'maskedInput', server.maskedInputTargets(), maskedRequest, (id, reply) => {
      const scalars = input.checkReply(id, (reply.body as { train?: unknown } | undefined)?.train);
      server.receiveMaskedInput(id, maskedVector(reply));
      outcome.participants.push({ learner: id, scalars });
    });
    // From here a learner that does not answer still counts: its input is in the sum.
    await runStage(input, outcome, 'unmask', server.unmaskTargets(), (id) => ({ body: server.unmaskRequest(id) }), (id, reply) =>
      server.receiveUnmask(id, reply.body as never),
    );
    const result = server.finish();
    if (result.leftOut.length > 0) {
      input.logger.warn(`round ${round}: secure aggregation left out shares not at their point or malformed: ${result.leftOut.join(', ')}`);
    }
    outcome.mean = result.mean;
    outcome.quantizationStep = result.quantizationStep;
  } catch (error) {
    outcome.error = errorMessage(error);
  }
  return outcome;
}

/** One stage: calls every target in parallel; a failed target is recorded (before unmask) or logged (at unmask). */
async function runStage(
  input: SecureRoundInput,
  outcome: SecureRoundOutcome,
  stage: Stage,
  targets: readonly string[],
  request: (id: string) => Payload,
  receive: (id: string, reply: Payload) => void,
): Promise<void> {
  if (input.callOptions().signal.aborted) throw new Error('round aborted');
  await Promise.all(
    targets.map(async (id) => {
      try {
        const reply = await input.transport.call(id, SecureAggregationMethods[stage], request(id), input.callOptions());
        receive(id, reply);
      } catch (error) {
        const reason = `secure aggregation ${stage}: ${errorMessage(error)}`;
        if (stage === 'unmask') {
          input.logger.warn(`round ${input.round}: ${id} did not return its shares (${errorMessage(error)}); its masked input still counts`);
          return;
        }
        outcome.failed.push({ learner: id, reason });
        input.logger.warn(`round ${input.round}: no usable update from ${id}: ${reason}`);
      }
    }),
  );
}

/**
 * The setup weight scales a learner's share of the masked sum, as num_samples does in a plain
 * round, so it gets the same bound: at most the samples the learner announced (1 when unweighted).
 */
function checkSetupWeight(learner: string, body: unknown, cap: number): void {
  const weight = (body as { weight?: unknown } | undefined)?.weight;
  if (typeof weight !== 'number' || !Number.isInteger(weight) || weight < 1 || weight > cap) {
    throw new PayloadMismatchError(`setup weight of ${learner} must be an integer in 1..${cap}, got ${JSON.stringify(weight)}`);
  }
}

/** The masked input tensor of a reply as Z_{2^bits} words; exactly one per learner and round. */
function maskedVector(reply: Payload): Uint32Array {
  const found = (reply.tensors ?? []).filter((t) => t.name === MASKED_INPUT_TENSOR);
  if (found.length > 1) throw new PayloadMismatchError(`masked input reply has ${found.length} tensors "${MASKED_INPUT_TENSOR}"; one masked input per round`);
  const tensor = found[0];
  if (!tensor || tensor.dtype !== 'int32' || !(tensor.data instanceof Int32Array)) {
    throw new PayloadMismatchError(`masked input reply has no int32 tensor "${MASKED_INPUT_TENSOR}"`);
  }
  return new Uint32Array(tensor.data.buffer, tensor.data.byteOffset, tensor.data.length);
}
