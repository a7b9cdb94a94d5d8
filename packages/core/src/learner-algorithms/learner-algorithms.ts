/**
 * One learner's algorithms: the one its config names (`learner.type`) and those the trainer's
 * instructions switch on, each instance kept for the learner's lifetime so its state persists.
 * The Learner calls these around local training and never looks at an algorithm by name.
 */
import { validateSchema, type LearnerInstructions, type TensorSpec, type WeightLayout } from '@oiafed/aggregators';
import { PayloadMismatchError } from '../serde.js';
import { registerBuiltinLearnerAlgorithms } from './builtins.js';
import { createLearnerAlgorithm, instructionOwner, learnerCapabilities } from './registry.js';
import type {
  LearnerAlgorithm,
  LocalRoundContext,
  LocalRun,
  LocalTrainingContext,
  LocalTrainingOutcome,
  RunLocalTraining,
  TrainingAdjustments,
  UpdateAdditions,
} from './types.js';

/** An algorithm switched on for one round, with the instructions it owns. */
export interface ActiveAlgorithm {
  algorithm: LearnerAlgorithm;
  instructions: Record<string, unknown>;
}

/** Values that leave an instruction off (the trainer asks no capability for them either). */
function isOff(value: unknown): boolean {
  return value === undefined || value === null || value === false || value === 0;
}

export class LearnerAlgorithms {
  private readonly instances = new Map<string, LearnerAlgorithm>();
  /** Per algorithm that keeps tensors local: the weights of its last local training. */
  private readonly kept = new Map<LearnerAlgorithm, Float32Array>();
  private readonly configured: LearnerAlgorithm | undefined;

  /** @param config `learner.type` and the algorithm's args; absent means plain local SGD. */
  constructor(config?: { type: string; args?: Record<string, unknown> }) {
    registerBuiltinLearnerAlgorithms();
    if (config) {
      this.configured = createLearnerAlgorithm(config);
      this.instances.set(config.type, this.configured);
    }
  }

  /**
   * The algorithms a round runs: the configured one, then the owners of the instruction keys the
   * plan sets, each value checked against its owner's schema.
   */
  forRound(instructions: LearnerInstructions): ActiveAlgorithm[] {
    const active = new Map<LearnerAlgorithm, Record<string, unknown>>();
    if (this.configured) active.set(this.configured, {});
    for (const [key, value] of Object.entries(instructions ?? {})) {
      if (isOff(value)) continue;
      const owner = instructionOwner(key);
      if (!owner) {
        throw new PayloadMismatchError(
          `instruction "${key}" belongs to no learner algorithm here (this learner knows: ${learnerCapabilities().join(', ') || 'none'})`,
        );
      }
      const errors: string[] = [];
      validateSchema(owner.instructions![key]!, value, `instructions.${key}`, errors);
      if (errors.length > 0) throw new PayloadMismatchError(`learner algorithm "${owner.type}": ${errors.join('; ')}`);
      const algorithm = this.instance(owner.type);
      active.set(algorithm, { ...active.get(algorithm), [key]: value });
    }
    return [...active].map(([algorithm, owned]) => ({ algorithm, instructions: owned }));
  }

  /** The weights to train from: the global model with the active algorithms' local tensors put back. */
  startWeights(global: Float32Array, layout: WeightLayout, active: readonly ActiveAlgorithm[]): Float32Array {
    let start = global;
    for (const { algorithm } of active) start = this.overlayKept(start, layout, algorithm);
    return start;
  }

  /** The weights to evaluate: the global model with every local tensor this learner keeps. */
  evaluationWeights(global: Float32Array, layout: WeightLayout): Float32Array {
    let weights = global;
    for (const algorithm of this.kept.keys()) weights = this.overlayKept(weights, layout, algorithm);
    return weights;
  }

  /** Every algorithm instance this learner has run so far (the configured one first). */
  instancesSoFar(): LearnerAlgorithm[] {
    return [...this.instances.values()];
  }

