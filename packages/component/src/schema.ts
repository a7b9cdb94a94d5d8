/**
 * One checker for the free-form `args` map of a registered component (aggregator, model,
 * learner algorithm, ...). The config package validates whole documents with ajv; the component
 * packages stay free of a schema library and check their own args with this JSON-Schema subset.
 *
 * Keywords: type (a name or a list; `integer` and `null` included), enum, minimum, maximum,
 * exclusiveMinimum, exclusiveMaximum, items, minItems, maxItems, properties, required,
 * additionalProperties (boolean or schema), default (filled in by {@link parseArgs}).
 *
 * Every message names the key path: `args.mu must be >= 0, got -1`,
 * `model.args.hidden[1] must be an integer, got string "x"`,
 * `args.momentm is not a known argument (allowed: momentum, server_lr); did you mean "momentum"?`.
 */
import { didYouMean } from './names.js';

/** A JSON type name as the `type` keyword spells it. */
export type SchemaType = 'object' | 'array' | 'number' | 'integer' | 'boolean' | 'string' | 'null';

/** A JSON-Schema fragment (the subset described in this module). */
export interface ArgsSchema {
  type?: SchemaType | readonly SchemaType[];
  enum?: readonly unknown[];
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  exclusiveMaximum?: number;
  items?: ArgsSchema;
  minItems?: number;
  maxItems?: number;
  properties?: Record<string, ArgsSchema>;
  required?: readonly string[];
  additionalProperties?: boolean | ArgsSchema;
  default?: unknown;
  description?: string;
}

/** A value as messages show it: its JSON type, then the value itself (shortened). */
export function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (value === undefined) return 'nothing';
  if (Array.isArray(value)) return `an array ${shortJson(value)}`;
  if (typeof value === 'object') return `an object ${shortJson(value)}`;
  if (typeof value === 'string') return `string ${shortJson(value)}`;
  return `${typeof value} ${String(value)}`;
}

