/**
 * The `args` schemas of the built-in dataset types, in @oiafed/component's schema subset, so
 * `oiafed validate` refuses an unknown key (`label_mod`) or a bad value (`label_mode: fine2`)
 * before a run starts. The loaders read their args through ArgReader with the same rules.
 */
import type { ArgsSchema } from '@oiafed/component';

/** Keys every dataset type accepts: the load cache is the registry's (`cache: false` reloads). */
export const COMMON_DATASET_ARGS: Readonly<Record<string, ArgsSchema>> = {
  cache: { type: 'boolean' },
};

// ArgReader.bool also takes the strings "true" and "false" (e.g. from an env interpolation).
const flag: ArgsSchema = { enum: [true, false, 'true', 'false'] };
const nonNegativeInt: ArgsSchema = { type: 'integer', minimum: 0 };

/** What the downloading loaders (cifar10, cifar100, svhn, mnist, fashion_mnist) read. */
const FILE_ARGS: Record<string, ArgsSchema> = {
  data_dir: { type: 'string' },
  download: flag,
  base_url: { type: 'string' },
  normalize: flag,
  checksums: { type: ['boolean', 'object'], additionalProperties: { type: 'string' } },
  retries: nonNegativeInt,
};

const strict = (properties: Record<string, ArgsSchema>): ArgsSchema => ({
  type: 'object',
  properties: { ...COMMON_DATASET_ARGS, ...properties },
  additionalProperties: false,
});

/** Schemas of the built-in types, keyed by their canonical names. */
export const BUILTIN_DATASET_ARGS: Readonly<Record<string, ArgsSchema>> = {
  cifar10: strict(FILE_ARGS),
  cifar100: strict({ ...FILE_ARGS, label_mode: { enum: ['fine', 'coarse'] } }),
  svhn: strict(FILE_ARGS),
  mnist: strict(FILE_ARGS),
  fashion_mnist: strict(FILE_ARGS),
  synthetic: strict({
    alpha: { type: 'number', minimum: 0 },
    beta: { type: 'number', minimum: 0 },
    iid: flag,
    num_features: { type: 'integer', minimum: 1 },
    num_classes: { type: 'integer', minimum: 2 },
    samples_per_client: { type: 'integer', minimum: 2 },
    num_clients: { type: 'integer', minimum: 1 },
    test_fraction: { type: 'number', minimum: 0, maximum: 0.9 },
    seed: { type: 'number' },
  }),
};
