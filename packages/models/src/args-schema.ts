/**
 * A small JSON-Schema subset used to validate `model.args`. The models package stays free of a
 * schema library; the config package validates the document as a whole with ajv, this only
 * checks the free-form `args` map of one model type.
 *
 * Supported keywords: type (string or list; `integer` included), enum, minimum, maximum,
 * exclusiveMinimum, exclusiveMaximum, items, minItems, maxItems, properties, required,
 * additionalProperties (boolean or schema).
 */

/** A JSON-Schema fragment (subset, see module doc). */
export interface ArgsSchema {
  type?: string | string[];
  enum?: unknown[];
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  exclusiveMaximum?: number;
  items?: ArgsSchema;
  minItems?: number;
  maxItems?: number;
  properties?: Record<string, ArgsSchema>;
  required?: string[];
  additionalProperties?: boolean | ArgsSchema;
  description?: string;
}

function typeOf(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  return typeof value;
}

function matchesType(value: unknown, type: string): boolean {
  switch (type) {
    case 'integer':
      return typeof value === 'number' && Number.isInteger(value);
    case 'number':
      return typeof value === 'number' && Number.isFinite(value);
    case 'array':
      return Array.isArray(value);
    case 'object':
      return typeof value === 'object' && value !== null && !Array.isArray(value);
    case 'null':
      return value === null;
    default:
      return typeof value === type;
  }
}

function show(value: unknown): string {
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

/**
 * Validates `value` against `schema` and returns every problem found as
 * `"<path>: expected <what>, got <value>"` (empty when valid).
 */
export function validateArgs(value: unknown, schema: ArgsSchema, path = 'args'): string[] {
  const errors: string[] = [];
  if (schema.type !== undefined) {
    const types = Array.isArray(schema.type) ? schema.type : [schema.type];
    if (!types.some((t) => matchesType(value, t))) {
      errors.push(`${path}: expected ${types.join(' or ')}, got ${typeOf(value)} ${show(value)}`);
      return errors;
    }
  }
  if (schema.enum !== undefined && !schema.enum.some((e) => e === value)) {
    errors.push(`${path}: expected one of ${schema.enum.map(show).join(', ')}, got ${show(value)}`);
  }
  if (typeof value === 'number') {
    if (schema.minimum !== undefined && value < schema.minimum) {
      errors.push(`${path}: expected a number >= ${schema.minimum}, got ${value}`);
    }
    if (schema.maximum !== undefined && value > schema.maximum) {
      errors.push(`${path}: expected a number <= ${schema.maximum}, got ${value}`);
    }
    if (schema.exclusiveMinimum !== undefined && value <= schema.exclusiveMinimum) {
      errors.push(`${path}: expected a number > ${schema.exclusiveMinimum}, got ${value}`);
    }
    if (schema.exclusiveMaximum !== undefined && value >= schema.exclusiveMaximum) {
      errors.push(`${path}: expected a number < ${schema.exclusiveMaximum}, got ${value}`);
    }
  }
  if (Array.isArray(value)) {
    if (schema.minItems !== undefined && value.length < schema.minItems) {
      errors.push(`${path}: expected at least ${schema.minItems} items, got ${value.length}`);
    }
    if (schema.maxItems !== undefined && value.length > schema.maxItems) {
      errors.push(`${path}: expected at most ${schema.maxItems} items, got ${value.length}`);
    }
    if (schema.items !== undefined) {
      value.forEach((item, i) => errors.push(...validateArgs(item, schema.items as ArgsSchema, `${path}[${i}]`)));
    }
  }
  if (matchesType(value, 'object')) {
    const obj = value as Record<string, unknown>;
    for (const key of schema.required ?? []) {
      if (!(key in obj)) errors.push(`${path}.${key}: required but missing`);
    }
    const props = schema.properties ?? {};
    for (const [key, v] of Object.entries(obj)) {
      const sub = props[key];
      if (sub !== undefined) {
        errors.push(...validateArgs(v, sub, `${path}.${key}`));
      } else if (schema.additionalProperties === false) {
        const known = Object.keys(props);
        errors.push(
          `${path}.${key}: unknown key (expected one of: ${known.length > 0 ? known.join(', ') : 'no keys'})`,
        );
      } else if (typeof schema.additionalProperties === 'object') {
        errors.push(...validateArgs(v, schema.additionalProperties, `${path}.${key}`));
      }
    }
  }
  return errors;
}
