export type {
  Accumulator,
  AggregateResult,
  Aggregator,
  AggregatorFactory,
  AggregatorState,
  ClientUpdate,
  JsonSchemaObject,
  LearnerInstructions,
  RoundContext,
  RoundFailure,
  RoundPlan,
  TensorSpec,
  WeightLayout,
} from './types.js';
export { createAggregator, hasAggregator, listAggregators, parseArgs, registerAggregator, validate as validateSchema } from './registry.js';
export { BUILTIN_AGGREGATORS, registerBuiltins } from './builtins.js';
export { fednovaNormalizer, scaffoldControlUpdate } from './learner-helpers.js';
export {
  allFinite,
  axpyDiffInto,
  axpyInto,
  maxAbsDiff,
  scaleInto,
  selectKth,
  squaredDistance,
  weightedMean,
} from './vector.js';
export { MeanAccumulator, StreamingAggregator, streamingMean } from './rules/common.js';
export { createFedBn, createFedProx, FedAvg, FedAvgM } from './rules/fedavg.js';
export type { FedAvgArgs, FedAvgMArgs, FedProxArgs } from './rules/fedavg.js';
export { FedOpt } from './rules/fedopt.js';
export type { FedOptArgs, FedOptVariant } from './rules/fedopt.js';
export { FEDDYN_INSTRUCTION, FedDyn } from './rules/feddyn.js';
export {
  FEDDISTILL_GLOBAL,
  FEDDISTILL_INSTRUCTION,
  FEDDISTILL_KEYS,
  FEDDISTILL_LOCAL,
  FEDPROTO_GLOBAL,
  FEDPROTO_INSTRUCTION,
  FEDPROTO_KEYS,
  FEDPROTO_LOCAL,
  FedProto,
  packPrototypes,
  unpackPrototypes,
} from './rules/fedproto.js';
export type { ClassVectorKeys, FedProtoArgs } from './rules/fedproto.js';
export type { FedDynArgs } from './rules/feddyn.js';
export { FedNova } from './rules/fednova.js';
export type { FedNovaArgs } from './rules/fednova.js';
export { Scaffold, SCAFFOLD_CONTROL_DELTA, SCAFFOLD_SERVER_CONTROL } from './rules/scaffold.js';
export type { ScaffoldArgs } from './rules/scaffold.js';
export { CoordinateMedian, Krum, TrimmedMean } from './rules/robust.js';
export type { KrumArgs, TrimmedMeanArgs } from './rules/robust.js';
