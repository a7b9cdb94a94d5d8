/**
 * The learner side of differential privacy that learners apply themselves (issue 16 §2), as learner
 * algorithms the trainer's plan switches on (so a learner needs no DP config of its own):
 * - `local_dp`: after local training the update's delta is clipped to C and N(0, (zC)^2) is added to
 *   each coordinate before it leaves the learner (Flower's LocalDpMod);
 * - `dp_sgd`: local training itself is DP-SGD (per-example clipping and noise, @oiafed/models dp-sgd.ts).
 * Each learner keeps its own accountant and reports `dp_epsilon` (spent so far) and `dp_epsilon_next`
 * (after one more such round) in its update's meta; with `target_epsilon` it refuses a round that
 * would take it past the budget (the reason starts with PRIVACY_BUDGET_REFUSAL).
 */
import type { JsonSchemaObject } from '@oiafed/aggregators';
import { PrivacyAccountant, cryptoNormal, dpSgdSamplingRate, dpSgdStepsPerRound, localDpEpsilon, privatizeUpdate } from '@oiafed/privacy';
import type { LearnerAlgorithm, LearnerAlgorithmDefinition, LocalRoundContext, LocalTrainingOutcome, TrainingAdjustments, UpdateAdditions } from './learner-algorithms/types.js';

/** The instruction keys: the trainer's plan sets one of them to {@link LearnerDpInstruction}. */
export const LOCAL_DP_INSTRUCTION = 'local_dp';
export const DP_SGD_INSTRUCTION = 'dp_sgd';
/** How a learner's refusal to overspend begins (the trainer stops on it). */
export const PRIVACY_BUDGET_REFUSAL = 'privacy budget';

/** What the trainer announces to the learners for mode local or dp_sgd. */
export interface LearnerDpInstruction {
  clip_norm: number;
  noise_multiplier: number;
  delta: number;
  target_epsilon?: number;
  /**
   * Distributed DP under secure aggregation (local mode): this learner adds only this share of the
   * noise, noise_multiplier * clip_norm * noise_share (1 / sqrt(min_clients)), so that the unmasked sum
   * of at least min_clients updates carries the whole noise_multiplier * clip_norm. Absent: 1.
   */
  noise_share?: number;
}

const instructionSchema: JsonSchemaObject = {
  type: 'object',
  additionalProperties: false,
  required: ['clip_norm', 'noise_multiplier', 'delta'],
  properties: {
    clip_norm: { type: 'number', exclusiveMinimum: 0 },
    noise_multiplier: { type: 'number', minimum: 0 },
    delta: { type: 'number', exclusiveMinimum: 0, exclusiveMaximum: 1 },
    target_epsilon: { type: 'number', exclusiveMinimum: 0 },
    noise_share: { type: 'number', exclusiveMinimum: 0, maximum: 1 },
  },
};

/** The noise multiplier this learner's own update gets (its share of the round's noise under distributed DP). */
function ownNoiseMultiplier(dp: LearnerDpInstruction): number {
  return dp.noise_multiplier * (dp.noise_share ?? 1);
}

function refuseOverspend(mode: string, dp: LearnerDpInstruction, after: number): void {
  if (dp.target_epsilon !== undefined && after > dp.target_epsilon) {
    throw new Error(
      `${PRIVACY_BUDGET_REFUSAL}: ${mode} this round would take this learner to epsilon ${after.toFixed(3)} > target_epsilon ${dp.target_epsilon} (delta ${dp.delta}); it does not train`,
    );
  }
}

/**
 * Local DP: clip and noise the whole update; epsilon per learner for any two of its local datasets (see
 * localDpEpsilon), at the noise this learner adds itself (with a noise share, what its update alone
 * would reveal if secure aggregation failed).
 */
class LocalDpLearner implements LearnerAlgorithm {
  readonly type = LOCAL_DP_INSTRUCTION;
  readonly privatizesWeightsOnly = true;
  private released = 0;
  private readonly normal = cryptoNormal();

