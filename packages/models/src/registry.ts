import type * as tfl from '@tensorflow/tfjs-layers';
import { createRegistry } from '@oiafed/component';
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
  /** Replace another factory registered under the type instead of throwing. */
  replace?: boolean;
}

/** One registry entry. */
export interface ModelEntry {
  type: string;
  factory: ModelFactory;
  argsSchema?: ArgsSchema;
  defaultInputShape?: number[];
  head?: readonly string[];
}

/**
 * @oiafed/component's registry helper on a globalThis key, so two copies of this package share
 * it; the rule and messages are those of every OiaFed registry.
 */
const models = createRegistry<ModelEntry>({
  kind: 'model',
  globalKey: '@oiafed/models/registry',
  registerName: 'registerModel',
  same: (a, b) => a.factory === b.factory,
});

/**
 * Registers a model type under the name configs use in `model.type`. Registering the same
 * factory again is a no-op; a different factory under a taken name is an error unless
 * `options.replace`.
 */
export function registerModel(type: string, factory: ModelFactory, options: RegisterModelOptions = {}): void {
  if (typeof factory !== 'function') {
    throw new Error(`registerModel('${type}'): factory must be a function`);
  }
  if (options.defaultInputShape !== undefined) checkShape(options.defaultInputShape, `registerModel('${type}'): defaultInputShape`);
  models.register(type, {
    type,
    factory,
    argsSchema: options.argsSchema as ArgsSchema | undefined,
    defaultInputShape: options.defaultInputShape?.slice(),
    head: options.head?.slice(),
  }, { replace: options.replace });
}

/** Looks up a registered type. */
export function getModelEntry(type: string): ModelEntry | undefined {
  return models.get(type);
}

/** The entry of `type`; throws the registries' unknown-type message prefixed with `where`. */
export function requireModelEntry(type: string, where: string): ModelEntry {
  return models.require(type, where);
}

/** Registered type names, sorted. */
export function registeredModelTypes(): string[] {
  return models.list();
}

/** Throws unless `shape` is a non-empty list of positive integers. */
export function checkShape(shape: unknown, what: string): asserts shape is number[] {
  if (!Array.isArray(shape) || shape.length === 0 || !shape.every((d) => Number.isInteger(d) && d > 0)) {
    throw new Error(`${what}: expected a non-empty list of positive integers, got ${JSON.stringify(shape)}`);
  }
}
