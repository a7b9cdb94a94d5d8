/**
 * Entry of one data-parallel training worker: its own tfjs engine on the patched wasm backend and
 * a replica of the model (rebuilt from its JSON topology). For each step it reads the current
 * weights from shared memory, runs `shardGradients` over its shard and writes the result into
 * its own shared output vector. It holds no optimizer: the main thread steps.
 */
import { parentPort, workerData } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { disposeBatch, makeBatch } from '../batching.js';
import { enableBlasKernels } from '../blas/openblas.js';
import { initWasmBackend } from '../wasm/index.js';
import type { DataSource } from '../types.js';
import { FedModel } from '../fed-model.js';
import type { EvalMessage, StepMessage, TrainMessage, WorkerInit, WorkerMessage } from './protocol.js';
import { shardGradients, weightRefs, type WeightRef } from './shard.js';

interface Replica {
  model: tfl.LayersModel;
  refs: WeightRef[];
  dropouts: Array<{ seed?: number }>;
  /** The model's output count (the one-hot width; the data may use fewer classes). */
  numOutputs: number;
  weights: Float32Array;
  out: Float32Array;
  data?: DataSource;
  /** The replica as a FedModel, for whole training runs (learner pool). */
  fed: FedModel;
}

async function start(init: WorkerInit): Promise<Replica> {
  await initWasmBackend();
  enableBlasKernels(init.blas ? 'on' : 'off');
  const model = await tfl.models.modelFromJSON({ modelTopology: JSON.parse(init.modelJson) as tf.io.ModelJSON['modelTopology'] });
  const refs = weightRefs(model);
  return {
    fed: new FedModel('replica', model),
    model,
    refs,
    dropouts: model.layers.filter((l) => l.getClassName() === 'Dropout') as unknown as Array<{ seed?: number }>,
    numOutputs: model.outputs[0].shape[1] as number,
    weights: new Float32Array(init.weights),
    out: new Float32Array(init.out),
  };
}

/** Copies the shared weights into the replica's variables (bit-exact). */
function loadWeights(r: Replica): void {
  for (const { spec, variable } of r.refs) {
    const t = tf.tensor(r.weights.slice(spec.offset, spec.offset + spec.size), spec.shape, 'float32');
    variable.write(t);
    t.dispose();
  }
}

function step(r: Replica, msg: StepMessage): WorkerMessage {
  if (r.data === undefined) throw new Error('training worker: step before data');
  loadWeights(r);
  r.dropouts.forEach((d, i) => (d.seed = msg.seeds[i]));
  const batch = makeBatch(r.data, msg.indices, 0, msg.indices.length, r.numOutputs);
  try {
    const { loss, correct } = shardGradients(r.model, r.refs, batch, r.out);
    return { type: 'done', loss, correct };
  } finally {
    disposeBatch(batch);
  }
}

/** One learner's whole local training on this thread: the same code and kernels as the main thread's. */
async function trainWhole(r: Replica, msg: TrainMessage): Promise<WorkerMessage> {
  r.fed.setWeights(msg.weights);
  const result = await r.fed.train(msg.data, { ...msg.options, threads: 1 });
  return { type: 'trained', weights: r.fed.getWeights(), result };
}

/** Loss sum and correct count over one contiguous range (data-parallel evaluation). */
async function evaluateRange(r: Replica, msg: EvalMessage): Promise<WorkerMessage> {
  loadWeights(r);
  const { data, start, end } = msg;
  const size = data.sampleShape.reduce((a, b) => a * b, 1);
  const part: DataSource = {
    features: data.features.subarray(start * size, end * size),
    labels: data.labels.subarray(start, end),
    sampleShape: data.sampleShape,
    numClasses: data.numClasses,
    length: end - start,
  };
  const result = await r.fed.evaluate(part, { batchSize: msg.batchSize });
  return { type: 'evaluated', lossSum: result.loss * result.numSamples, correct: Math.round(result.accuracy * result.numSamples) };
}

async function main(): Promise<void> {
  const port = parentPort;
  if (port === null) throw new Error('training worker: not started as a worker thread');
  let replica: Replica;
  try {
    replica = await start(workerData as WorkerInit);
  } catch (err) {
    port.postMessage({ type: 'error', message: err instanceof Error ? err.message : String(err) } satisfies WorkerMessage);
    return;
  }
  port.postMessage({ type: 'ready' } satisfies WorkerMessage);
  port.on('message', (msg: StepMessage | TrainMessage | EvalMessage | { type: 'data'; data: DataSource } | { type: 'close' }) => {
    try {
      if (msg.type === 'train' || msg.type === 'eval') {
        (msg.type === 'train' ? trainWhole(replica, msg) : evaluateRange(replica, msg)).then(
          (reply) => port.postMessage(reply),
          (err: unknown) => port.postMessage({ type: 'error', message: err instanceof Error ? err.message : String(err) } satisfies WorkerMessage),
        );
      } else if (msg.type === 'data') {
        replica.data = msg.data;
      } else if (msg.type === 'step') {
        port.postMessage(step(replica, msg));
      } else {
        replica.fed.dispose();
        port.close();
      }
    } catch (err) {
      port.postMessage({ type: 'error', message: err instanceof Error ? err.message : String(err) } satisfies WorkerMessage);
    }
  });
}

void main();
