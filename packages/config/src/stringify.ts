import { stringify } from 'yaml';
import { nodeConfigSchema } from './schema.js';
import { isPlainObject } from './sources.js';
import type { NodeConfig } from './types.js';

type Schema = Record<string, unknown>;

/** Orders keys as the schema lists them (unknown keys after) and escapes `${` so reloading keeps text as is. */
function prepare(value: unknown, schema: Schema | undefined): unknown {
  if (typeof value === 'string') return value.replaceAll('${', () => '$${');
  if (Array.isArray(value)) return value.map((item) => prepare(item, schema?.items as Schema | undefined));
  if (!isPlainObject(value)) return value;
  const properties = (schema?.properties ?? {}) as Record<string, Schema>;
  const keys = [...Object.keys(properties).filter((k) => k in value), ...Object.keys(value).filter((k) => !(k in properties))];
  const out: Record<string, unknown> = {};
  for (const key of keys) out[key] = prepare(value[key], properties[key]);
  return out;
}

/**
 * YAML text of a resolved config (what `oiafed show-config` prints). Keys follow the schema's
 * order; loading the text again gives an equal config.
 */
export function stringifyConfig(config: NodeConfig): string {
  return stringify(prepare(config, nodeConfigSchema), { lineWidth: 0 });
}
