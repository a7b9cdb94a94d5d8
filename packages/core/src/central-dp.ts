/**
 * Central DP-FedAvg as a wrapper around a sum-based aggregation rule (issue 16 §2; McMahan et al. 2018,
 * adaptive clipping of Andrew et al. 2021): each update's delta is clipped, the clipped deltas are averaged
 * over the expected number of participants, Gaussian noise is added by the trainer, and the wrapped rule
 * (fedavg, fedavgm, fedadam, ...) applies the noised mean as if it were the one update of the round.
 * The accountant charges one subsampled Gaussian step per round at the round's sampling rate, selected / registered
 * learners (min_clients can make it larger than `client_fraction`, which only the budget check at start uses); a round
 * that would take the spent epsilon past `target_epsilon` fails instead (the trainer keeps the previous model).
 * Accounting assumes Poisson sampling of learners; the trainer samples a fixed-size subset, the usual
 * approximation of DP-FedAvg implementations (TFF, Flower), stated in the docs.
 */
import type { AggregateResult, Aggregator, AggregatorState, ClientUpdate, RoundContext, RoundPlan } from '@oiafed/aggregators';
import type { DifferentialPrivacyConfig, NodeConfig, TrainerArgs } from '@oiafed/config';
import { PrivacyAccountant, adaptClipNorm, adaptiveUpdateNoiseMultiplier, cryptoNormal, dpMean, epsilonFor, noiseMultiplierFor } from '@oiafed/privacy';
import type { NormalSource } from '@oiafed/privacy';
import type { RoundRecord } from '@oiafed/tracker';
import { withLearnerDifferentialPrivacy, type PrivacyBudgetGuard } from './local-dp.js';

/** Rules whose result is a function of the (weighted) mean update: the noised mean can stand in for it. */
export const DP_COMPATIBLE_AGGREGATORS: readonly string[] = ['fedavg', 'fedavgm', 'fedprox', 'fedadam', 'fedyogi', 'fedadagrad'];

export interface AdaptiveClippingSettings {
  initialClipNorm: number;
  /** gamma (default 0.5). */
  targetQuantile: number;
  /** eta_C (default 0.2). */
  learningRate: number;
  /** sigma_b; default max(m / 20, noise_multiplier) so the update keeps most of the noise budget. */
  countStddev?: number;
}

export interface CentralDpSettings {
  noiseMultiplier?: number;
  clipNorm?: number;
  adaptiveClipping?: AdaptiveClippingSettings;
  targetEpsilon?: number;
  delta: number;
  /** q for the budget check before round 1 (`trainer.args.client_fraction`); rounds are charged at their own rate. */
  samplingRate: number;
  maxRounds: number;
  /** Noise source; Box–Muller over node:crypto unless a test passes a seeded one. */
  normal?: NormalSource;
}

/** The noise multiplier the run uses: the configured one (checked against the budget) or the one the budget allows. */
export function resolveNoiseMultiplier(s: CentralDpSettings): number {
  const { targetEpsilon, samplingRate: q, maxRounds, delta } = s;
  if (s.noiseMultiplier === undefined) {
    if (targetEpsilon === undefined) throw new Error('differential_privacy: set noise_multiplier or target_epsilon');
    return noiseMultiplierFor(targetEpsilon, q, maxRounds, delta);
  }
  if (targetEpsilon !== undefined) {
    const spent = epsilonFor(q, s.noiseMultiplier, maxRounds, delta);
    if (spent > targetEpsilon) {
      const needed = noiseMultiplierFor(targetEpsilon, q, maxRounds, delta);
      throw new Error(
        `differential_privacy: noise_multiplier ${s.noiseMultiplier} over ${maxRounds} rounds at sampling rate ${q} spends ` +
          `epsilon ${spent.toFixed(3)} > target_epsilon ${targetEpsilon} (delta ${delta}); use noise_multiplier >= ${needed.toFixed(3)} or fewer rounds`,
      );
    }
  }
  return s.noiseMultiplier;
}

function delta(update: ClientUpdate, global: Float32Array): Float32Array {
  const out = new Float32Array(global.length);
  for (let i = 0; i < global.length; i++) out[i] = update.weights[i] - global[i];
  return out;
}

class CentralDpAggregator implements Aggregator, PrivacyBudgetGuard {
  readonly type: string;
  private readonly accountant = new PrivacyAccountant();
  private readonly noiseMultiplier: number;
  private readonly normal: NormalSource;
  private clipNorm: number;
  /** The sampling rate of the last aggregated round: the next round's estimate for the budget stop. */
  private lastQ: number | undefined;

  constructor(
    private readonly inner: Aggregator,
    private readonly settings: CentralDpSettings,
  ) {
    if (!DP_COMPATIBLE_AGGREGATORS.includes(inner.type)) {
      throw new Error(
        `differential_privacy (central) needs a rule that averages updates (${DP_COMPATIBLE_AGGREGATORS.join(', ')}); ` +
          `${inner.type} does not: it looks at individual updates, which the noised mean replaces`,
      );
    }
    if ((settings.clipNorm === undefined) === (settings.adaptiveClipping === undefined)) {
      throw new Error('differential_privacy: set exactly one of clip_norm and adaptive_clipping');
    }
    this.type = inner.type;
    this.noiseMultiplier = resolveNoiseMultiplier(settings);
    this.clipNorm = settings.clipNorm ?? settings.adaptiveClipping!.initialClipNorm;
    this.normal = settings.normal ?? cryptoNormal();
  }

  configureRound(ctx: RoundContext): RoundPlan {
    return this.inner.configureRound(ctx);
  }

