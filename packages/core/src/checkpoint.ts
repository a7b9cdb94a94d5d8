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
import { basename, join } from 'node:path';
import type { TensorSpec } from '@oiafed/aggregators';
import { firstNonFinite } from './update-checks.js';

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

/**
 * Writes a checkpoint. A state with a non-finite weight or aggregator value is refused (throws)
 * before anything is written: a poisoned model must never become the one `--resume` starts from.
 */
export function writeCheckpoint(dir: string, state: CheckpointState, keep = 3): string {
  assertFiniteState(state, `checkpoint of round ${state.round}`);
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

/**
 * The newest complete checkpoint in `dir`, or undefined when there is none. Everything read is
 * checked: `LATEST` must name a `round-NNNNNN` folder inside `dir` (no path), the manifest's
 * fields must have their types, and weights and aggregator values must be finite.
 */
export function readLatestCheckpoint(dir: string): CheckpointState | undefined {
  const pointer = join(dir, LATEST);
  if (!existsSync(pointer)) return undefined;
  const folder = join(dir, checkedFolderName(readFileSync(pointer, 'utf8').trim(), pointer));
  const manifestFile = join(folder, 'manifest.json');
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(manifestFile, 'utf8'));
  } catch (error) {
    throw new Error(`${manifestFile}: unreadable checkpoint manifest: ${(error as Error).message}`);
  }
  const manifest = checkManifest(parsed, manifestFile);
  const weights = toFloat32(readFileSync(join(folder, 'weights.bin')), join(folder, 'weights.bin'));
  const expected = manifest.layout.reduce((sum, spec) => sum + spec.size, 0);
  if (weights.length !== expected) {
    throw new Error(`${folder}/weights.bin: ${weights.length} values, the layout describes ${expected}`);
  }
  const packed = toFloat32(readFileSync(join(folder, 'vectors.bin')), join(folder, 'vectors.bin'));
  const aggregatorState: Record<string, Float32Array | number> = { ...manifest.scalars };
  for (const v of manifest.vectors) {
    if (v.offset + v.length > packed.length) {
      throw new Error(`${manifestFile}: vector "${v.key}" ends at ${v.offset + v.length}, vectors.bin holds ${packed.length} values`);
    }
    aggregatorState[v.key] = packed.slice(v.offset, v.offset + v.length);
  }
  const state: CheckpointState = {
    round: manifest.round,
    weights,
    layout: manifest.layout,
    aggregatorType: manifest.aggregator,
    aggregatorState,
    seed: manifest.seed,
    expName: manifest.exp_name,
  };
  assertFiniteState(state, folder);
  return state;
}

/** LATEST holds a bare folder name; anything else (a path, `..`) is refused, never followed. */
function checkedFolderName(name: string, pointer: string): string {
  if (!/^round-\d{6,}$/.test(name) || basename(name) !== name) {
    throw new Error(`${pointer}: names ${JSON.stringify(name.slice(0, 80))}, expected a round-NNNNNN folder inside the checkpoint dir`);
  }
  return name;
}

const isInt = (v: unknown, min: number): v is number => typeof v === 'number' && Number.isInteger(v) && v >= min;

function checkLayout(layout: unknown, file: string): TensorSpec[] {
  if (!Array.isArray(layout)) throw new Error(`${file}: "layout" must be an array`);
  let offset = 0;
  layout.forEach((spec: Record<string, unknown>, i) => {
    const shapeOk = Array.isArray(spec?.shape) && spec.shape.every((d: unknown) => isInt(d, 0));
    if (typeof spec?.name !== 'string' || !shapeOk || spec.offset !== offset || !isInt(spec.size, 0)) {
      throw new Error(`${file}: layout[${i}] must be {name: string, shape: integer[], offset: ${offset}, size: integer}`);
    }
    offset += spec.size;
  });
  return layout as TensorSpec[];
}

/** Type-checks a parsed manifest field by field, naming the first bad one. */
function checkManifest(raw: unknown, file: string): Manifest {
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw new Error(`${file}: the manifest must be a JSON object`);
  const m = raw as Record<string, unknown>;
  const fail = (key: string, expected: string) => {
    throw new Error(`${file}: "${key}" must be ${expected}, got ${JSON.stringify(m[key])?.slice(0, 60)}`);
  };
  if (m.format !== FORMAT) fail('format', `"${FORMAT}"`);
  if (!isInt(m.round, 1)) fail('round', 'an integer >= 1');
  if (!isInt(m.seed, -Number.MAX_SAFE_INTEGER)) fail('seed', 'an integer');
  if (typeof m.exp_name !== 'string') fail('exp_name', 'a string');
  if (typeof m.aggregator !== 'string') fail('aggregator', 'a string');
  checkLayout(m.layout, file);
  const vectors = m.vectors;
  const vectorOk = (v: Record<string, unknown>) => typeof v?.key === 'string' && isInt(v.offset, 0) && isInt(v.length, 0);
  if (!Array.isArray(vectors) || !vectors.every(vectorOk)) fail('vectors', 'an array of {key, offset, length}');
  const scalars = m.scalars;
  const scalarsOk = scalars && typeof scalars === 'object' && !Array.isArray(scalars) && Object.values(scalars).every((v) => typeof v === 'number');
  if (!scalarsOk) fail('scalars', 'an object of numbers');
  return m as unknown as Manifest;
}

function assertFiniteState(state: CheckpointState, where: string): void {
  const bad = firstNonFinite(state.weights);
  if (bad >= 0) throw new Error(`${where}: weight ${bad} is ${state.weights[bad]}; refusing a non-finite model`);
  for (const [key, value] of Object.entries(state.aggregatorState)) {
    const at = typeof value === 'number' ? (Number.isFinite(value) ? -1 : 0) : firstNonFinite(value);
    if (at >= 0) throw new Error(`${where}: aggregator state "${key}" is not finite (index ${at}); refusing it`);
  }
}
