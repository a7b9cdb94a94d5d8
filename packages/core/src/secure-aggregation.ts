/**
 * Secure aggregation (SecAgg+, Bell et al. CCS 2020; issue 16 §1): what the trainer and learners
 * share about it: the extra round stages' method names, the capability a learner announces, the
 * settings from the config, and which aggregation rules can run on a masked sum.
 *
 * Weighting: learners scale their clipped update by their share w / W of the round's weight
 * (w = sample count when the rule weights, else 1; W = the total the learners that advertised
 * keys announced) before quantizing, and send w alongside; the trainer rescales the unmasked sum by
 * W / (sum of the survivors' w), so the result is the same weighted mean of deltas FedAvg computes.
 */
import type { NodeConfig, SecureAggregationConfig } from '@oiafed/config';

/** Method names a learner serves for the stages SecAgg+ adds to a round (the trainer calls them). */
export const SecureAggregationMethods = {
  setup: 'oiafed.secagg.setup',
  shareKeys: 'oiafed.secagg.share_keys',
  maskedInput: 'oiafed.secagg.masked_input',
  unmask: 'oiafed.secagg.unmask',
} as const;

/** The capability a learner announces when it can run SecAgg+; the trainer refuses learners without it. */
export const SECURE_AGGREGATION_CAPABILITY = 'secure_aggregation';

/**
 * Rules whose result depends on the updates only through their (weighted) sum: they can run on
 * the unmasked sum. The others need individual updates, which SecAgg+ exists to hide.
 */
export const SECURE_AGGREGATION_COMPATIBLE: readonly string[] = ['fedavg', 'fedavgm', 'fedprox', 'fedadam', 'fedyogi', 'fedadagrad'];

const WHY_NOT: Record<string, string> = {
  median: 'the coordinate-wise median needs every individual update',
  trimmed_mean: 'trimming drops the extreme individual updates, which it must see',
  krum: 'Krum scores each individual update by its distances to the others',
  multi_krum: 'Multi-Krum scores each individual update by its distances to the others',
  scaffold: "SCAFFOLD's control variates travel per learner next to the update, outside the masked sum",
  fednova: "FedNova normalizes each learner's update by its own number of local steps",
  fedbn: 'FedBN keeps normalization layers per learner, which a single summed update cannot carry',
  feddyn: "FedDyn's server state is built from per-learner corrections this integration does not mask yet",
};

export interface SecureAggregationSettings {
  /** Fraction of a learner's neighbourhood in (0, 1), or a count: shares needed to rebuild its secrets. */
  threshold: number;
  /** Neighbours per learner (k); at least the round's learners - 1 gives the complete graph. */
  neighbours: number;
  /** Per-coordinate clip of an update's delta before quantization. */
  clipRange: number;
  /** The group is Z_{2^quantization_bits}. */
  quantizationBits: number;
  /** Weight learners by their sample counts (the rule's `weighted`, default true). */
  weighted: boolean;
}

/** The config's `secure_aggregation` as trainer settings; undefined when absent or disabled. */
export function secureAggregationSettings(
  config: Pick<NodeConfig, 'aggregator'> & Partial<Pick<NodeConfig, 'differential_privacy'>> & { secure_aggregation?: SecureAggregationConfig },
): SecureAggregationSettings | undefined {
  const section = config.secure_aggregation;
  if (!section || !section.enabled) return undefined;
  checkSecureAggregationRule(config.aggregator.type);
  if (config.differential_privacy?.mode === 'central') {
    throw new Error(
      'secure_aggregation with differential_privacy mode central: central DP clips each update on the trainer, which under ' +
        'secure aggregation sees only their sum; use mode local or dp_sgd (each learner clips and noises before masking)',
    );
  }
  return {
    threshold: section.threshold,
    neighbours: section.neighbours,
    clipRange: section.clip_range,
    quantizationBits: section.quantization_bits,
    weighted: config.aggregator.args?.weighted !== false,
  };
}

/** Throws, saying why, when `type` cannot aggregate a masked sum. */
export function checkSecureAggregationRule(type: string): void {
  if (SECURE_AGGREGATION_COMPATIBLE.includes(type)) return;
  const why = WHY_NOT[type] ?? 'it is not known to depend on the updates only through their sum';
  throw new Error(
    `secure_aggregation gives the trainer only the sum of the updates, and aggregator "${type}" cannot work from a sum: ${why}. ` +
      `Use one of ${SECURE_AGGREGATION_COMPATIBLE.join(', ')}, or turn secure_aggregation off`,
  );
}
