/**
 * A learner's side of a SecAgg+ round (issue 16 §1): serves the stages the trainer adds
 * (setup, share keys, masked input, unmask) with @oiafed/privacy's SecAggClient, one fresh client
 * (fresh keys and seeds) per round. The masked-input stage runs the learner's ordinary local
 * training and sends its delta masked instead of its weights.
 */
import { SecAggClient, type MaskedInputRequest, type SetupRequest, type ShareKeysRequest, type UnmaskRequest } from '@oiafed/privacy';
import type { TensorSpec } from '@oiafed/aggregators';
import type { CallContext, Payload, Transport } from '@oiafed/transport';
import { decodeUpdateWeights } from './compression.js';
import type { Logger } from './logger.js';
import type { TrainRequestBody } from './protocol.js';
import { SecureAggregationMethods } from './secure-aggregation.js';
import { MASKED_INPUT_TENSOR } from './secure-aggregation-trainer.js';
import { PayloadMismatchError, tensorsToWeights } from './serde.js';

/** What the secure stages need of a learner: its identity, its weight and its local training. */
export interface SecureAggregationHost {
  readonly numSamples: number;
  /** Runs one ordinary train request; its reply carries the trained weights (maybe compressed). */
  train(payload: Payload, ctx: CallContext): Promise<Payload>;
  /** Layout of the model the learner trains (known once it trained). */
  modelLayout(): readonly TensorSpec[] | undefined;
}

/** Registers the SecAgg+ stage handlers on the learner's transport. */
export function serveSecureAggregation(nodeId: string, transport: Transport, host: SecureAggregationHost, logger: Logger): void {
  let current: { round: number; client: SecAggClient } | undefined;
  const clientFor = (round: unknown): SecAggClient => {
    if (!current || current.round !== round) throw new PayloadMismatchError(`no secure aggregation in progress for round ${String(round)}`);
    return current.client;
  };
  transport.handle(SecureAggregationMethods.setup, (payload) => {
    const body = payload.body as SetupRequest & { weighted?: boolean };
    if (!body || typeof body.round !== 'number') throw new PayloadMismatchError('secure aggregation setup has no round');
    current = { round: body.round, client: new SecAggClient(nodeId, body.weighted === false ? 1 : host.numSamples) };
    return { body: current.client.setup(body) };
  });
  transport.handle(SecureAggregationMethods.shareKeys, (payload) => {
    const body = payload.body as ShareKeysRequest;
    return { body: clientFor(body?.round).shareKeys(body) };
  });
  transport.handle(SecureAggregationMethods.maskedInput, async (payload, ctx) => {
    const body = payload.body as { secagg: MaskedInputRequest; train: TrainRequestBody };
    const client = clientFor(body?.secagg?.round);
    const reply = await host.train({ body: body.train, tensors: payload.tensors }, ctx);
    const masked = client.mask(body.secagg, delta(host, payload, reply));
    logger.debug(`round ${body.secagg.round}: sent a masked update (${masked.length} words)`);
    return {
      body: { train: reply.body },
      tensors: [{ name: MASKED_INPUT_TENSOR, shape: [masked.length], dtype: 'int32', data: new Int32Array(masked.buffer, masked.byteOffset, masked.length) }],
    };
  });
  transport.handle(SecureAggregationMethods.unmask, (payload) => {
    const body = payload.body as UnmaskRequest;
    const answer = clientFor(body?.round).unmask(body);
    current = undefined; // keys and seeds of the round are dropped once it is unmasked
    return { body: answer };
  });
}

/** local - global, from the request's global weights and the train reply's (possibly compressed) update. */
function delta(host: SecureAggregationHost, request: Payload, reply: Payload): Float32Array {
  const layout = host.modelLayout();
  if (!layout) throw new PayloadMismatchError('the learner has no model after training');
  const global = tensorsToWeights(request.tensors, layout);
  const local = decodeUpdateWeights(reply.tensors, layout, global);
  const out = new Float32Array(global.length);
  for (let i = 0; i < out.length; i++) out[i] = local[i]! - global[i]!;
  return out;
}
