/**
 * Learner algorithms live in core's component registry (kind `learner_algorithm`, on globalThis
 * like every registry) and parse their args with the same validator as aggregators, so errors
 * read the same: `learner algorithm "fedprox": args.mu must be >= 0, got -1`.
 */
import { COMPONENT_NAME, parseArgs } from '@oiafed/component';
import { closestKey, nodeConfigSchema } from '@oiafed/config';
import { findComponent, listComponents, lookupComponent, registerComponent } from '../registry.js';
import type { LearnerAlgorithm, LearnerAlgorithmDefinition } from './types.js';

const KIND = 'learner_algorithm';

/** The registered definition of `type`, if any. */
export function findLearnerAlgorithm(type: string): LearnerAlgorithmDefinition | undefined {
  return findComponent<LearnerAlgorithmDefinition>(KIND, type);
}

/**
 * Registers a learner algorithm under `definition.type`. Registering the same definition again is
 * a no-op (a plugin imported twice); another definition under a taken type, or an instruction key
 * another algorithm owns, is an error unless `replace` is set.
 */
export function registerLearnerAlgorithm(definition: LearnerAlgorithmDefinition, options: { replace?: boolean } = {}): void {
  const type = definition?.type;
  if (typeof type !== 'string' || !COMPONENT_NAME.test(type)) {
    throw new Error(`registerLearnerAlgorithm: type ${JSON.stringify(type)} is invalid; expected letters, digits, '_', '-' or '.', not starting with '-' or '.'`);
  }
  if (typeof definition.create !== 'function') {
    throw new Error(`registerLearnerAlgorithm: "${type}" needs a create(args) function`);
  }
  if (findLearnerAlgorithm(type) === definition) return;
  for (const key of Object.keys(definition.instructions ?? {})) {
    const owner = instructionOwner(key);
    if (owner && owner.type !== type && !options.replace) {
      throw new Error(`registerLearnerAlgorithm: instruction "${key}" of "${type}" is already owned by learner algorithm "${owner.type}"`);
    }
  }
  registerComponent(KIND, type, definition, options);
}

/** Registered learner algorithm types, sorted. */
export function listLearnerAlgorithms(): string[] {
  return listComponents(KIND);
}

/** Builds one learner's instance from a config entry (`learner.type` and its algorithm args). */
export function createLearnerAlgorithm(config: { type: string; args?: Record<string, unknown> }): LearnerAlgorithm {
  const definition = lookupComponent<LearnerAlgorithmDefinition>(KIND, config.type);
  const args = parseArgs(`learner algorithm "${config.type}"`, definition.argsSchema, config.args ?? {});
  return definition.create(args);
}

/** The registered algorithm that owns instruction `key`. */
export function instructionOwner(key: string): LearnerAlgorithmDefinition | undefined {
  for (const type of listComponents(KIND)) {
    const definition = lookupComponent<LearnerAlgorithmDefinition>(KIND, type);
    if (definition.instructions && Object.hasOwn(definition.instructions, key)) return definition;
  }
  return undefined;
}

/**
 * What a learner announces when it registers: every instruction key its registered algorithms
 * own. The trainer refuses a learner that lacks a key its aggregator's plan sets.
 */
export function learnerCapabilities(): string[] {
  return listComponents(KIND).flatMap((type) =>
    Object.keys(lookupComponent<LearnerAlgorithmDefinition>(KIND, type).instructions ?? {}),
  );
}

/** `learner.args` keys that are local training settings (the config schema's own keys). */
function learnerSettingKeys(): Set<string> {
  const learner = (nodeConfigSchema.properties as Record<string, { properties: { args: { properties: object } } }>).learner;
  return new Set(Object.keys(learner.properties.args.properties));
}

/**
 * The learner algorithm's args inside `learner.args`: every key that is not a local training
 * setting. With `type`, a key that is neither a setting nor an arg of that algorithm (whose
 * schema is closed) is refused with a did-you-mean over both, as the config schema did before
 * `learner.args` was opened to algorithms.
 */
export function learnerAlgorithmArgs(args: Record<string, unknown>, type?: string): Record<string, unknown> {
  const settings = learnerSettingKeys();
  const own = Object.fromEntries(Object.entries(args).filter(([key]) => !settings.has(key)));
  const schema = type === undefined ? undefined : findLearnerAlgorithm(type)?.argsSchema;
  if (schema?.additionalProperties === false) {
    const known = Object.keys(schema.properties ?? {});
    for (const key of Object.keys(own).filter((k) => !known.includes(k))) {
      const guess = closestKey(key, [...settings, ...known]);
      throw new Error(
        `learner.args.${key} is neither a local training setting nor an arg of learner algorithm "${type}"` +
          (guess ? `; did you mean "${guess}"?` : ''),
      );
    }
  }
  return own;
}
