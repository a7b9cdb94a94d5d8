export { Trainer, formatRoundLine, formatSummary } from './trainer.js';
export type { TrainerOptions, TrainerSettings, TrainingSummary } from './trainer.js';
export { Learner } from './learner.js';
export type { LearnerOptions, LearnerSettings } from './learner.js';
export {
  createLearnerAlgorithm,
  findLearnerAlgorithm,
  instructionOwner,
  learnerCapabilities,
  listLearnerAlgorithms,
  registerLearnerAlgorithm,
} from './learner-algorithms/registry.js';
export { BUILTIN_LEARNER_ALGORITHMS, registerBuiltinLearnerAlgorithms } from './learner-algorithms/builtins.js';
export { LearnerAlgorithms } from './learner-algorithms/learner-algorithms.js';
export type { ActiveAlgorithm } from './learner-algorithms/learner-algorithms.js';
export type {
  LearnerAlgorithm,
  LearnerAlgorithmDefinition,
  LocalRoundContext,
  LocalTrainingOutcome,
  LocalTrainingSettings,
  PersonalizationContext,
  TrainingAdjustments,
  UpdateAdditions,
} from './learner-algorithms/types.js';
export {
  createCallback,
  earlyStopping,
  modelCheckpoint,
  registerBuiltinCallbacks,
  registerCallback,
  writeModelFiles,
} from './callbacks.js';
export type { CallbackFactory, RoundControl, RoundRecord, TrainerCallback } from './callbacks.js';
export { listComponents, lookupComponent, registerComponent } from './registry.js';
export type { ComponentKind } from './registry.js';
export {
  buildAggregator,
  buildModel,
  buildTransport,
  createNodeLogger,
  loadNodeData,
  loadPlugins,
  prepareNode,
  registerAllBuiltins,
  selectComputeBackend,
} from './build.js';
export type { NodeData, TransportBuildOptions } from './build.js';
export { DEFAULT_NUM_PARTITIONS, deriveLearnerConfig, learnerId, withPartitionCount } from './derive.js';
export { defaultRunDir, runLearnerNode, runNode, runSerial, runTrainerNode } from './runner.js';
export type { LearnerRunResult, RunOptions, SerialOptions } from './runner.js';
export { LearnerMethods, RegistrationKeys, DEFAULT_LEARNER_CAPABILITIES } from './protocol.js';
export {
  SECURE_AGGREGATION_CAPABILITY,
  SECURE_AGGREGATION_COMPATIBLE,
  SecureAggregationMethods,
  checkSecureAggregationRule,
  secureAggregationSettings,
} from './secure-aggregation.js';
export type { SecureAggregationSettings } from './secure-aggregation.js';
export { serveSecureAggregation } from './secure-aggregation-learner.js';
export type { SecureAggregationHost } from './secure-aggregation-learner.js';
export type {
  EvaluateRequestBody,
  EvaluateResponseBody,
  InfoResponseBody,
  LearnerStatusBody,
  RoundTrainConfig,
  ShutdownBody,
  TrainRequestBody,
  TrainResponseBody,
} from './protocol.js';
export { TrainerMethods } from './protocol.js';
export { PayloadMismatchError, extrasToTensors, tensorsToExtras, tensorsToWeights, weightsToTensors } from './serde.js';
export {
  checkCompression,
  compressUpdate,
  decodeUpdateWeights,
  float16ToFloat32,
  float32ToFloat16,
  isCompressedUpdate,
  topKIndices,
} from './compression.js';
export type { UpdateCompression } from './compression.js';
export { Mutex } from './mutex.js';
export { silentLogger } from './logger.js';
export type { Logger } from './logger.js';
export { freeLoopbackPort, launchLocal } from './launch.js';
export type { LaunchOptions, LaunchResult } from './launch.js';
export { launchOverSsh } from './launch-ssh.js';
export type { HostOutcome, HostStatus, SshLaunchOptions, SshLaunchResult } from './launch-ssh.js';
export { readLatestCheckpoint, writeCheckpoint } from './checkpoint.js';
export type { CheckpointState } from './checkpoint.js';
export { learnerEpochProgress, trainerProgress, watchRegistrations } from './progress.js';
export type { EpochInfo, ProgressHookOptions, ProgressStream } from './progress.js';
export { recordLocalTraining, trackTransportBytes } from './learner-metrics.js';
export { collectPersonalizedEvaluation, summarizePersonalized } from './personalized-eval.js';
export type { LearnerEvaluation, PersonalizedAccuracy } from './personalized-eval.js';
export type { LocalTrainInfo } from './learner-metrics.js';
