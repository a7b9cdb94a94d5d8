// The training workload both sides of bench:web run: same model, same data, same settings.
import { createModel, type DataSource } from '@oiafed/models';

export interface Workload {
  model: { type: string; args: Record<string, unknown> };
  inputShape: number[];
  samples: number;
  epochs: number;
  batchSize: number;
}

export const WORKLOADS: Record<string, Omit<Workload, 'samples' | 'epochs'>> = {
  // The browser test's model (issue 17's demo): an MLP on 60 synthetic features.
  mlp: { model: { type: 'mlp', args: { hidden: [64], num_classes: 10, seed: 1 } }, inputShape: [60], batchSize: 32 },
  // Fashion-MNIST's CNN.
  lenet: { model: { type: 'lenet', args: { num_classes: 10, seed: 1 } }, inputShape: [28, 28, 1], batchSize: 32 },
};

/** Deterministic pseudo-random samples in [0, 1) with labels 0..9 (throughput does not depend on the values). */
export function randomData(n: number, sampleShape: number[]): DataSource {
  const size = sampleShape.reduce((a, b) => a * b, 1);
  const features = new Float32Array(n * size);
  let x = 12345;
  for (let i = 0; i < features.length; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    features[i] = x / 2 ** 32;
  }
  const labels = Int32Array.from({ length: n }, (_, i) => i % 10);
  return { features, labels, sampleShape, numClasses: 10, length: n };
}

/** One warm-up epoch on a small slice, then the timed run; samples per second of FedModel.train. */
export async function runWorkload(w: Workload, threads = 1): Promise<{ samplesPerSecond: number; seconds: number }> {
  const model = createModel(w.model, { inputShape: w.inputShape, numClasses: 10 });
  try {
    const options = { batchSize: w.batchSize, lr: 0.01, optimizer: 'sgd' as const, momentum: 0, threads, seed: 1 };
    await model.train(randomData(Math.min(256, w.samples), w.inputShape), { ...options, epochs: 1 });
    const r = await model.train(randomData(w.samples, w.inputShape), { ...options, epochs: w.epochs });
    return { samplesPerSecond: r.samplesPerSecond, seconds: r.seconds };
  } finally {
    model.dispose();
  }
}
