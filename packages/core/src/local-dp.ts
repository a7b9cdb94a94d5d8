/**
 * The trainer's half of `differential_privacy: {mode: local | dp_sgd}` (issue 16 §2): a wrapper around
 * any aggregation rule that announces the DP parameters in every round's plan (the learners take them
 * from there: local-dp-learner.ts), collects the epsilon each learner reports for itself, reports the
 * largest as the round's `dp_epsilon`, and stops training before a round that would take a learner past
 * `target_epsilon`. The noise is added on the learners, so the rule sees only privatized updates: any rule
 * works (post-processing), robust ones included.
 */
import type { Accumulator, AggregateResult, Aggregator, AggregatorState, ClientUpdate, RoundContext, RoundFailure, RoundPlan } from '@oiafed/aggregators';
import type { DifferentialPrivacyConfig, NodeConfig, TrainerArgs } from '@oiafed/config';
import { localDpEpsilon, noiseMultiplierFor } from '@oiafed/privacy';
import type { RoundRecord } from '@oiafed/tracker';
import { withDistributedDp } from './local-dp-distributed.js';
import { DP_SGD_INSTRUCTION, LOCAL_DP_INSTRUCTION, PRIVACY_BUDGET_REFUSAL, type LearnerDpInstruction } from './local-dp-learner.js';

/** A rule wrapper that knows the privacy budget: the trainer asks it after each round whether to stop. */
export interface PrivacyBudgetGuard {
  /** Why training must stop before the next round (it would exceed target_epsilon), or undefined. */
  privacyStopReason(record: RoundRecord): string | undefined;
}

/** The stop reason of the trainer's rule when it guards a privacy budget (central, local or DP-SGD). */
export function privacyStopReason(aggregator: Aggregator, record: RoundRecord): string | undefined {
  const guard = aggregator as Partial<PrivacyBudgetGuard>;
  return typeof guard.privacyStopReason === 'function' ? guard.privacyStopReason(record) : undefined;
}

export interface LearnerDpSettings {
  mode: 'local' | 'dp_sgd';
  clipNorm?: number;
  noiseMultiplier?: number;
  targetEpsilon?: number;
  delta: number;
  maxRounds: number;
}

/**
 * The announced instruction. Local DP: the noise multiplier is the configured one (refused when even
 * one round exceeds target_epsilon) or the smallest that fits max_rounds into it. DP-SGD: the noise
 * multiplier is required (the spend depends on each learner's batch size and partition, which only
 * the learner knows; a learner refuses a round that would overspend).
 */
export function learnerDpInstruction(s: LearnerDpSettings): LearnerDpInstruction {
  const where = `differential_privacy (mode ${s.mode})`;
  if (s.clipNorm === undefined) throw new Error(`${where}: needs clip_norm (adaptive clipping is central-only)`);
  let z = s.noiseMultiplier;
  if (z === undefined) {
    if (s.mode === 'dp_sgd' || s.targetEpsilon === undefined) {
      throw new Error(`${where}: set noise_multiplier${s.mode === 'local' ? ' or target_epsilon' : ''}`);
    }
    // Each release is a Gaussian with multiplier z / 2 relative to its sensitivity 2C (localDpEpsilon).
    z = 2 * noiseMultiplierFor(s.targetEpsilon, 1, s.maxRounds, s.delta);
  } else if (s.mode === 'local' && s.targetEpsilon !== undefined) {
    const one = localDpEpsilon(z, 1, s.delta);
    if (one > s.targetEpsilon) {
      throw new Error(
        `${where}: one round at noise_multiplier ${z} already spends epsilon ${one.toFixed(3)} per learner > target_epsilon ${s.targetEpsilon} (delta ${s.delta}); ` +
          `use noise_multiplier >= ${(2 * noiseMultiplierFor(s.targetEpsilon, 1, 1, s.delta)).toFixed(3)}`,
      );
    }
  }
  return { clip_norm: s.clipNorm, noise_multiplier: z, delta: s.delta, ...(s.targetEpsilon === undefined ? {} : { target_epsilon: s.targetEpsilon }) };
}

class LearnerDpAggregator implements Aggregator, PrivacyBudgetGuard {
  readonly type: string;
  readonly selectLearners?: Aggregator['selectLearners'];
  readonly createAccumulator?: Aggregator['createAccumulator'];
  private readonly key: string;
  private readonly instruction: LearnerDpInstruction;
  /** Per learner: the epsilon it reported after its last round, and what one more round would make it. */
  private readonly spent = new Map<string, { now: number; next: number }>();

  constructor(
    private readonly inner: Aggregator,
    private readonly settings: LearnerDpSettings,
  ) {
    this.type = inner.type;
    this.key = settings.mode === 'local' ? LOCAL_DP_INSTRUCTION : DP_SGD_INSTRUCTION;
    this.instruction = learnerDpInstruction(settings);
    if (inner.selectLearners) this.selectLearners = (...args) => inner.selectLearners!(...args);
    if (inner.createAccumulator) this.createAccumulator = (ctx) => this.observing(inner.createAccumulator!(ctx));
  }

  configureRound(ctx: RoundContext): RoundPlan {
    const plan = this.inner.configureRound(ctx);
    return { ...plan, instructions: { ...plan.instructions, [this.key]: { ...this.instruction } } };
  }

