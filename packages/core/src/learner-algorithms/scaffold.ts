import { SCAFFOLD_CONTROL_DELTA, SCAFFOLD_SERVER_CONTROL, scaffoldControlUpdate } from '@oiafed/aggregators';
import { PayloadMismatchError } from '../serde.js';
import type {
  LearnerAlgorithm,
  LearnerAlgorithmDefinition,
  LocalRoundContext,
  LocalTrainingOutcome,
  TrainingAdjustments,
  UpdateAdditions,
} from './types.js';

/**
 * SCAFFOLD, learner side (Karimireddy et al. 2020, Algorithm 1): every local gradient is
 * corrected by (c - c_i), and after training the client control variate c_i is updated (option
 * II, see scaffoldControlUpdate) and its delta sent back. Needs the aggregator `scaffold`, which
 * sets `scaffold: true` and sends c as the `server_control` tensor.
 */
export const scaffoldLearner: LearnerAlgorithmDefinition = {
  type: 'scaffold',
  argsSchema: { type: 'object', additionalProperties: false, properties: {} },
  instructions: { scaffold: { type: 'boolean' } },
  create: () => new ScaffoldLearner(),
};

class ScaffoldLearner implements LearnerAlgorithm {
  readonly type = 'scaffold';
  /** c_i: this learner's control variate, zero until its first SCAFFOLD round. */
  private control: Float32Array | undefined;

  beforeTraining(ctx: LocalRoundContext): TrainingAdjustments {
    const serverControl = serverControlOf(ctx);
    const clientControl = (this.control ??= new Float32Array(ctx.global.length));
    const correction = new Float32Array(ctx.global.length);
    for (let i = 0; i < correction.length; i++) correction[i] = serverControl[i]! - clientControl[i]!;
    return { gradientCorrection: correction };
  }

  afterTraining(outcome: LocalTrainingOutcome): UpdateAdditions {
    const { newClientControl, delta } = scaffoldControlUpdate({
      clientControl: this.control!,
      serverControl: serverControlOf(outcome),
      global: outcome.global,
      local: outcome.local,
      steps: outcome.result.steps,
      lr: outcome.settings.lr,
    });
    this.control = newClientControl;
    return { extras: { [SCAFFOLD_CONTROL_DELTA]: delta } };
  }
}

function serverControlOf(ctx: LocalRoundContext): Float32Array {
  const serverControl = ctx.tensors[SCAFFOLD_SERVER_CONTROL];
  if (!serverControl) throw new PayloadMismatchError('scaffold round without a server_control tensor');
  return serverControl;
}
