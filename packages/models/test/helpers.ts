import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import type { DataSource } from '../src/index.js';

/** Runs every test of a file on the pure-JS cpu backend (deterministic, no native deps). */
export async function useCpuBackend(): Promise<void> {
  // Silences tfjs' "install the node backend" banner in test output.
  tf.env().set('IS_TEST', true);
  await tf.setBackend('cpu');
  await tf.ready();
}

/** Tiny deterministic PRNG for test data. */
export function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 4294967296;
  };
}

/**
 * Linearly separable blobs: class k is centred at +3 on coordinate k (mod dim), with uniform
 * noise in [-1, 1] everywhere, so a linear model can reach 100 %.
 */
export function blobs(n: number, sampleShape: number[], numClasses: number, seed = 1): DataSource {
  const rand = lcg(seed);
  const size = sampleShape.reduce((a, b) => a * b, 1);
  const features = new Float32Array(n * size);
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const y = i % numClasses;
    labels[i] = y;
    for (let j = 0; j < size; j++) features[i * size + j] = rand() * 2 - 1;
    features[i * size + (y % size)] += 3;
  }
  return { features, labels, sampleShape, numClasses, length: n };
}

/** Euclidean distance between two flat vectors over the given index ranges. */
export function distance(a: Float32Array, b: Float32Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += (a[i] - b[i]) ** 2;
  return Math.sqrt(s);
}