  aggregate(ctx: RoundContext, updates: readonly ClientUpdate[], failures?: readonly RoundFailure[]): AggregateResult {
    for (const update of updates) this.observe(update);
    return this.withEpsilon(this.inner.aggregate(ctx, updates, failures));
  }

  privacyStopReason(record: RoundRecord): string | undefined {
    const refusal = record.failed.find((f) => f.reason.includes(PRIVACY_BUDGET_REFUSAL));
    if (refusal) return `differential_privacy (${this.settings.mode}): learner ${refusal.learner} refused to train: ${refusal.reason}`;
    const target = this.settings.targetEpsilon;
    const next = Math.max(0, ...[...this.spent.values()].map((s) => s.next));
    if (target !== undefined && next > target) {
      return `differential_privacy (${this.settings.mode}): the next round would take a learner to epsilon ${next.toFixed(3)} > target_epsilon ${target}`;
    }
    return undefined;
  }

  getState(): AggregatorState {
    const worst = this.worst();
    return { ...this.inner.getState(), dp_epsilon_max: worst.now, dp_epsilon_next_max: worst.next };
  }

  setState(state: AggregatorState): void {
    const inner: AggregatorState = {};
    for (const [key, value] of Object.entries(state)) if (!key.startsWith('dp_')) inner[key] = value;
    this.inner.setState(inner);
    // The learners keep their own accountants; the trainer keeps only the worst it has seen.
    if (typeof state.dp_epsilon_max === 'number' && typeof state.dp_epsilon_next_max === 'number') {
      this.spent.set('(checkpoint)', { now: state.dp_epsilon_max, next: state.dp_epsilon_next_max });
    }
  }

  private observe(update: ClientUpdate): void {
    const now = update.meta?.dp_epsilon;
    const next = update.meta?.dp_epsilon_next;
    if (typeof now === 'number' && typeof next === 'number') this.spent.set(update.clientId, { now, next });
  }

  private worst(): { now: number; next: number } {
    const all = [...this.spent.values()];
    return { now: Math.max(0, ...all.map((s) => s.now)), next: Math.max(0, ...all.map((s) => s.next)) };
  }

  private withEpsilon(result: AggregateResult): AggregateResult {
    const { clip_norm: c, noise_multiplier: z } = this.instruction;
    return { ...result, metrics: { ...result.metrics, dp_epsilon: this.worst().now, dp_clip_norm: c, dp_noise_std: z * c } };
  }

  private observing(accumulator: Accumulator): Accumulator {
    return {
      add: (update) => {
        accumulator.add(update);
        this.observe(update);
      },
      finish: (failures) => this.withEpsilon(accumulator.finish(failures)),
    };
  }
}

/** Wraps a rule for DP applied on the learners (mode local or dp_sgd); throws when the settings cannot give the guarantee. */
export function withLearnerDp(inner: Aggregator, settings: LearnerDpSettings): Aggregator {
  return new LearnerDpAggregator(inner, settings);
}

/** Rules whose learners send vectors next to the weights, which learner-side DP does not noise. */
const SENDS_EXTRAS: Record<string, string> = {
  scaffold: "SCAFFOLD's control-variate delta",
  fedproto: 'class prototypes (feature sums per class)',
  feddistill: 'per-class logits',
};

/**
 * The config's `differential_privacy` with mode local or dp_sgd around the trainer's rule; mode local
 * with `secure_aggregation` enabled is distributed DP (local-dp-distributed.ts).
 */
export function withLearnerDifferentialPrivacy(
  rule: Aggregator,
  dp: DifferentialPrivacyConfig,
  trainer: Pick<TrainerArgs, 'max_rounds' | 'client_fraction' | 'min_clients'>,
  node?: Partial<Pick<NodeConfig, 'aggregator' | 'secure_aggregation'>>,
): Aggregator {
  if (dp.mode === 'central') throw new Error('withLearnerDifferentialPrivacy: mode central is the trainer\'s (central-dp.ts)');
  if (dp.adaptive_clipping) throw new Error(`differential_privacy (mode ${dp.mode}): adaptive_clipping is central-only; set clip_norm`);
  const extra = SENDS_EXTRAS[rule.type];
  if (extra) {
    throw new Error(
      `differential_privacy (mode ${dp.mode}): with aggregator "${rule.type}" learners send ${extra} next to the weights, in clear; ` +
        'learner-side differential privacy covers the weights only',
    );
  }
  const secure = node?.secure_aggregation;
  if (dp.mode === 'local' && secure?.enabled) {
    return withDistributedDp(rule, {
      clipNorm: dp.clip_norm,
      noiseMultiplier: dp.noise_multiplier,
      targetEpsilon: dp.target_epsilon,
      delta: dp.delta,
      samplingRate: trainer.client_fraction,
      maxRounds: trainer.max_rounds,
      minParticipants: trainer.min_clients,
      secureAggregation: secure,
      weighted: node?.aggregator?.args?.weighted !== false,
    });
  }
  return withLearnerDp(rule, {
    mode: dp.mode,
    clipNorm: dp.clip_norm,
    noiseMultiplier: dp.noise_multiplier,
    targetEpsilon: dp.target_epsilon,
    delta: dp.delta,
    maxRounds: trainer.max_rounds,
  });
}
