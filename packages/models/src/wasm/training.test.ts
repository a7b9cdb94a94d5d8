import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import * as tfl from '@tensorflow/tfjs-layers';
import { beforeAll, describe, expect, it } from 'vitest';
import { initWasmBackend } from './index.js';

function lcg(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

/** conv+bn+relu+pool, a stride-2 valid conv, dense: every patched kernel is on the path. */
function smallModel(): tfl.LayersModel {
  const m = tfl.sequential();
  m.add(tfl.layers.conv2d({ inputShape: [9, 9, 2], filters: 4, kernelSize: 3, padding: 'same' }));
  m.add(tfl.layers.batchNormalization());
  m.add(tfl.layers.activation({ activation: 'relu' }));
  m.add(tfl.layers.maxPooling2d({ poolSize: 2, padding: 'same' }));
  m.add(tfl.layers.conv2d({ filters: 6, kernelSize: 3, strides: 2, activation: 'relu' }));
  m.add(tfl.layers.flatten());
  m.add(tfl.layers.dense({ units: 8, activation: 'relu' }));
  m.add(tfl.layers.dense({ units: 3, activation: 'softmax' }));
  return m;
}

/** Builds the model on `backend` with the given initial weights and an SGD optimizer. */
function build(backend: string, factory: () => tfl.LayersModel, init: Float32Array[] | null, lr: number): tfl.LayersModel {
  tf.setBackend(backend);
  const m = factory();
  if (init != null) m.setWeights(m.getWeights().map((w, i) => tf.tensor(init[i]!, w.shape)));
  m.compile({ optimizer: tf.train.sgd(lr), loss: 'categoricalCrossentropy', metrics: ['accuracy'] });
  return m;
}

function weightsOf(m: tfl.LayersModel): Float32Array[] {
  return m.getWeights().map((w) => Float32Array.from(w.dataSync() as Float32Array));
}

beforeAll(async () => {
  await initWasmBackend();
});

describe('training on patched wasm', () => {
  it('3 SGD steps from identical weights give the cpu backend\'s weights', async () => {
    const rnd = lcg(7);
    const xs = Float32Array.from({ length: 4 * 9 * 9 * 2 }, () => rnd() * 2 - 1);
    const labels = [0, 2, 1, 2];
    const init = weightsOf(build('cpu', smallModel, null, 0.1));
    const results: Float32Array[][] = [];
    for (const backend of ['cpu', 'wasm']) {
      const m = build(backend, smallModel, init, 0.1);
      const x = tf.tensor(xs, [4, 9, 9, 2]);
      const y = tf.oneHot(tf.tensor1d(labels, 'int32'), 3);
      for (let step = 0; step < 3; step++) await m.trainOnBatch(x, y);
      results.push(weightsOf(m));
      tf.dispose([x, y]);
    }
    let max = 0;
    let moved = 0;
    results[0]!.forEach((w, i) =>
      w.forEach((v, k) => {
        max = Math.max(max, Math.abs(v - results[1]![i]![k]!));
        moved = Math.max(moved, Math.abs(v - init[i]![k]!));
      }),
    );
    process.stdout.write(`[patched-wasm] 3 SGD steps: max |w_wasm - w_cpu| = ${max.toExponential(2)} (max weight change ${moved.toExponential(2)})\n`);
    expect(moved).toBeGreaterThan(1e-3);
    expect(max).toBeLessThan(1e-5);
  });

  it('learns a separable synthetic image task as well as cpu', async () => {
    // Class = which quadrant of an 8x8 image carries a bright blob; plus noise everywhere.
    const make = (n: number, seed: number): { x: Float32Array; y: number[] } => {
      const rnd = lcg(seed);
      const x = new Float32Array(n * 8 * 8);
      const y: number[] = [];
      for (let s = 0; s < n; s++) {
        const cls = Math.floor(rnd() * 3);
        y.push(cls);
        for (let r = 0; r < 8; r++) {
          for (let c = 0; c < 8; c++) {
            const inBlob = cls === 0 ? r < 4 && c < 4 : cls === 1 ? r < 4 && c >= 4 : r >= 4;
            x[s * 64 + r * 8 + c] = (inBlob ? 0.8 : -0.2) + (rnd() - 0.5) * 0.8;
          }
        }
      }
      return { x, y };
    };
    const factory = (): tfl.LayersModel => {
      const m = tfl.sequential();
      m.add(tfl.layers.conv2d({ inputShape: [8, 8, 1], filters: 4, kernelSize: 3, activation: 'relu' }));
      m.add(tfl.layers.maxPooling2d({ poolSize: 2 }));
      m.add(tfl.layers.flatten());
      m.add(tfl.layers.dense({ units: 3, activation: 'softmax' }));
      return m;
    };
    const train = make(192, 11);
    const test = make(96, 12);
    const init = weightsOf(build('cpu', factory, null, 0.2));
    const acc: Record<string, number> = {};
    for (const backend of ['cpu', 'wasm']) {
      const m = build(backend, factory, init, 0.2);
      const x = tf.tensor(train.x, [192, 8, 8, 1]);
      const y = tf.oneHot(tf.tensor1d(train.y, 'int32'), 3);
      await m.fit(x, y, { batchSize: 16, epochs: 4, shuffle: false, verbose: 0 });
      const tx = tf.tensor(test.x, [96, 8, 8, 1]);
      const pred = tf.argMax(m.predict(tx) as tf.Tensor, 1).dataSync();
      acc[backend] = test.y.filter((v, i) => v === pred[i]).length / test.y.length;
      tf.dispose([x, y, tx]);
    }
    process.stdout.write(`[patched-wasm] synthetic task accuracy: cpu ${acc['cpu']} wasm ${acc['wasm']}\n`);
    expect(acc['wasm']).toBeGreaterThan(0.9);
    expect(Math.abs(acc['wasm']! - acc['cpu']!)).toBeLessThanOrEqual(0.03);
  });
});
