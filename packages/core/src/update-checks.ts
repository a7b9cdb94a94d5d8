/**
 * The trust boundary between a learner's train reply and the aggregators: every scalar a rule
 * consumes is checked against bounds here, before a `ClientUpdate` exists, so no rule ever
 * multiplies a lie. Tensors are checked by serde.ts / compression.ts (names, shapes, dtypes,
 * finiteness); this file checks the body and bounds the update's distance from the global model.
 *
 * Bounds (docs/reliability.md, "Hostile learners"):
 * - `num_samples`: integer in 1..min(max_samples, the count the learner announced at registration).
 * - `local_steps` (optional): integer in 0..num_samples x max(local_epochs, 100): a batch holds at
 *   least one sample, and a learner may override local_epochs (up to 100 passes are accepted).
 * - `meta`: at most 32 keys; numbers finite; strings at most 256 characters; `momentum` in [0, 1);
 *   `lr` finite and > 0.
 * - `metrics`: non-finite numbers become NaN (they only feed the round's reported means).
 */
import { PayloadMismatchError } from './serde.js';

/** Learners may run more local epochs than the trainer asks for; steps beyond this are lies. */
export const MAX_LOCAL_EPOCHS_ACCEPTED = 100;
const MAX_META_KEYS = 32;
const MAX_META_STRING = 256;

export interface ReplyBounds {
  /** The trainer's upper bound on num_samples (settings.maxSamplesPerUpdate, default 1e9). */
  maxSamples: number;
  /** What the learner announced when it registered (RegistrationKeys.numSamples), if anything. */
  announcedSamples?: number;
  /** The trainer's local_epochs. */
  localEpochs: number;
}

export interface CheckedScalars {
  numSamples: number;
  localSteps?: number;
  meta: Record<string, number | string | boolean>;
  metrics: { loss: number; accuracy: number; seconds: number; samplesPerSecond: number };
}

/** Parses the announced sample count of a registration; undefined when absent or not a positive integer. */
export function announcedSampleCount(raw: string | undefined): number | undefined {
  if (raw === undefined || !/^\d{1,15}$/.test(raw)) return undefined;
  const n = Number(raw);
  return n > 0 ? n : undefined;
}

/** Validates the scalars of a train reply body; throws a PayloadMismatchError naming the field. */
export function checkReplyScalars(reply: Record<string, unknown>, bounds: ReplyBounds): CheckedScalars {
  const numSamples = checkNumSamples(reply.num_samples, bounds);
  return {
    numSamples,
    localSteps: checkLocalSteps(reply.local_steps, numSamples, bounds.localEpochs),
    meta: checkMeta(reply.meta),
    metrics: checkMetrics(reply.metrics),
  };
}

function checkNumSamples(value: unknown, bounds: ReplyBounds): number {
  const cap = Math.min(bounds.maxSamples, bounds.announcedSamples ?? Infinity);
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > cap) {
    const why = bounds.announcedSamples !== undefined && bounds.announcedSamples < bounds.maxSamples ? ' (the count it announced)' : '';
    throw new PayloadMismatchError(`num_samples must be an integer in 1..${cap}${why}, got ${JSON.stringify(value)}`);
  }
  return value;
}

function checkLocalSteps(value: unknown, numSamples: number, localEpochs: number): number | undefined {
  if (value === undefined || value === null) return undefined;
  const cap = numSamples * Math.max(localEpochs, MAX_LOCAL_EPOCHS_ACCEPTED);
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > cap) {
    throw new PayloadMismatchError(
      `local_steps must be an integer in 0..${cap} (num_samples x max(local_epochs, ${MAX_LOCAL_EPOCHS_ACCEPTED})), got ${JSON.stringify(value)}`,
    );
  }
  return value;
}

function checkMeta(value: unknown): Record<string, number | string | boolean> {
  if (value === undefined || value === null) return {};
  if (typeof value !== 'object' || Array.isArray(value)) throw new PayloadMismatchError('meta must be an object');
  const entries = Object.entries(value as Record<string, unknown>);
  if (entries.length > MAX_META_KEYS) throw new PayloadMismatchError(`meta has ${entries.length} keys, at most ${MAX_META_KEYS} accepted`);
  const meta: Record<string, number | string | boolean> = {};
  for (const [key, v] of entries) {
    if (typeof v === 'number') {
      if (!Number.isFinite(v)) throw new PayloadMismatchError(`meta.${key} must be finite, got ${v}`);
    } else if (typeof v === 'string') {
      if (v.length > MAX_META_STRING) throw new PayloadMismatchError(`meta.${key} is longer than ${MAX_META_STRING} characters`);
    } else if (typeof v !== 'boolean') {
      throw new PayloadMismatchError(`meta.${key} must be a number, string or boolean, got ${v === null ? 'null' : typeof v}`);
    }
    meta[key] = v;
  }
  const { momentum, lr } = meta;
  if (momentum !== undefined && !(typeof momentum === 'number' && momentum >= 0 && momentum < 1)) {
    throw new PayloadMismatchError(`meta.momentum must be a number in [0, 1), got ${JSON.stringify(momentum)}`);
  }
  if (lr !== undefined && !(typeof lr === 'number' && lr > 0)) {
    throw new PayloadMismatchError(`meta.lr must be a number > 0, got ${JSON.stringify(lr)}`);
  }
  return meta;
}

function checkMetrics(value: unknown): CheckedScalars['metrics'] {
  const m = (value && typeof value === 'object' ? value : {}) as Record<string, unknown>;
  const num = (v: unknown, fallback: number) => (typeof v === 'number' && Number.isFinite(v) ? v : fallback);
  return {
    loss: num(m.loss, NaN),
    accuracy: num(m.accuracy, NaN),
    seconds: Math.max(0, num(m.seconds, 0)),
    samplesPerSecond: Math.max(0, num(m.samples_per_second, 0)),
  };
}

/**
 * Caps the L2 norm of `update - global` at `maxNorm` by scaling the delta, in place
 * (`update_norm_clip`). Returns the delta's norm before clipping.
 */
export function clipUpdateNorm(update: Float32Array, global: Float32Array, maxNorm: number): number {
  let sq = 0;
  for (let i = 0; i < update.length; i++) {
    const d = update[i]! - global[i]!;
    sq += d * d;
  }
  const norm = Math.sqrt(sq);
  if (norm > maxNorm) {
    const scale = maxNorm / norm;
    for (let i = 0; i < update.length; i++) update[i] = global[i]! + (update[i]! - global[i]!) * scale;
  }
  return norm;
}

/** Index of the first non-finite value, or -1 when every value is finite. */
export function firstNonFinite(values: ArrayLike<number>): number {
  for (let i = 0; i < values.length; i++) {
    if (values[i]! - values[i]! !== 0) return i;
  }
  return -1;
}