  aggregate(ctx: RoundContext, updates: readonly ClientUpdate[]): AggregateResult {
    const m = Math.max(1, ctx.selectedClients.length);
    const adaptive = this.settings.adaptiveClipping;
    const countStd = adaptive ? (adaptive.countStddev ?? Math.max(m / 20, this.noiseMultiplier)) : 0;
    const z = adaptive ? adaptiveUpdateNoiseMultiplier(this.noiseMultiplier, countStd) : this.noiseMultiplier;
    const clipUsed = this.clipNorm;
    const q = Math.min(1, m / Math.max(1, ctx.totalClients));
    this.refuseOverspend(q);
    this.lastQ = q;
    const noised = dpMean(
      updates.map((u) => delta(u, ctx.global)),
      { clipNorm: clipUsed, noiseMultiplier: z, expectedParticipants: m, normal: this.normal },
    );
    const weights = new Float32Array(ctx.global.length);
    for (let i = 0; i < weights.length; i++) weights[i] = ctx.global[i] + noised.mean[i];
    const result = this.inner.aggregate(ctx, [{ clientId: 'dp-mean', weights, numSamples: 1 }]);
    this.accountant.step(q, this.noiseMultiplier);
    if (adaptive) this.clipNorm = adaptClipNorm(clipUsed, noised.withinClip, m, { ...adaptive, countStd, normal: this.normal });
    return {
      weights: result.weights,
      metrics: {
        ...result.metrics,
        dp_epsilon: this.accountant.epsilon(this.settings.delta),
        dp_clip_norm: clipUsed,
        dp_noise_std: noised.noiseStd,
      },
    };
  }

  getState(): AggregatorState {
    return { ...this.inner.getState(), dp_clip_norm: this.clipNorm, ...accountantCheckpoint(this.accountant) };
  }

  setState(state: AggregatorState): void {
    this.inner.setState(withoutDpKeys(state));
    if (typeof state.dp_clip_norm === 'number') this.clipNorm = state.dp_clip_norm;
    restoreAccountant(this.accountant, state, this.noiseMultiplier);
  }

  privacyStopReason(_record: RoundRecord): string | undefined {
    const { targetEpsilon, delta, samplingRate } = this.settings;
    if (targetEpsilon === undefined) return undefined;
    const q = Math.max(this.lastQ ?? 0, samplingRate);
    const after = this.accountant.epsilonAfter(q, this.noiseMultiplier, 1, delta);
    return after > targetEpsilon
      ? `differential_privacy (central): the next round would spend epsilon ${after.toFixed(3)} > target_epsilon ${targetEpsilon}`
      : undefined;
  }

  private refuseOverspend(q: number): void {
    const { targetEpsilon, delta } = this.settings;
    if (targetEpsilon === undefined) return;
    const after = this.accountant.epsilonAfter(q, this.noiseMultiplier, 1, delta);
    if (after > targetEpsilon) {
      throw new Error(`differential_privacy: this round would spend epsilon ${after.toFixed(3)} > target_epsilon ${targetEpsilon}; the model stays`);
    }
  }
}

/** Wraps a sum-based rule with central DP-FedAvg; throws when the rule or the settings cannot give the guarantee. */
export function withCentralDp(inner: Aggregator, settings: CentralDpSettings): Aggregator {
  return new CentralDpAggregator(inner, settings);
}

/**
 * The config's `differential_privacy` around the trainer's rule: central here, local and dp_sgd in
 * local-dp.ts (`node` tells whether secure aggregation makes mode local distributed DP).
 */
export function withDifferentialPrivacy(
  rule: Aggregator,
  dp: DifferentialPrivacyConfig,
  trainer: Pick<TrainerArgs, 'client_fraction' | 'max_rounds' | 'min_clients'>,
  node?: Partial<Pick<NodeConfig, 'aggregator' | 'secure_aggregation'>>,
): Aggregator {
  if (dp.mode === 'local' || dp.mode === 'dp_sgd') return withLearnerDifferentialPrivacy(rule, dp, trainer, node);
  const adaptive = dp.adaptive_clipping;
  return withCentralDp(rule, {
    noiseMultiplier: dp.noise_multiplier,
    clipNorm: dp.clip_norm,
    adaptiveClipping: adaptive && {
      initialClipNorm: adaptive.initial_clip_norm,
      targetQuantile: adaptive.target_quantile,
      learningRate: adaptive.learning_rate,
      countStddev: adaptive.count_stddev,
    },
    targetEpsilon: dp.target_epsilon,
    delta: dp.delta,
    samplingRate: trainer.client_fraction,
    maxRounds: trainer.max_rounds,
  });
}

/** The accountant's history as flat `dp_*` checkpoint keys (a checkpoint's aggregator state is flat). */
export function accountantCheckpoint(accountant: PrivacyAccountant): AggregatorState {
  const history = accountant.getState().history;
  const state: AggregatorState = { dp_entries: history.length };
  history.forEach((e, k) => {
    state[`dp_q_${k}`] = e.q;
    state[`dp_steps_${k}`] = e.steps;
  });
  return state;
}

/** Puts back what {@link accountantCheckpoint} saved; every entry was charged at `sigma`. */
export function restoreAccountant(accountant: PrivacyAccountant, state: AggregatorState, sigma: number): void {
  const entries = typeof state.dp_entries === 'number' ? state.dp_entries : 0;
  const history = Array.from({ length: entries }, (_, k) => ({ q: state[`dp_q_${k}`] as number, sigma, steps: state[`dp_steps_${k}`] as number }));
  accountant.setState({ history });
}

/** The wrapped rule's part of a checkpoint: everything but the `dp_*` keys. */
export function withoutDpKeys(state: AggregatorState): AggregatorState {
  const inner: AggregatorState = {};
  for (const [key, value] of Object.entries(state)) if (!key.startsWith('dp_')) inner[key] = value;
  return inner;
}
