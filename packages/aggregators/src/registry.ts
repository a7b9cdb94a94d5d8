import { createRegistry, parseArgs, validateSchema } from '@oiafed/component';
import type { Aggregator, AggregatorFactory, JsonSchemaObject } from './types.js';

interface RegistryEntry {
  factory: AggregatorFactory;
  argsSchema?: JsonSchemaObject;
}

/**
 * The aggregator registry: @oiafed/component's helper on the global key
 * `Symbol.for('@oiafed/aggregators/registry')`, so two copies of this package (e.g. one hoisted,
 * one nested under a plugin) share it. Same factory again: no-op; another factory under a taken
 * type: an error unless `replace` (the rule of every OiaFed registry, see @oiafed/component).
 */
const aggregators = createRegistry<RegistryEntry>({
  kind: 'aggregator',
  globalKey: '@oiafed/aggregators/registry',
  registerName: 'registerAggregator',
  same: (a, b) => a.factory === b.factory,
  emptyHint: 'call registerBuiltins() or import the plugin package',
});

/** Whether the built-ins were registered in this process (shared by every copy of the package). */
export function getRegistry(): { builtinsRegistered: boolean } {
  return {
    get builtinsRegistered() {
      return aggregators.flags.has('builtins');
    },
    set builtinsRegistered(done: boolean) {
      if (done) aggregators.flags.add('builtins');
      else aggregators.flags.delete('builtins');
    },
  };
}

/**
 * Registers an aggregation rule under a config `type`. Registering the same factory again is a
 * no-op (a plugin imported twice); another factory under a taken type throws unless `replace`.
 * @param argsSchema optional JSON Schema subset (see {@link JsonSchemaObject}) checked by {@link createAggregator}.
 */
export function registerAggregator(
  type: string,
  factory: AggregatorFactory,
  argsSchema?: JsonSchemaObject,
  options: { replace?: boolean } = {},
): void {
  if (typeof factory !== 'function') {
    throw new Error(`registerAggregator: factory for "${type}" must be a function, got ${typeof factory}`);
  }
  aggregators.register(type, { factory, argsSchema }, options);
}

/** Registered types, sorted. */
export function listAggregators(): string[] {
  return aggregators.list();
}

/** Whether a type is registered. */
export function hasAggregator(type: string): boolean {
  return aggregators.has(type);
}

/**
 * Builds an aggregator from a config entry. Args are validated against the registered schema
 * (errors are prefixed with the type) and schema defaults are filled in before the factory runs.
 */
export function createAggregator(config: { type: string; args?: Record<string, unknown> }): Aggregator {
  if (config === null || typeof config !== 'object' || typeof config.type !== 'string') {
    throw new Error('createAggregator: expected {type: string, args?: object}');
  }
  const entry = aggregators.require(config.type);
  const args = parseArgs(`aggregator "${config.type}"`, entry.argsSchema, config.args ?? {});
  return entry.factory(args);
}

/** The shared checker of @oiafed/component, under the names this package has always exported. */
export { parseArgs, validateSchema as validate };
