import type * as tfl from '@tensorflow/tfjs-layers';
import type { ArgsSchema } from './args-schema.js';
import type { ModelContext } from './types.js';

/**
 * Builds the tfjs model of one registered type. `args` has already been validated against the
 * type's schema; `ctx` carries the resolved input shape, class count and init seed.
 */
export type ModelFactory = (args: Record<string, unknown>, ctx: ModelContext) => tfl.LayersModel;

/** Options of `registerModel`. */
export interface RegisterModelOptions {
  /** JSON-Schema (subset) for `model.args`; `num_classes`, `input_shape` and `seed` are always allowed. */
  argsSchema?: object;
  /** Input shape used when neither `args.input_shape` nor the caller provides one. */
  defaultInputShape?: number[];
  /**
   * The head: names of the model's trailing layers that form its classifier (e.g. `['dropout',
   * 'fc']`; names a built model lacks are skipped). FedPer/FedRep/FedBABU/FedRoD keep or train it
   * apart; its input is the representation MOON and FedProto use. Default: the last layer with weights.
   */
  head?: readonly string[];
}

/** One registry entry. */
export interface ModelEntry {
  type: string;
  factory: ModelFactory;
  argsSchema?: ArgsSchema;
  defaultInputShape?: number[];
  head?: readonly string[];
}

const REGISTRY_KEY = Symbol.for('@oiafed/models/registry');

/** The registry lives on globalThis so two copies of this package share it. */
function registry(): Map<string, ModelEntry> {
  const g = globalThis as { [REGISTRY_KEY]?: Map<string, ModelEntry> };
  g[REGISTRY_KEY] ??= new Map();
  return g[REGISTRY_KEY];
}

/**
 * Registers a model type under the name configs use in `model.type`. Registering the same
 * factory again is a no-op; a different factory under a taken name is an error.
 */
export function registerModel(type: string, factory: ModelFactory, options: RegisterModelOptions = {}): void {
  if (typeof type !== 'string' || !/^[A-Za-z0-9_.\-]+$/.test(type)) {
    throw new Error(`registerModel: type must be a non-empty string of letters, digits, '_', '-' or '.', got ${JSON.stringify(type)}`);
  }
  if (typeof factory !== 'function') {
    throw new Error(`registerModel('${type}'): factory must be a function`);
  }
  const existing = registry().get(type);
  if (existing !== undefined) {
    if (existing.factory === factory) return;
    throw new Error(`registerModel: model type '${type}' is already registered with another factory`);
  }
  if (options.defaultInputShape !== undefined) checkShape(options.defaultInputShape, `registerModel('${type}'): defaultInputShape`);
  registry().set(type, {
    type,
    factory,
    argsSchema: options.argsSchema as ArgsSchema | undefined,
    defaultInputShape: options.defaultInputShape?.slice(),
    head: options.head?.slice(),
  });
}

/** Looks up a registered type. */
export function getModelEntry(type: string): ModelEntry | undefined {
  return registry().get(type);
}

/** Registered type names, sorted. */
export function registeredModelTypes(): string[] {
  return [...registry().keys()].sort();
}

/** Throws unless `shape` is a non-empty list of positive integers. */
export function checkShape(shape: unknown, what: string): asserts shape is number[] {
  if (!Array.isArray(shape) || shape.length === 0 || !shape.every((d) => Number.isInteger(d) && d > 0)) {
    throw new Error(`${what}: expected a non-empty list of positive integers, got ${JSON.stringify(shape)}`);
  }
}
