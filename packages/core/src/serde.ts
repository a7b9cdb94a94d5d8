/**
 * The one place that converts between domain values (flat Float32Array weights plus a layout)
 * and transport tensors. Weights travel one tensor per model tensor, named and shaped, as
 * zero-copy subarray views on the sending side; model-sized extras (control variates) travel
 * as single flat tensors under the `extra/` prefix.
 */
import type { TensorSpec } from '@oiafed/aggregators';
import type { Tensor } from '@oiafed/transport';

const WEIGHT_PREFIX = 'weights/';
const EXTRA_PREFIX = 'extra/';

/** Raised when received tensors do not match the expected layout; `reason` is safe to send back. */
export class PayloadMismatchError extends Error {
  readonly code = 'INVALID_ARGUMENT';
  constructor(readonly reason: string) {
    super(reason);
    this.name = 'PayloadMismatchError';
  }
}

export function weightsToTensors(weights: Float32Array, layout: readonly TensorSpec[]): Tensor[] {
  return layout.map((spec) => ({
    name: WEIGHT_PREFIX + spec.name,
    shape: [...spec.shape],
    dtype: 'float32' as const,
    data: weights.subarray(spec.offset, spec.offset + spec.size),
  }));
}

export function extrasToTensors(extras: Record<string, Float32Array> | undefined): Tensor[] {
  if (!extras) return [];
  return Object.entries(extras).map(([key, data]) => ({
    name: EXTRA_PREFIX + key,
    shape: [data.length],
    dtype: 'float32' as const,
    data,
  }));
}

/**
 * Reassembles a flat weight vector from received tensors, checking every name, shape, dtype
 * and value against the layout. Non-finite values are rejected here so that no aggregation rule
 * ever sees them.
 */
export function tensorsToWeights(tensors: readonly Tensor[] | undefined, layout: readonly TensorSpec[]): Float32Array {
  const weightTensors = (tensors ?? []).filter((t) => t.name.startsWith(WEIGHT_PREFIX));
  if (weightTensors.length !== layout.length) {
    throw new PayloadMismatchError(
      `expected ${layout.length} weight tensors, got ${weightTensors.length}`,
    );
  }
  const total = layout.reduce((sum, spec) => sum + spec.size, 0);
  const flat = new Float32Array(total);
  layout.forEach((spec, index) => {
    const tensor = weightTensors[index]!;
    const expectedName = WEIGHT_PREFIX + spec.name;
    if (tensor.name !== expectedName) {
      throw new PayloadMismatchError(`tensor ${index} is "${tensor.name}", expected "${expectedName}"`);
    }
    if (tensor.dtype !== 'float32') {
      throw new PayloadMismatchError(`${spec.name}: dtype ${tensor.dtype}, expected float32`);
    }
    if (!sameShape(tensor.shape, spec.shape) || tensor.data.length !== spec.size) {
      throw new PayloadMismatchError(
        `${spec.name}: shape [${tensor.shape.join(',')}] (${tensor.data.length} values), expected [${spec.shape.join(',')}]`,
      );
    }
    assertFinite(tensor.data as Float32Array, spec.name);
    flat.set(tensor.data as Float32Array, spec.offset);
  });
  return flat;
}

/** Reads `extra/<key>` tensors, each checked for length and finiteness. */
export function tensorsToExtras(
  tensors: readonly Tensor[] | undefined,
  expectedLength: number,
): Record<string, Float32Array> {
  const extras: Record<string, Float32Array> = {};
  for (const tensor of tensors ?? []) {
    if (!tensor.name.startsWith(EXTRA_PREFIX)) continue;
    const key = tensor.name.slice(EXTRA_PREFIX.length);
    if (tensor.dtype !== 'float32' || tensor.data.length !== expectedLength) {
      throw new PayloadMismatchError(
        `extra "${key}": expected float32[${expectedLength}], got ${tensor.dtype}[${tensor.data.length}]`,
      );
    }
    assertFinite(tensor.data as Float32Array, key);
    extras[key] = tensor.data as Float32Array;
  }
  return extras;
}

function assertFinite(values: Float32Array, name: string): void {
  for (let i = 0; i < values.length; i++) {
    // x - x is NaN exactly for NaN and +-Infinity: one subtraction per value, no branches on the common path.
    if (values[i]! - values[i]! !== 0) {
      throw new PayloadMismatchError(`${name}: non-finite value ${values[i]} at index ${i}`);
    }
  }
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((dim, i) => dim === b[i]);
}
