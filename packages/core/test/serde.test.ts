import type { TensorSpec } from '@oiafed/aggregators';
import { describe, expect, it } from 'vitest';
import { PayloadMismatchError, extrasToTensors, tensorsToExtras, tensorsToWeights, weightsToTensors } from '../src/serde.js';

const layout: TensorSpec[] = [
  { name: 'dense/kernel', shape: [2, 3], offset: 0, size: 6, trainable: true, isNormalization: false },
  { name: 'dense/bias', shape: [3], offset: 6, size: 3, trainable: true, isNormalization: false },
];

const weights = Float32Array.from([1, -2, 3.5, 4, 5e-8, -6, 7, 8, 9]);

describe('weights <-> tensors', () => {
  it('round-trips bit-exactly, one named and shaped tensor per layout entry', () => {
    const tensors = weightsToTensors(weights, layout);
    expect(tensors.map((t) => [t.name, t.shape])).toEqual([
      ['weights/dense/kernel', [2, 3]],
      ['weights/dense/bias', [3]],
    ]);
    // Views, not copies: sending never duplicates the model.
    expect(tensors[0]!.data.buffer).toBe(weights.buffer);
    expect(tensorsToWeights(tensors, layout)).toEqual(weights);
  });

  it.each([
    ['a missing tensor', (t: ReturnType<typeof weightsToTensors>) => t.slice(1), /expected 2 weight tensors, got 1/],
    ['a renamed tensor', (t: ReturnType<typeof weightsToTensors>) => [{ ...t[0]!, name: 'weights/x' }, t[1]!], /"weights\/x", expected "weights\/dense\/kernel"/],
    ['a wrong shape', (t: ReturnType<typeof weightsToTensors>) => [{ ...t[0]!, shape: [3, 2] }, t[1]!], /dense\/kernel: shape \[3,2\].*expected \[2,3\]/],
    ['a wrong dtype', (t: ReturnType<typeof weightsToTensors>) => [{ ...t[0]!, dtype: 'int32' as const }, t[1]!], /dtype int32, expected float32/],
    ['a NaN', (t: ReturnType<typeof weightsToTensors>) => [t[0]!, { ...t[1]!, data: Float32Array.from([1, NaN, 3]) }], /dense\/bias: non-finite value NaN at index 1/],
    ['an Infinity', (t: ReturnType<typeof weightsToTensors>) => [t[0]!, { ...t[1]!, data: Float32Array.from([1, 2, -Infinity]) }], /non-finite value -Infinity/],
  ])('rejects %s with a reason that can be sent back', (_, mutate, message) => {
    const tensors = mutate(weightsToTensors(weights, layout));
    expect(() => tensorsToWeights(tensors, layout)).toThrow(PayloadMismatchError);
    expect(() => tensorsToWeights(tensors, layout)).toThrow(message);
  });

  it('carries extras as flat tensors and checks their length', () => {
    const control = Float32Array.from({ length: 9 }, (_, i) => i / 10);
    const tensors = [...weightsToTensors(weights, layout), ...extrasToTensors({ control_delta: control })];
    expect(tensorsToExtras(tensors, 9)).toEqual({ control_delta: control });
    expect(() => tensorsToExtras(tensors, 8)).toThrow(/extra "control_delta": expected float32\[8\], got float32\[9\]/);
  });
});
