/**
 * Synthetic(alpha, beta) of the FedProx paper (Li et al., "Federated Optimization in
 * Heterogeneous Networks", MLSys 2020, after Shamir et al. 2014). Device k has
 *   y = argmax(softmax(W_k x + b_k)),  W_k ~ N(u_k, 1), b_k ~ N(u_k, 1), u_k ~ N(0, alpha),
 *   x ~ N(v_k, Sigma), Sigma = diag(j^-1.2), v_k[j] ~ N(B_k, 1), B_k ~ N(0, beta).
 * alpha controls how much the local models differ, beta how much the local inputs differ.
 * Synthetic-IID uses one W, b ~ N(0, 1) for every device and v_k = 0.
 * As in the paper's generator, alpha and beta are standard deviations (numpy's `scale`).
 *
 * The data is born federated: each device is generated from its own seed, derived from the
 * dataset seed and the device id, so any node can make device k (or all of them) alone and all
 * nodes agree.
 */
import { ArgReader } from './args.js';
import { createDataset } from './array-dataset.js';
import { createRng, deriveSeed, type Rng } from './rng.js';
import type { ArrayDataset, DatasetLoader, DatasetSpec, LoadedSplits, LoadOptions } from './types.js';

/** Resolved arguments of a synthetic dataset. */
export interface SyntheticConfig {
  alpha: number;
  beta: number;
  iid: boolean;
  numFeatures: number;
  numClasses: number;
  samplesPerClient: number;
  numClients: number;
  /** Whether numClients was given in args (rather than taken from the partition). */
  numClientsExplicit: boolean;
  testFraction: number;
  seed: number;
}

/** Default number of devices when neither args.num_clients nor partition.num_partitions is set (as FedProx). */
export const SYNTHETIC_DEFAULT_CLIENTS = 30;

/** Reads `spec.args` of a synthetic dataset; see the README for the meaning of each key. */
export function syntheticConfig(spec: DatasetSpec, options: LoadOptions): SyntheticConfig {
  const args = new ArgReader('synthetic', spec.args ?? {});
  const numClientsExplicit = args.has('num_clients');
  const fromPartition = spec.partition?.num_partitions;
  return {
    alpha: args.number('alpha', 0.5, { min: 0 }),
    beta: args.number('beta', 0.5, { min: 0 }),
    iid: args.bool('iid', false),
    numFeatures: args.int('num_features', 60, 1),
    numClasses: args.int('num_classes', 10, 2),
    samplesPerClient: args.int('samples_per_client', 250, 2),
    numClients: args.int('num_clients', typeof fromPartition === 'number' ? fromPartition : SYNTHETIC_DEFAULT_CLIENTS, 1),
    numClientsExplicit,
    testFraction: args.number('test_fraction', 0.2, { min: 0, max: 0.9 }),
    seed: args.number('seed', options.seed ?? 0),
  };
}

interface Device {
  features: Float32Array;
  labels: Int32Array;
}

function normals(rng: Rng, n: number, mean: number): Float64Array {
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = mean + rng.normal();
  return out;
}

/** Generates device `k` (all its samples, train part first). */
export function generateDevice(cfg: SyntheticConfig, k: number): Device {
  const d = cfg.numFeatures;
  const C = cfg.numClasses;
  const rng = createRng(deriveSeed(cfg.seed, 1, k));
  const u = cfg.alpha * rng.normal();
  const B = cfg.beta * rng.normal();
  let v: Float64Array;
  let W: Float64Array;
  let b: Float64Array;
  if (cfg.iid) {
    const g = createRng(deriveSeed(cfg.seed, 2));
    W = normals(g, d * C, 0);
    b = normals(g, C, 0);
    v = new Float64Array(d);
  } else {
    v = normals(rng, d, B);
    W = normals(rng, d * C, u);
    b = normals(rng, C, u);
  }
  const scale = Float64Array.from({ length: d }, (_, j) => Math.sqrt(Math.pow(j + 1, -1.2)));
  const n = cfg.samplesPerClient;
  const features = new Float32Array(n * d);
  const labels = new Int32Array(n);
  const x = new Float64Array(d);
  for (let s = 0; s < n; s++) {
    for (let j = 0; j < d; j++) {
      x[j] = v[j] + scale[j] * rng.normal();
      features[s * d + j] = x[j];
    }
    let best = 0;
    let bestLogit = -Infinity;
    for (let c = 0; c < C; c++) {
      let logit = b[c];
      for (let j = 0; j < d; j++) logit += x[j] * W[j * C + c];
      if (logit > bestLogit) {
        bestLogit = logit;
        best = c;
      }
    }
    labels[s] = best;
  }
  return { features, labels };
}

