/**
 * @oiafed/models: model registry, compute-backend selection, flat weight vectors and local
 * training on TensorFlow.js.
 */
export type { ArgsSchema } from './args-schema.js';
export { validateArgs } from './args-schema.js';
export type { BackendInfo, DeviceRequest, SelectBackendOptions } from './backend.js';
export { BackendUnavailableError, selectBackend } from './backend.js';
export type { BlasMode, BlasStatus } from './blas/openblas.js';
export { blasKernelsLabel, blasStatus, enableBlasKernels, setBlasThreads } from './blas/openblas.js';
export { createModel, listModels } from './create-model.js';
export { dpNoiseSource } from './dp-sgd.js';
export { FedModel } from './fed-model.js';
export { LearnerPool } from './parallel/learner-pool.js';
export type { ComputePlan, ComputePlanInput, Parallelism } from './parallel/compute-plan.js';
export {
  BLAS_DATA_PARALLEL_MIN_SHARD_MACS,
  BLAS_THREADS_MIN_STEP_MACS,
  countMacsPerSample,
  planCompute,
  planWith,
  XNN_DATA_PARALLEL_MIN_SHARD_MACS,
} from './parallel/compute-plan.js';
export { registerBuiltinModels } from './models/builtin.js';
export type { ModelFactory, RegisterModelOptions } from './registry.js';
export { registerModel } from './registry.js';
export type { BodyHeadSplit } from './model-split.js';
export type {
  AuxHeadTerm,
  BalancedSoftmaxTerm,
  ClassFeaturesTerm,
  ContrastiveTerm,
  PrototypeTerm,
  ReferenceForward,
  SoftTargetsTerm,
  StepContext,
  StepHook,
  StepTerm,
} from './step-hooks.js';
export type {
  DataSource,
  DpSgdOptions,
  EvalResult,
  Logger,
  ModelContext,
  ModelSpec,
  TensorSpec,
  TrainOptions,
  TrainResult,
} from './types.js';
export { registerPatchedWasmKernels } from './wasm/index.js';
