/**
 * The built-in model types as data (args schema, default input shape, head) and the check of a
 * config's `model` section, without tfjs: exported as `@oiafed/models/catalog` so `oiafed
 * validate` can refuse `model.type: resnet99` or `model.args.dropout` on resnet18 without paying
 * for tfjs (importing `@oiafed/models` takes seconds). The factories stay in models/builtin.ts,
 * which registers each catalog entry with its factory.
 */
import { parseArgs, unknownNameMessage, type ArgsSchema } from '@oiafed/component';
import { getModelEntry, registeredModelTypes } from './registry.js';

/** Keys every model type accepts in `args`, whatever its own schema says. */
export const COMMON_MODEL_ARGS: Readonly<Record<string, ArgsSchema>> = {
  num_classes: { type: 'integer', minimum: 1 },
  input_shape: { type: 'array', minItems: 1, items: { type: 'integer', minimum: 1 } },
  seed: { type: 'integer' },
};

/** What the registry needs of a built-in type, apart from its factory. */
export interface BuiltinModelInfo {
  argsSchema: ArgsSchema;
  defaultInputShape: number[];
  /** Trailing layers that form the classifier; absent: the registry's default. */
  head?: readonly string[];
}

const dropout: ArgsSchema = { type: 'number', minimum: 0, exclusiveMaximum: 1 };
const hidden: ArgsSchema = { type: 'array', items: { type: 'integer', minimum: 1 } };
const strict = (properties: Record<string, ArgsSchema>): ArgsSchema => ({ type: 'object', properties, additionalProperties: false });

/** The built-in model types (registered with their factories by registerBuiltinModels). */
export const BUILTIN_MODELS: Readonly<Record<string, BuiltinModelInfo>> = {
  cifar10_cnn: { argsSchema: strict({ dropout }), defaultInputShape: [32, 32, 3], head: ['dropout', 'fc'] },
  simple_cnn: { argsSchema: strict({ dropout }), defaultInputShape: [32, 32, 3], head: ['dropout', 'fc2'] },
  lenet: { argsSchema: strict({ dropout }), defaultInputShape: [28, 28, 1], head: ['dropout', 'fc3'] },
  mnist_cnn: { argsSchema: strict({ dropout }), defaultInputShape: [28, 28, 1], head: ['dropout', 'fc3'] },
  fmnist_cnn: { argsSchema: strict({ dropout }), defaultInputShape: [28, 28, 1], head: ['dropout', 'fc2'] },
  // mlp / logistic: the head is the default (last dense layer and the dropout in front of it).
  mlp: { argsSchema: strict({ dropout, hidden }), defaultInputShape: [60] },
  logistic: { argsSchema: strict({ dropout }), defaultInputShape: [60] },
  resnet20: { argsSchema: strict({}), defaultInputShape: [32, 32, 3], head: ['fc'] },
  resnet18: { argsSchema: strict({}), defaultInputShape: [32, 32, 3], head: ['fc'] },
};

/** A type's own args schema with the common keys added (what `model.args` is checked against). */
export function modelArgsSchema(own: ArgsSchema | undefined): ArgsSchema {
  const base = own ?? { type: 'object' };
  return { ...base, properties: { ...COMMON_MODEL_ARGS, ...(base.properties ?? {}) } };
}

/** Registered types (plugins included) and the built-ins, registered yet or not; sorted. */
export function knownModelTypes(): string[] {
  return [...new Set([...registeredModelTypes(), ...Object.keys(BUILTIN_MODELS)])].sort();
}

/**
 * What is wrong with a config's `model` section, as messages naming the key path
 * (`model.type: unknown model type "resnet99"; ...; did you mean "resnet18"?`,
 * `model "resnet18": model.args.dropout is not a known argument ...`); empty when it would build.
 * A registered type (a plugin's) is checked against its registered schema, a built-in against the
 * catalog, so no factory (and no tfjs) is needed.
 */
export function modelSpecProblems(spec: { type: string; args?: unknown }): string[] {
  const registered = getModelEntry(spec.type);
  const builtin = Object.hasOwn(BUILTIN_MODELS, spec.type) ? BUILTIN_MODELS[spec.type] : undefined;
  if (!registered && !builtin) return [`model.type: ${unknownNameMessage('model', spec.type, knownModelTypes())}`];
  const schema = modelArgsSchema(registered ? registered.argsSchema : builtin!.argsSchema);
  try {
    parseArgs(`model "${spec.type}"`, schema, spec.args ?? {}, 'model.args');
    return [];
  } catch (error) {
    return [error instanceof Error ? error.message : String(error)];
  }
}
