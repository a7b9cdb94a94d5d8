/**
 * Distributed DP: `differential_privacy: {mode: local}` together with `secure_aggregation` (issue 16 §2).
 * Every learner clips its delta to C and adds only its share of the noise, N(0, (z C)^2 / m) with
 * m = min_clients; secure aggregation hands the trainer only the sum of the survivors' updates (at
 * least m of them, or the round fails), which therefore carries noise of std >= z C: the central
 * DP-FedAvg mechanism (sensitivity C for adding or removing one learner), without the trainer ever
 * seeing an update. The trainer accounts it like central DP, one subsampled Gaussian step per round at
 * q = selected / registered learners.
 * Stated approximations: secure aggregation clips each coordinate to clip_range before quantizing; the
 * accounting treats that clip as not binding (refused below clip_norm + 6 noise-share std) and ignores
 * the (unbiased) stochastic rounding. Learners must be weighted equally (aggregator weighted: false):
 * with sample-count weights one learner's share of the sum, and its sensitivity, is w / W, not 1.
 */
import type { AggregateResult, Aggregator, AggregatorState, ClientUpdate, RoundContext, RoundFailure, RoundPlan } from '@oiafed/aggregators';
import type { SecureAggregationConfig } from '@oiafed/config';
import { PrivacyAccountant, epsilonFor, noiseMultiplierFor } from '@oiafed/privacy';
import type { RoundRecord } from '@oiafed/tracker';
import { accountantCheckpoint, restoreAccountant, withoutDpKeys } from './central-dp.js';
import { LOCAL_DP_INSTRUCTION, type LearnerDpInstruction } from './local-dp-learner.js';
import type { PrivacyBudgetGuard } from './local-dp.js';

export interface DistributedDpSettings {
  clipNorm?: number;
  noiseMultiplier?: number;
  targetEpsilon?: number;
  delta: number;
  /** `client_fraction`: q for the checks before round 1; rounds are charged at their own rate. */
  samplingRate: number;
  maxRounds: number;
  /** m: the fewest updates a round aggregates (`min_clients`); each learner adds 1 / sqrt(m) of the noise. */
  minParticipants: number;
  secureAggregation: SecureAggregationConfig;
  /** The rule weights learners by sample count (`weighted`, default true): refused. */
  weighted: boolean;
}

const WHERE = 'differential_privacy (mode local) with secure_aggregation (distributed DP)';

/** The noise multiplier of the sum: the configured one (refused when one round overspends) or the one the budget allows over max_rounds. */
function resolveSumNoise(s: DistributedDpSettings): number {
  const { targetEpsilon: target, samplingRate: q, delta } = s;
  if (s.noiseMultiplier === undefined) {
    if (target === undefined) throw new Error(`${WHERE}: set noise_multiplier or target_epsilon`);
    return noiseMultiplierFor(target, q, s.maxRounds, delta);
  }
  if (target !== undefined && epsilonFor(q, s.noiseMultiplier, 1, delta) > target) {
    throw new Error(
      `${WHERE}: one round at noise_multiplier ${s.noiseMultiplier} (sampling rate ${q}) already spends epsilon ` +
        `${epsilonFor(q, s.noiseMultiplier, 1, delta).toFixed(3)} > target_epsilon ${target}`,
    );
  }
  return s.noiseMultiplier;
}

/** The learners' instruction; throws when the settings cannot give the stated guarantee. */
export function distributedDpInstruction(s: DistributedDpSettings): LearnerDpInstruction {
  if (s.clipNorm === undefined) throw new Error(`${WHERE}: needs clip_norm`);
  if (s.weighted) {
    throw new Error(`${WHERE}: set aggregator.args.weighted: false; with sample-count weights a learner's share of the sum, and so its sensitivity, is w / W instead of 1`);
  }
  const z = resolveSumNoise(s);
  const share = 1 / Math.sqrt(s.minParticipants);
  const shareStd = z * s.clipNorm * share;
  const needed = s.clipNorm + 6 * shareStd;
  if (s.secureAggregation.clip_range < needed) {
    throw new Error(
      `${WHERE}: secure_aggregation.clip_range ${s.secureAggregation.clip_range} would clip noised coordinates (clip_norm ${s.clipNorm} + 6 x noise-share std ${shareStd.toFixed(3)}); use clip_range >= ${needed.toFixed(3)}`,
    );
  }
  return { clip_norm: s.clipNorm, noise_multiplier: z, delta: s.delta, noise_share: share, ...(s.targetEpsilon === undefined ? {} : { target_epsilon: s.targetEpsilon }) };
}

class DistributedDpAggregator implements Aggregator, PrivacyBudgetGuard {
  readonly type: string;
  readonly selectLearners?: Aggregator['selectLearners'];
  private readonly instruction: LearnerDpInstruction;
  private readonly accountant = new PrivacyAccountant();
  private lastQ: number | undefined;

  constructor(
    private readonly inner: Aggregator,
    private readonly settings: DistributedDpSettings,
  ) {
    this.type = inner.type;
    this.instruction = distributedDpInstruction(settings);
    if (inner.selectLearners) this.selectLearners = (...args) => inner.selectLearners!(...args);
  }

  configureRound(ctx: RoundContext): RoundPlan {
    const plan = this.inner.configureRound(ctx);
    return { ...plan, instructions: { ...plan.instructions, [LOCAL_DP_INSTRUCTION]: { ...this.instruction } } };
  }

  /** Under secure aggregation the one update is the unmasked mean; the accountant charges the round. */
  aggregate(ctx: RoundContext, updates: readonly ClientUpdate[], failures?: readonly RoundFailure[]): AggregateResult {
    const q = Math.min(1, Math.max(1, ctx.selectedClients.length) / Math.max(1, ctx.totalClients));
    const z = this.instruction.noise_multiplier;
    const after = this.accountant.epsilonAfter(q, z, 1, this.settings.delta);
    const target = this.settings.targetEpsilon;
    if (target !== undefined && after > target) {
      throw new Error(`${WHERE}: this round would spend epsilon ${after.toFixed(3)} > target_epsilon ${target}; the model stays`);
    }
    const result = this.inner.aggregate(ctx, updates, failures);
    this.accountant.step(q, z);
    this.lastQ = q;
    const { clip_norm: c } = this.instruction;
    return { ...result, metrics: { ...result.metrics, dp_epsilon: this.accountant.epsilon(this.settings.delta), dp_clip_norm: c, dp_noise_std: z * c } };
  }

  privacyStopReason(_record: RoundRecord): string | undefined {
    const target = this.settings.targetEpsilon;
    if (target === undefined) return undefined;
    const q = Math.max(this.lastQ ?? 0, this.settings.samplingRate);
    const after = this.accountant.epsilonAfter(q, this.instruction.noise_multiplier, 1, this.settings.delta);
    return after > target ? `${WHERE}: the next round would spend epsilon ${after.toFixed(3)} > target_epsilon ${target}` : undefined;
  }

  getState(): AggregatorState {
    return { ...this.inner.getState(), ...accountantCheckpoint(this.accountant) };
  }

  setState(state: AggregatorState): void {
    this.inner.setState(withoutDpKeys(state));
    restoreAccountant(this.accountant, state, this.instruction.noise_multiplier);
  }
}

/** Wraps a sum-based rule for distributed DP under secure aggregation; throws when the settings cannot give the guarantee. */
export function withDistributedDp(inner: Aggregator, settings: DistributedDpSettings): Aggregator {
  return new DistributedDpAggregator(inner, settings);
}
