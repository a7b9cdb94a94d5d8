export { loadConfig, resolveConfig } from './load.js';
export type { LoadConfigOptions, ResolveConfigOptions } from './load.js';
export { ConfigError, closestKey, formatIssue } from './errors.js';
export type { ConfigIssue } from './errors.js';
export { stringifyConfig } from './stringify.js';
export { OVERRIDE_SOURCE, applyOverrides, parseOverride } from './overrides.js';
export type { ConfigOverride } from './overrides.js';
export { parsePeerAddress } from './peer-address.js';
export { hostsFileSchema, loadHostsFile } from './hosts-file.js';
export type { HostEntry, HostsFile, SshSettings, TrainerHostEntry } from './hosts-file.js';
export { MAX_NODE_ID_LENGTH, NODE_ID_PATTERN, nodeConfigSchema } from './schema.js';
export type {
  AggregatorConfig,
  DifferentialPrivacyConfig,
  SecureAggregationConfig,
  CallbackConfig,
  CheckpointConfig,
  DashboardConfig,
  WebTransportConfig,
  DatasetConfig,
  GrpcConfig,
  HealthConfig,
  HeartbeatConfig,
  KeepaliveConfig,
  LearnerArgs,
  LearnerConfig,
  ListenConfig,
  MetricsConfig,
  ModelConfig,
  NodeConfig,
  NodeRole,
  PartitionConfig,
  PartitionOptions,
  PeerAddress,
  RetryConfig,
  TlsConfig,
  TrackerBackendConfig,
  TrackerConfig,
  TrainerArgs,
  TrainerConfig,
  TransportConfig,
  UpdateCompressionConfig,
} from './types.js';
