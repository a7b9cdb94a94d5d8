import { parseArgs } from '@oiafed/component';
import { modelArgsSchema } from './catalog.js';
import { FedModel } from './fed-model.js';
import { registerBuiltinModels } from './models/builtin.js';
import { checkShape, registeredModelTypes, requireModelEntry } from './registry.js';
import type { ModelContext, ModelSpec } from './types.js';

/** Registered model types, sorted (the built-ins are registered on first use). */
export function listModels(): string[] {
  registerBuiltinModels();
  return registeredModelTypes();
}

/**
 * Builds a model from the config's `model` section. The input shape comes from
 * `args.input_shape`, else `ctx.inputShape`, else the type's default; classes from
 * `args.num_classes`, else `ctx.numClasses`, else 10; the init seed from `args.seed`, else
 * `ctx.seed`, else 0 (so every node starts from the same weights unless told otherwise).
 */
export function createModel(spec: ModelSpec, ctx: Partial<ModelContext> = {}): FedModel {
  if (spec === null || typeof spec !== 'object' || typeof spec.type !== 'string') {
    throw new Error(`model: expected {type: string, args?: object}, got ${JSON.stringify(spec)}`);
  }
  registerBuiltinModels();
  const entry = requireModelEntry(spec.type, 'model.type');
  const args = parseArgs(`model "${spec.type}"`, modelArgsSchema(entry.argsSchema), spec.args ?? {}, 'model.args');
  const inputShape = (args.input_shape as number[] | undefined) ?? ctx.inputShape ?? entry.defaultInputShape;
  if (inputShape === undefined) {
    throw new Error(`model '${spec.type}': no input shape (set model.args.input_shape; the type has no default)`);
  }
  checkShape(inputShape, `model '${spec.type}': input shape`);
  const numClasses = (args.num_classes as number | undefined) ?? ctx.numClasses ?? 10;
  if (!Number.isInteger(numClasses) || numClasses < 1) {
    throw new Error(`model '${spec.type}': numClasses must be a positive integer, got ${String(numClasses)}`);
  }
  const seed = (args.seed as number | undefined) ?? ctx.seed ?? 0;
  const model = entry.factory(args, { inputShape: [...inputShape], numClasses, seed });
  try {
    return new FedModel(spec.type, model, { head: entry.head });
  } catch (err) {
    model.dispose();
    throw err;
  }
}
