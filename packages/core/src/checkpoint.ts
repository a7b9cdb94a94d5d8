/**
 * Trainer checkpoints: everything a resumed run needs to continue exactly where the last one
 * stopped. Each checkpoint is a folder written under a temp name and renamed into place, and
 * `LATEST` is replaced the same way, so a crash at any moment leaves the previous checkpoint
 * intact and readable.
 *
 * Client sampling is seeded per round (seed, round), so the round number is the whole RNG
 * state; learner-side state (SCAFFOLD's client control variates) lives in the learners.
 */
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TensorSpec } from '@oiafed/aggregators';

const LATEST = 'LATEST';
const FORMAT = 'oiafed-checkpoint/1';

export interface CheckpointState {
  round: number;
  weights: Float32Array;
  layout: readonly TensorSpec[];
  aggregatorType: string;
  aggregatorState: Record<string, Float32Array | number>;
  seed: number;
  expName: string;
}

interface Manifest {
  format: string;
  round: number;
  seed: number;
  exp_name: string;
  aggregator: string;
  layout: TensorSpec[];
  written_at: string;
  /** Float32 vectors stored in vectors.bin, in this order, at these element offsets. */
  vectors: Array<{ key: string; offset: number; length: number }>;
  scalars: Record<string, number>;
}

function folderName(round: number): string {
  return `round-${String(round).padStart(6, '0')}`;
}

function asBytes(values: Float32Array): Uint8Array {
  return new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
}

export function writeCheckpoint(dir: string, state: CheckpointState, keep = 3): string {
  mkdirSync(dir, { recursive: true });
  const name = folderName(state.round);
  const staging = join(dir, `.${name}.tmp-${process.pid}`);
  rmSync(staging, { recursive: true, force: true });
  mkdirSync(staging);

  const vectors: Manifest['vectors'] = [];
  const scalars: Record<string, number> = {};
  const parts: Float32Array[] = [];
  let offset = 0;
  for (const [key, value] of Object.entries(state.aggregatorState)) {
    if (typeof value === 'number') {
      scalars[key] = value;
      continue;
    }
    vectors.push({ key, offset, length: value.length });
    parts.push(value);
    offset += value.length;
  }
  const packed = new Float32Array(offset);
  vectors.forEach((v, i) => packed.set(parts[i]!, v.offset));

  writeFileSync(join(staging, 'weights.bin'), asBytes(state.weights));
  writeFileSync(join(staging, 'vectors.bin'), asBytes(packed));
  const manifest: Manifest = {
    format: FORMAT,
    round: state.round,
    seed: state.seed,
    exp_name: state.expName,
    aggregator: state.aggregatorType,
    layout: state.layout.map((spec) => ({ ...spec, shape: [...spec.shape] })),
    written_at: new Date().toISOString(),
    vectors,
    scalars,
  };
  writeFileSync(join(staging, 'manifest.json'), JSON.stringify(manifest, null, 2));

  const final = join(dir, name);
  rmSync(final, { recursive: true, force: true });
  renameSync(staging, final);
  writeFileSync(join(dir, `${LATEST}.tmp`), name);
  renameSync(join(dir, `${LATEST}.tmp`), join(dir, LATEST));
  pruneCheckpoints(dir, keep, name);
  return final;
}

/**
 * Keeps `current` (what LATEST names) and the keep-1 newest others. A folder left by an earlier
 * run with more rounds sorts after `current`; pruning by name alone would delete the checkpoint
 * just written and leave LATEST dangling.
 */
function pruneCheckpoints(dir: string, keep: number, current: string): void {
  if (keep <= 0) return;
  const others = readdirSync(dir)
    .filter((entry) => /^round-\d{6}$/.test(entry) && entry !== current)
    .sort();
  for (const old of others.slice(0, Math.max(0, others.length - (keep - 1)))) {
    rmSync(join(dir, old), { recursive: true, force: true });
  }
}

function toFloat32(bytes: Buffer, file: string): Float32Array {
  if (bytes.byteLength % 4 !== 0) throw new Error(`${file}: ${bytes.byteLength} bytes is not a whole number of float32 values`);
  const copy = new Float32Array(bytes.byteLength / 4);
  new Uint8Array(copy.buffer).set(bytes);
  return copy;
}

/** The newest complete checkpoint in `dir`, or undefined when there is none. */
export function readLatestCheckpoint(dir: string): CheckpointState | undefined {
  const pointer = join(dir, LATEST);
  if (!existsSync(pointer)) return undefined;
  const folder = join(dir, readFileSync(pointer, 'utf8').trim());
  const manifestFile = join(folder, 'manifest.json');
  let manifest: Manifest;
  try {
    manifest = JSON.parse(readFileSync(manifestFile, 'utf8')) as Manifest;
  } catch (error) {
    throw new Error(`${manifestFile}: unreadable checkpoint manifest: ${(error as Error).message}`);
  }
  if (manifest.format !== FORMAT) throw new Error(`${manifestFile}: format "${manifest.format}", expected "${FORMAT}"`);
  const weights = toFloat32(readFileSync(join(folder, 'weights.bin')), join(folder, 'weights.bin'));
  const expected = manifest.layout.reduce((sum, spec) => sum + spec.size, 0);
  if (weights.length !== expected) {
    throw new Error(`${folder}/weights.bin: ${weights.length} values, the layout describes ${expected}`);
  }
  const packed = toFloat32(readFileSync(join(folder, 'vectors.bin')), join(folder, 'vectors.bin'));
  const aggregatorState: Record<string, Float32Array | number> = { ...manifest.scalars };
  for (const v of manifest.vectors) aggregatorState[v.key] = packed.slice(v.offset, v.offset + v.length);
  return {
    round: manifest.round,
    weights,
    layout: manifest.layout,
    aggregatorType: manifest.aggregator,
    aggregatorState,
    seed: manifest.seed,
    expName: manifest.exp_name,
  };
}
