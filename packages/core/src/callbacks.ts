/**
 * Trainer callbacks and the built-in ones the configs name (`early_stopping`,
 * `model_checkpoint`). User code registers more with `registerCallback`.
 */
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TensorSpec } from '@oiafed/aggregators';
import { parseArgs, type ArgsSchema } from '@oiafed/component';
import type { RoundRecord } from '@oiafed/tracker';
import { lookupComponent, registerComponent } from './registry.js';

/** One round of the trainer's history (one type, defined in @oiafed/tracker); also the JSONL line written to the run directory. */
export type { RoundRecord };

export interface RoundControl {
  /** Ends training after this round; the reason goes into the log and the summary. */
  stop(reason: string): void;
  globalWeights(): Float32Array;
  readonly layout: readonly TensorSpec[];
}

export interface TrainerCallback {
  onTrainStart?(info: { maxRounds: number; startRound: number }): void | Promise<void>;
  onRoundStart?(round: number): void | Promise<void>;
  onRoundEnd?(record: RoundRecord, control: RoundControl): void | Promise<void>;
  onTrainEnd?(history: readonly RoundRecord[]): void | Promise<void>;
}

export type CallbackFactory = (args: Record<string, unknown>, context: { runDir: string }) => TrainerCallback;

interface CallbackEntry {
  factory: CallbackFactory;
  argsSchema?: ArgsSchema;
}

/**
 * Registers a callback type for `callbacks[].type`, with an optional schema for its `args` (the
 * JSON-Schema subset aggregators and models use). The same factory again is a no-op; another
 * factory under a taken type throws unless `options.replace` (the rule of every OiaFed registry).
 */
export function registerCallback(
  type: string,
  factory: CallbackFactory,
  options: { argsSchema?: ArgsSchema; replace?: boolean } = {},
): void {
  if (typeof factory !== 'function') throw new Error(`registerCallback: factory for "${type}" must be a function, got ${typeof factory}`);
  const entry: CallbackEntry = { factory, argsSchema: options.argsSchema };
  registerComponent('callback', type, entry, { replace: options.replace });
}

/**
 * A config entry's args checked against its type's schema, defaults filled in; throws on an
 * unknown type or bad args. `oiafed validate` runs it without building the callback.
 */
export function callbackArgs(config: { type: string; args?: Record<string, unknown> }): Record<string, unknown> {
  const entry = lookupComponent<CallbackEntry>('callback', config.type);
  return parseArgs(`callback "${config.type}"`, entry.argsSchema, config.args ?? {});
}

/** Builds a callback from a config entry; its args are checked against the registered schema first. */
export function createCallback(
  config: { type: string; args?: Record<string, unknown> },
  context: { runDir: string },
): TrainerCallback {
  const args = callbackArgs(config);
  return lookupComponent<CallbackEntry>('callback', config.type).factory(args, context);
}

type Mode = 'max' | 'min';

function readMetric(record: RoundRecord, metric: string): number | undefined {
  const value = (record as unknown as Record<string, unknown>)[metric];
  return typeof value === 'number' && Number.isFinite(value) ? value : undefined;
}

function improves(value: number, best: number | undefined, mode: Mode, minDelta: number): boolean {
  if (best === undefined) return true;
  return mode === 'max' ? value > best + minDelta : value < best - minDelta;
}

function parseMode(value: unknown, type: string): Mode {
  if (value === undefined) return 'max';
  if (value === 'max' || value === 'min') return value;
  throw new Error(`${type}.mode: expected "max" or "min", got ${JSON.stringify(value)}`);
}

/** Stops training when `metric` has not improved for `patience` evaluated rounds. */
export function earlyStopping(args: Record<string, unknown>): TrainerCallback {
  const patience = Number(args.patience ?? 5);
  const metric = String(args.metric ?? 'accuracy');
  const mode = parseMode(args.mode, 'early_stopping');
  const minDelta = Number(args.min_delta ?? 0);
  if (!Number.isInteger(patience) || patience < 1) {
    throw new Error(`early_stopping.patience: expected an integer >= 1, got ${JSON.stringify(args.patience)}`);
  }
  let best: number | undefined;
  let stale = 0;
  return {
    onRoundEnd(record, control) {
      const value = readMetric(record, metric);
      if (value === undefined) return;
      if (improves(value, best, mode, minDelta)) {
        best = value;
        stale = 0;
        return;
      }
      stale += 1;
      if (stale >= patience) {
        control.stop(`early_stopping: ${metric} did not improve for ${patience} evaluated rounds (best ${best})`);
      }
    },
  };
}

/**
 * Saves the global model (raw little-endian float32 + a JSON layout) after each evaluated round,
 * or only when `metric` improves with `save_best: true`. Writes go to a temp name first so a
 * crash never leaves a torn file.
 */
export function modelCheckpoint(args: Record<string, unknown>, context: { runDir: string }): TrainerCallback {
  const saveDir = String(args.save_dir ?? join(context.runDir, 'models'));
  const saveBest = Boolean(args.save_best ?? true);
  const metric = String(args.metric ?? 'accuracy');
  const mode = parseMode(args.mode, 'model_checkpoint');
  let best: number | undefined;
  return {
    onRoundEnd(record, control) {
      const value = readMetric(record, metric);
      if (saveBest) {
        if (value === undefined || !improves(value, best, mode, 0)) return;
        best = value;
      }
      const name = saveBest ? 'best' : `round-${record.round}`;
      writeModelFiles(saveDir, name, control.globalWeights(), control.layout, { round: record.round, [metric]: value });
    },
  };
}

export function writeModelFiles(
  dir: string,
  name: string,
  weights: Float32Array,
  layout: readonly TensorSpec[],
  info: Record<string, unknown>,
): void {
  mkdirSync(dir, { recursive: true });
  const weightsFile = join(dir, `${name}.weights.bin`);
  const metaFile = join(dir, `${name}.json`);
  writeFileSync(`${weightsFile}.tmp`, new Uint8Array(weights.buffer, weights.byteOffset, weights.byteLength));
  renameSync(`${weightsFile}.tmp`, weightsFile);
  writeFileSync(`${metaFile}.tmp`, JSON.stringify({ ...info, layout }, null, 2));
  renameSync(`${metaFile}.tmp`, metaFile);
}

const MODE: ArgsSchema = { type: 'string', enum: ['max', 'min'] };

/** `callbacks[].args` of early_stopping; unknown keys are refused with a did-you-mean. */
export const earlyStoppingSchema: ArgsSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    patience: { type: 'integer', minimum: 1 },
    metric: { type: 'string' },
    mode: MODE,
    min_delta: { type: 'number', minimum: 0 },
  },
};

/** `callbacks[].args` of model_checkpoint. */
export const modelCheckpointSchema: ArgsSchema = {
  type: 'object',
  additionalProperties: false,
  properties: { save_dir: { type: 'string' }, save_best: { type: 'boolean' }, metric: { type: 'string' }, mode: MODE },
};

export function registerBuiltinCallbacks(): void {
  registerCallback('early_stopping', earlyStopping, { argsSchema: earlyStoppingSchema, replace: true });
  registerCallback('model_checkpoint', modelCheckpoint, { argsSchema: modelCheckpointSchema, replace: true });
}
