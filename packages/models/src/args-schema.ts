/**
 * `model.args` are checked by @oiafed/component's schema checker, the one every component kind
 * uses (see its README for the keywords); this module keeps the names this package exports.
 */
import { schemaErrors, type ArgsSchema } from '@oiafed/component';

export type { ArgsSchema };

/**
 * Validates `value` against `schema` and returns every problem found, each naming its key path
 * (`model.args.dropout must be < 1, got 1.5`); empty when valid.
 */
export function validateArgs(value: unknown, schema: ArgsSchema, path = 'args'): string[] {
  return schemaErrors(schema, value, path);
}
