/**
 * The trainer <-> learner conversation, independent of the transport that carries it.
 * Bodies are small JSON objects; weights and other model-sized vectors travel as tensors
 * (see serde.ts), never inside a body.
 */
import type { LearnerInstructions } from '@oiafed/aggregators';
import { builtinCapabilities } from './learner-algorithms/builtins.js';

/** Method names a learner serves (the trainer calls them). */
export const LearnerMethods = {
  train: 'oiafed.learner.train',
  evaluate: 'oiafed.learner.evaluate',
  /** The learner's personalized model on its own held-out split (personalized-eval.ts). */
  evaluatePersonalized: 'oiafed.learner.evaluate_personalized',
  info: 'oiafed.learner.info',
  shutdown: 'oiafed.learner.shutdown',
} as const;

/** Method names a trainer serves (learners notify them). */
export const TrainerMethods = {
  /** A learner's own state in the round (the dashboard's `uploading`), sent when the train request asks for it. */
  learnerStatus: 'oiafed.trainer.learner_status',
} as const;

/** Body of {@link TrainerMethods.learnerStatus}: the learner finished training `round` and sends its update now. */
export interface LearnerStatusBody {
  round: number;
  state: 'uploading';
}

/** Metadata keys a learner announces when it registers with the trainer. */
export const RegistrationKeys = {
  learnerType: 'oiafed.learner_type',
  capabilities: 'oiafed.capabilities',
  numSamples: 'oiafed.num_samples',
  backend: 'oiafed.backend',
  /** Size of the learner's own held-out split (`partition.test_fraction`); absent or 0: none. */
  localTestSamples: 'oiafed.local_test_samples',
} as const;

/**
 * What a learner with only core's built-in learner algorithms announces: the instruction keys
 * they own. A learner announces those of every algorithm registered in its process.
 */
export const DEFAULT_LEARNER_CAPABILITIES: readonly string[] = builtinCapabilities();

/** Local training settings the trainer sends each round (they override the learner's own config). */
export interface RoundTrainConfig {
  local_epochs: number;
  /** The trainer's `transport.update_compression`; a learner's own setting, when not none, wins. */
  update_compression?: { type: 'none' | 'float16' | 'int8' | 'topk'; topk_ratio?: number };
  batch_size?: number;
  lr?: number;
  /** Set when the trainer shows learner states (dashboard): notify `TrainerMethods.learnerStatus` before sending the update. */
  report_status?: boolean;
}

/** The global model's registry entry; a learner whose config has no `model` builds it from this. */
export interface ModelSpecBody {
  type: string;
  args: Record<string, unknown>;
}

export interface TrainRequestBody {
  round: number;
  model: ModelSpecBody;
  config: RoundTrainConfig;
  instructions: LearnerInstructions;
}

export interface TrainResponseBody {
  round: number;
  num_samples: number;
  local_steps: number;
  metrics: { loss: number; accuracy: number; seconds: number; samples_per_second: number };
  meta: Record<string, number | string | boolean>;
}

export interface EvaluateRequestBody {
  round: number;
  model: ModelSpecBody;
}

export interface EvaluateResponseBody {
  round: number;
  num_samples: number;
  loss: number;
  accuracy: number;
}

export interface InfoResponseBody {
  node_id: string;
  learner_type: string;
  num_samples: number;
  backend: string;
  capabilities: string[];
}

export interface ShutdownBody {
  reason: string;
}