  beforeTraining(ctx: LocalRoundContext): TrainingAdjustments | undefined {
    const dp = ctx.instructions[LOCAL_DP_INSTRUCTION] as LearnerDpInstruction;
    // Under distributed DP the budget is the sum's, which the trainer accounts and guards.
    if (dp.noise_share === undefined) refuseOverspend('local DP:', dp, localDpEpsilon(dp.noise_multiplier, this.released + 1, dp.delta));
    return undefined;
  }

  afterTraining(outcome: LocalTrainingOutcome): UpdateAdditions {
    const dp = outcome.instructions[LOCAL_DP_INSTRUCTION] as LearnerDpInstruction;
    this.released += 1;
    return {
      meta: {
        dp_epsilon: localDpEpsilon(ownNoiseMultiplier(dp), this.released, dp.delta),
        dp_epsilon_next: localDpEpsilon(ownNoiseMultiplier(dp), this.released + 1, dp.delta),
      },
    };
  }

  transformUpdate(outcome: LocalTrainingOutcome): Float32Array {
    const dp = outcome.instructions[LOCAL_DP_INSTRUCTION] as LearnerDpInstruction;
    return privatizeUpdate(outcome.local, outcome.global, { clipNorm: dp.clip_norm, noiseMultiplier: ownNoiseMultiplier(dp), normal: this.normal }).weights;
  }
}

/** DP-SGD: example-level DP of this learner's data, accounted at q = batch / n per step (Poisson approximation of shuffled lots). */
class DpSgdLearner implements LearnerAlgorithm {
  readonly type = DP_SGD_INSTRUCTION;
  readonly privatizesWeightsOnly = true;
  private readonly accountant = new PrivacyAccountant();

  beforeTraining(ctx: LocalRoundContext): TrainingAdjustments {
    const dp = ctx.instructions[DP_SGD_INSTRUCTION] as LearnerDpInstruction;
    const { batchSize, epochs } = ctx.settings;
    const n = ctx.numSamples ?? 0;
    const q = dpSgdSamplingRate(batchSize, n);
    const steps = dpSgdStepsPerRound(batchSize, n, epochs);
    refuseOverspend('DP-SGD:', dp, this.accountant.epsilonAfter(q, dp.noise_multiplier, steps, dp.delta));
    return { dpSgd: { clipNorm: dp.clip_norm, noiseMultiplier: dp.noise_multiplier } };
  }

  afterTraining(outcome: LocalTrainingOutcome): UpdateAdditions {
    const dp = outcome.instructions[DP_SGD_INSTRUCTION] as LearnerDpInstruction;
    const { batchSize, epochs } = outcome.settings;
    const q = dpSgdSamplingRate(batchSize, outcome.result.numSamples);
    this.accountant.step(q, dp.noise_multiplier, outcome.result.steps);
    const next = dpSgdStepsPerRound(batchSize, outcome.result.numSamples, epochs);
    return {
      meta: {
        dp_epsilon: this.accountant.epsilon(dp.delta),
        dp_epsilon_next: this.accountant.epsilonAfter(q, dp.noise_multiplier, next, dp.delta),
      },
    };
  }
}

export const localDpLearner: LearnerAlgorithmDefinition = {
  type: LOCAL_DP_INSTRUCTION,
  argsSchema: { type: 'object', additionalProperties: false, properties: {} },
  instructions: { [LOCAL_DP_INSTRUCTION]: instructionSchema },
  create: () => new LocalDpLearner(),
};

export const dpSgdLearner: LearnerAlgorithmDefinition = {
  type: DP_SGD_INSTRUCTION,
  argsSchema: { type: 'object', additionalProperties: false, properties: {} },
  instructions: { [DP_SGD_INSTRUCTION]: instructionSchema },
  create: () => new DpSgdLearner(),
};