function trainCount(cfg: SyntheticConfig): number {
  return cfg.samplesPerClient - Math.round(cfg.samplesPerClient * cfg.testFraction);
}

function datasetName(cfg: SyntheticConfig): string {
  return cfg.iid ? 'synthetic_iid' : `synthetic(${cfg.alpha},${cfg.beta})`;
}

/** Device k's train part, or held-out part, as a dataset. */
function devicePart(cfg: SyntheticConfig, dev: Device, part: 'train' | 'test', name: string): ArrayDataset {
  const cut = trainCount(cfg);
  const [from, to] = part === 'train' ? [0, cut] : [cut, cfg.samplesPerClient];
  return createDataset({
    name,
    features: dev.features.slice(from * cfg.numFeatures, to * cfg.numFeatures),
    labels: dev.labels.slice(from, to),
    sampleShape: [cfg.numFeatures],
    numClasses: cfg.numClasses,
  });
}

/** The union over all devices of one part. */
function unionPart(cfg: SyntheticConfig, devices: Device[], part: 'train' | 'test'): ArrayDataset {
  const cut = trainCount(cfg);
  const per = part === 'train' ? cut : cfg.samplesPerClient - cut;
  const from = part === 'train' ? 0 : cut;
  const d = cfg.numFeatures;
  const features = new Float32Array(devices.length * per * d);
  const labels = new Int32Array(devices.length * per);
  devices.forEach((dev, k) => {
    features.set(dev.features.subarray(from * d, (from + per) * d), k * per * d);
    labels.set(dev.labels.subarray(from, from + per), k * per);
  });
  return createDataset({ name: `${datasetName(cfg)}/${part}`, features, labels, sampleShape: [d], numClasses: cfg.numClasses });
}

function allDevices(cfg: SyntheticConfig): Device[] {
  return Array.from({ length: cfg.numClients }, (_, k) => generateDevice(cfg, k));
}

/** Loader of the `synthetic` type: train and test are the unions over all devices. */
export const loadSynthetic: DatasetLoader = async (spec, options): Promise<LoadedSplits> => {
  const cfg = syntheticConfig(spec, options);
  const devices = allDevices(cfg);
  const split = spec.split ?? 'train';
  const out: LoadedSplits = {};
  if (split !== 'test') out.train = unionPart(cfg, devices, 'train');
  if (split !== 'train') out.test = unionPart(cfg, devices, 'test');
  return out;
};

/**
 * Partition loader of `synthetic`: partition k is device k's own train data (no re-partition;
 * the strategy is not used). Returns null, so the generic partitioner runs on the union, when
 * args.num_clients differs from the number of partitions.
 */
export async function loadSyntheticPartition(
  spec: DatasetSpec,
  options: LoadOptions,
  partitionId: number,
  numPartitions: number,
): Promise<LoadedSplits | null> {
  const cfg = syntheticConfig(spec, options);
  if (cfg.numClients !== numPartitions) return null;
  const split = spec.split ?? 'train';
  const out: LoadedSplits = {};
  if (split !== 'test') {
    out.train = devicePart(cfg, generateDevice(cfg, partitionId), 'train', `${datasetName(cfg)}/train[p${partitionId}/${numPartitions}]`);
  }
  if (split !== 'train') out.test = unionPart(cfg, allDevices(cfg), 'test');
  return out;
}
