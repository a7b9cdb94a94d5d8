import type { Aggregator, AggregatorFactory, JsonSchemaObject } from './types.js';

interface RegistryEntry {
  factory: AggregatorFactory;
  argsSchema?: JsonSchemaObject;
}

interface Registry {
  entries: Map<string, RegistryEntry>;
  builtinsRegistered: boolean;
}

/**
 * `Symbol.for` makes the key global across realms of module loading, so two copies of this
 * package (e.g. one hoisted, one nested under a plugin) share a single registry.
 */
const REGISTRY_KEY = Symbol.for('@oiafed/aggregators/registry');

/** The process-wide registry, created on first use. */
export function getRegistry(): Registry {
  const holder = globalThis as unknown as Record<symbol, Registry | undefined>;
  let registry = holder[REGISTRY_KEY];
  if (!registry) {
    registry = { entries: new Map(), builtinsRegistered: false };
    holder[REGISTRY_KEY] = registry;
  }
  return registry;
}

const TYPE_NAME = /^[A-Za-z][A-Za-z0-9_.-]*$/;

/**
 * Registers an aggregation rule under a config `type`. Re-registering a type replaces it,
 * which lets a plugin be imported twice harmlessly.
 * @param argsSchema optional JSON Schema subset (see {@link JsonSchemaObject}) checked by {@link createAggregator}.
 */
export function registerAggregator(
  type: string,
  factory: AggregatorFactory,
  argsSchema?: JsonSchemaObject,
): void {
  if (typeof type !== 'string' || !TYPE_NAME.test(type)) {
    throw new Error(
      `registerAggregator: type ${JSON.stringify(type)} is invalid; expected a name matching ${TYPE_NAME}`,
    );
  }
  if (typeof factory !== 'function') {
    throw new Error(`registerAggregator: factory for "${type}" must be a function, got ${typeof factory}`);
  }
  getRegistry().entries.set(type, { factory, argsSchema });
}

/** Registered types, sorted. */
export function listAggregators(): string[] {
  return [...getRegistry().entries.keys()].sort();
}

/** Whether a type is registered. */
export function hasAggregator(type: string): boolean {
  return getRegistry().entries.has(type);
}

/**
 * Builds an aggregator from a config entry. Args are validated against the registered schema
 * (errors are prefixed with the type) and schema defaults are filled in before the factory runs.
 */
export function createAggregator(config: { type: string; args?: Record<string, unknown> }): Aggregator {
  if (config === null || typeof config !== 'object' || typeof config.type !== 'string') {
    throw new Error('createAggregator: expected {type: string, args?: object}');
  }
  const entry = getRegistry().entries.get(config.type);
  if (!entry) {
    const known = listAggregators();
    throw new Error(
      `unknown aggregator type "${config.type}"; registered types: ${known.length ? known.join(', ') : '(none; call registerBuiltins() or import the plugin package)'}`,
    );
  }
  const args = parseArgs(`aggregator "${config.type}"`, entry.argsSchema, config.args ?? {});
  return entry.factory(args);
}

/**
 * Checks a config entry's `args` against a registered schema and fills in schema defaults. Every
 * registry keyed by a config `type` uses it, so errors read the same everywhere: prefixed with
 * `label` (e.g. `aggregator "fedavg"`), one message per problem joined by `; `.
 */
export function parseArgs(label: string, schema: JsonSchemaObject | undefined, rawArgs: unknown): Record<string, unknown> {
  if (rawArgs === null || typeof rawArgs !== 'object' || Array.isArray(rawArgs)) {
    throw new Error(`${label}: args must be an object, got ${describe(rawArgs)}`);
  }
  const args: Record<string, unknown> = { ...(rawArgs as Record<string, unknown>) };
  if (!schema) return args;
  const errors: string[] = [];
  validate(schema, args, 'args', errors);
  if (errors.length > 0) throw new Error(`${label}: ${errors.join('; ')}`);
  return applyDefaults(schema, args);
}

function applyDefaults(schema: JsonSchemaObject, args: Record<string, unknown>): Record<string, unknown> {
  const out = { ...args };
  for (const [key, prop] of Object.entries(schema.properties ?? {})) {
    if (out[key] === undefined && prop.default !== undefined) out[key] = prop.default;
  }
  return out;
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'string') return `string ${JSON.stringify(value)}`;
  if (typeof value === 'object') return 'an object';
  return `${typeof value} ${String(value)}`;
}

/** Validates `value` against the supported JSON Schema subset, pushing one message per problem. */
export function validate(schema: JsonSchemaObject, value: unknown, path: string, errors: string[]): void {
  if (schema.type !== undefined && !matchesType(schema.type, value)) {
    errors.push(`${path} must be ${article(schema.type)}, got ${describe(value)}`);
    return;
  }
  if (schema.enum !== undefined && !schema.enum.includes(value as string | number | boolean)) {
    errors.push(`${path} must be one of ${schema.enum.map((e) => JSON.stringify(e)).join(', ')}, got ${describe(value)}`);
  }
  if (typeof value === 'number') {
    if (schema.minimum !== undefined && value < schema.minimum) errors.push(`${path} must be >= ${schema.minimum}, got ${value}`);
    if (schema.maximum !== undefined && value > schema.maximum) errors.push(`${path} must be <= ${schema.maximum}, got ${value}`);
    if (schema.exclusiveMinimum !== undefined && value <= schema.exclusiveMinimum) {
      errors.push(`${path} must be > ${schema.exclusiveMinimum}, got ${value}`);
    }
    if (schema.exclusiveMaximum !== undefined && value >= schema.exclusiveMaximum) {
      errors.push(`${path} must be < ${schema.exclusiveMaximum}, got ${value}`);
    }
  }
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
    const obj = value as Record<string, unknown>;
    for (const key of schema.required ?? []) {
      if (obj[key] === undefined) errors.push(`${path}.${key} is required`);
    }
    const props = schema.properties ?? {};
    for (const [key, child] of Object.entries(obj)) {
      const sub = props[key];
      if (sub) {
        if (child !== undefined) validate(sub, child, `${path}.${key}`, errors);
      } else if (schema.additionalProperties === false) {
        const allowed = Object.keys(props);
        errors.push(`${path}.${key} is not a known argument (allowed: ${allowed.length ? allowed.join(', ') : 'none'})`);
      }
    }
  }
}

function matchesType(type: NonNullable<JsonSchemaObject['type']>, value: unknown): boolean {
  switch (type) {
    case 'object':
      return value !== null && typeof value === 'object' && !Array.isArray(value);
    case 'array':
      return Array.isArray(value);
    case 'number':
      return typeof value === 'number' && Number.isFinite(value);
    case 'integer':
      return typeof value === 'number' && Number.isInteger(value);
    case 'boolean':
      return typeof value === 'boolean';
    case 'string':
      return typeof value === 'string';
  }
}

function article(type: string): string {
  switch (type) {
    case 'integer':
      return 'an integer';
    case 'object':
    case 'array':
      return `an ${type}`;
    default:
      return `a ${type === 'number' ? 'finite number' : type}`;
  }
}