function shortJson(value: unknown): string {
  let text: string;
  try {
    text = JSON.stringify(value) ?? String(value);
  } catch {
    text = String(value);
  }
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

function matchesType(type: SchemaType, value: unknown): boolean {
  switch (type) {
    case 'object':
      return value !== null && typeof value === 'object' && !Array.isArray(value);
    case 'array':
      return Array.isArray(value);
    case 'number':
      return typeof value === 'number' && Number.isFinite(value);
    case 'integer':
      return typeof value === 'number' && Number.isInteger(value);
    case 'null':
      return value === null;
    default:
      return typeof value === type;
  }
}

function article(type: SchemaType): string {
  switch (type) {
    case 'integer':
    case 'object':
    case 'array':
      return `an ${type}`;
    case 'null':
      return 'null';
    case 'number':
      return 'a finite number';
    default:
      return `a ${type}`;
  }
}

function checkNumber(schema: ArgsSchema, value: number, path: string, errors: string[]): void {
  if (schema.minimum !== undefined && value < schema.minimum) errors.push(`${path} must be >= ${schema.minimum}, got ${value}`);
  if (schema.maximum !== undefined && value > schema.maximum) errors.push(`${path} must be <= ${schema.maximum}, got ${value}`);
  if (schema.exclusiveMinimum !== undefined && value <= schema.exclusiveMinimum) {
    errors.push(`${path} must be > ${schema.exclusiveMinimum}, got ${value}`);
  }
  if (schema.exclusiveMaximum !== undefined && value >= schema.exclusiveMaximum) {
    errors.push(`${path} must be < ${schema.exclusiveMaximum}, got ${value}`);
  }
}

function checkArray(schema: ArgsSchema, value: unknown[], path: string, errors: string[]): void {
  if (schema.minItems !== undefined && value.length < schema.minItems) {
    errors.push(`${path} must have at least ${schema.minItems} item${schema.minItems === 1 ? '' : 's'}, got ${value.length}`);
  }
  if (schema.maxItems !== undefined && value.length > schema.maxItems) {
    errors.push(`${path} must have at most ${schema.maxItems} item${schema.maxItems === 1 ? '' : 's'}, got ${value.length}`);
  }
  if (schema.items !== undefined) {
    const items = schema.items;
    value.forEach((item, i) => validateSchema(items, item, `${path}[${i}]`, errors));
  }
}

function checkObject(schema: ArgsSchema, obj: Record<string, unknown>, path: string, errors: string[]): void {
  for (const key of schema.required ?? []) {
    if (obj[key] === undefined) errors.push(`${path}.${key} is required`);
  }
  const props = schema.properties ?? {};
  const extra = schema.additionalProperties;
  for (const [key, child] of Object.entries(obj)) {
    const sub = Object.hasOwn(props, key) ? props[key] : undefined;
    if (sub !== undefined) {
      if (child !== undefined) validateSchema(sub, child, `${path}.${key}`, errors);
    } else if (extra === false) {
      const allowed = Object.keys(props);
      errors.push(
        `${path}.${key} is not a known argument (allowed: ${allowed.length > 0 ? allowed.join(', ') : 'none'})${didYouMean(key, allowed)}`,
      );
    } else if (typeof extra === 'object' && child !== undefined) {
      validateSchema(extra, child, `${path}.${key}`, errors);
    }
  }
}

/**
 * Checks `value` against `schema`, pushing one message per problem onto `errors` (each starts
 * with the key path, `path` being the root, e.g. `args` or `model.args`).
 */
export function validateSchema(schema: ArgsSchema, value: unknown, path: string, errors: string[]): void {
  if (schema.type !== undefined) {
    const types: readonly SchemaType[] = typeof schema.type === 'string' ? [schema.type] : schema.type;
    if (!types.some((t) => matchesType(t, value))) {
      errors.push(`${path} must be ${types.map(article).join(' or ')}, got ${describeValue(value)}`);
      return;
    }
  }
  if (schema.enum !== undefined && !schema.enum.includes(value)) {
    errors.push(`${path} must be one of ${schema.enum.map(shortJson).join(', ')}, got ${describeValue(value)}`);
  }
  if (typeof value === 'number') checkNumber(schema, value, path, errors);
  if (Array.isArray(value)) checkArray(schema, value, path, errors);
  else if (value !== null && typeof value === 'object') checkObject(schema, value as Record<string, unknown>, path, errors);
}

/** Every problem of `value` against `schema`, as {@link validateSchema} words them; empty when valid. */
export function schemaErrors(schema: ArgsSchema, value: unknown, path = 'args'): string[] {
  const errors: string[] = [];
  validateSchema(schema, value, path, errors);
  return errors;
}

/**
 * Checks a config entry's `args` against a component's schema and returns a copy with the
 * schema's top-level defaults filled in. Throws one error listing every problem, prefixed with
 * `label` (e.g. `aggregator "fedavg"`) and joined by `; `.
 * @param root the key path of the args in messages; default `args`.
 */
export function parseArgs(
  label: string,
  schema: ArgsSchema | undefined,
  rawArgs: unknown,
  root = 'args',
): Record<string, unknown> {
  if (rawArgs === null || typeof rawArgs !== 'object' || Array.isArray(rawArgs)) {
    throw new Error(`${label}: ${root} must be an object, got ${describeValue(rawArgs)}`);
  }
  const args: Record<string, unknown> = { ...(rawArgs as Record<string, unknown>) };
  if (!schema) return args;
  const errors = schemaErrors(schema, args, root);
  if (errors.length > 0) throw new Error(`${label}: ${errors.join('; ')}`);
  for (const [key, prop] of Object.entries(schema.properties ?? {})) {
    if (args[key] === undefined && prop.default !== undefined) args[key] = prop.default;
  }
  return args;
}