  /** Merges the active algorithms' per-step terms; two setting the same term is an error. */
  beforeTraining(active: readonly ActiveAlgorithm[], round: Omit<LocalRoundContext, 'instructions'>): TrainingAdjustments {
    const merged: TrainingAdjustments = {};
    const setBy: Record<string, string> = {};
    for (const { algorithm, instructions } of active) {
      const adjustments = algorithm.beforeTraining?.({ ...round, instructions }) ?? {};
      for (const [key, value] of Object.entries(adjustments)) {
        if (value === undefined) continue;
        if (setBy[key]) throw new Error(`learner algorithms "${setBy[key]}" and "${algorithm.type}" both set ${key}`);
        setBy[key] = algorithm.type;
        (merged as Record<string, unknown>)[key] = value;
      }
    }
    return merged;
  }

  /**
   * The round's local training: the one active algorithm with a `localTraining` hook runs it
   * through `run`, else one run from `ctx.start`. `run` gets the request's adjustments.
   */
  async localTraining(active: readonly ActiveAlgorithm[], ctx: Omit<LocalTrainingContext, 'instructions'>, run: RunLocalTraining): Promise<LocalRun> {
    const owners = active.filter(({ algorithm }) => algorithm.localTraining);
    if (owners.length > 1) {
      throw new Error(`learner algorithms "${owners[0]!.algorithm.type}" and "${owners[1]!.algorithm.type}" both run local training`);
    }
    const owner = owners[0];
    if (!owner) return run({ start: ctx.start });
    return owner.algorithm.localTraining!({ ...ctx, instructions: owner.instructions }, run);
  }

  /** Collects extras and meta for the update, and keeps the local tensors of personalizing algorithms. */
  afterTraining(active: readonly ActiveAlgorithm[], outcome: Omit<LocalTrainingOutcome, 'instructions'>): Required<UpdateAdditions> {
    const extras: Record<string, Float32Array> = {};
    const meta: Record<string, number | string | boolean> = {};
    for (const { algorithm, instructions } of active) {
      const added = algorithm.afterTraining?.({ ...outcome, instructions }) ?? {};
      for (const [name, vector] of Object.entries(added.extras ?? {})) {
        if (name in extras) throw new Error(`learner algorithm "${algorithm.type}" sends extra "${name}" that another one sends too`);
        extras[name] = vector;
      }
      Object.assign(meta, added.meta);
      if (algorithm.keepsLocal) this.kept.set(algorithm, outcome.local.slice());
    }
    const dp = active.find(({ algorithm }) => algorithm.privatizesWeightsOnly);
    if (dp && Object.keys(extras).length > 0) {
      throw new Error(
        `learner algorithm "${dp.algorithm.type}" makes the weights differentially private, not the extra vectors ` +
          `${Object.keys(extras).join(', ')} another algorithm would send in clear; this learner does not send them`,
      );
    }
    return { extras, meta };
  }

  /** The weights the update carries: the trained ones, transformed by the active algorithms that do (local DP). */
  updateToSend(active: readonly ActiveAlgorithm[], outcome: Omit<LocalTrainingOutcome, 'instructions'>): Float32Array {
    let weights = outcome.local;
    for (const { algorithm, instructions } of active) {
      weights = algorithm.transformUpdate?.({ ...outcome, local: weights, instructions }) ?? weights;
    }
    return weights;
  }

  private instance(type: string): LearnerAlgorithm {
    let algorithm = this.instances.get(type);
    if (!algorithm) {
      algorithm = createLearnerAlgorithm({ type });
      this.instances.set(type, algorithm);
    }
    return algorithm;
  }

  private overlayKept(weights: Float32Array, layout: WeightLayout, algorithm: LearnerAlgorithm): Float32Array {
    const local = this.kept.get(algorithm);
    if (!local || !algorithm.keepsLocal) return weights;
    return overlay(weights, local, layout, (spec) => algorithm.keepsLocal!(spec, layout));
  }
}

/** `base` with the tensors `keep` selects taken from `local`. */
function overlay(base: Float32Array, local: Float32Array, layout: WeightLayout, keep: (spec: TensorSpec) => boolean): Float32Array {
  const merged = base.slice();
  for (const spec of layout) {
    if (keep(spec)) merged.set(local.subarray(spec.offset, spec.offset + spec.size), spec.offset);
  }
  return merged;
}
