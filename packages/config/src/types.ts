/**
 * Typed view of a node's YAML config after `extend`, interpolation, validation and defaults.
 * Keys are snake_case exactly as written in YAML; optional members are the ones without a default.
 */

/** Role a node plays in the federation. */
export type NodeRole = 'trainer' | 'learner';

/** `listen`: where this node's server binds. */
export interface ListenConfig {
  host: string;
  /** Defaults to 50051 for a trainer and 0 (ephemeral; learners dial out) for a learner. */
  port: number;
}

/** `transport.grpc.keepalive` (seconds). */
export interface KeepaliveConfig {
  time: number;
  timeout: number;
}

/** `transport.grpc.tls`: file paths; absent means plaintext. */
export interface TlsConfig {
  ca?: string;
  cert?: string;
  key?: string;
  require_client_cert: boolean;
  /** With require_client_cert: the client certificate must name the node id (default true). */
  bind_node_id?: boolean;
}

/** `transport.grpc`. Times in seconds, sizes in MiB. */
export interface GrpcConfig {
  timeout: number;
  keepalive: KeepaliveConfig;
  max_message_mb: number;
  chunk_mb: number;
  /** Largest JSON body of a received message, in KiB (refused unparsed above it; nesting is capped at 64). */
  max_json_body_kb: number;
  compression: 'none' | 'gzip';
  tls?: TlsConfig;
  /** Sent when dialing; on a listening node the shared token (never empty). */
  auth_token?: string;
  /** Listening node: a token per peer node id, binding each id to its own credential. */
  auth_tokens?: Record<string, string>;
}

/** `transport.update_compression`: how model updates are compressed on the wire. */
export interface UpdateCompressionConfig {
  type: 'none' | 'float16' | 'int8' | 'topk';
  topk_ratio: number;
}

/** `transport`. */
export interface TransportConfig {
  mode: 'auto' | 'memory' | 'grpc';
  grpc: GrpcConfig;
  update_compression: UpdateCompressionConfig;
  /** Learners over WebSocket; absent when off. */
  web?: WebTransportConfig;
}

/** `trainer.args` (closed set of keys). Timeouts in seconds. */
export interface TrainerArgs {
  max_rounds: number;
  local_epochs: number;
  client_fraction: number;
  min_clients: number;
  eval_every: number;
  checkpoint_every: number;
  round_timeout: number;
  registration_timeout: number;
  /** Learners to wait for before round 1; core falls back to `min_clients`. */
  min_available_clients?: number;
  /** Caps the L2 norm of each update's delta (update - global); off when absent. */
  update_norm_clip?: number;
}

/** `trainer`. */
export interface TrainerConfig {
  type: string;
  args: TrainerArgs;
}

/** `learner.args`: local training settings, plus the learner algorithm's own args. */
export interface LearnerArgs {
  batch_size: number;
  lr: number;
  optimizer: 'sgd' | 'adam';
  momentum: number;
  weight_decay: number;
  /** `auto`, `cpu`, `cuda` or `cuda:N`. */
  device: string;
  /** Overrides the trainer's `local_epochs` for this learner. */
  local_epochs?: number;
  /** Threads local training uses; default: `os.availableParallelism()`. */
  threads?: number;
  /** Convolutions and matmuls on OpenBLAS: `auto` (default), `on` or `off`. */
  blas?: 'auto' | 'on' | 'off';
  /** Any other key is an arg of the learner algorithm `learner.type` names (checked by its schema). */
  [algorithmArg: string]: unknown;
}

/** `learner`. */
export interface LearnerConfig {
  type: string;
  args: LearnerArgs;
}

/** `aggregator`: a registry entry; `args` is validated by the aggregator's own schema. */
export interface AggregatorConfig {
  type: string;
  /** npm package imported at start so that it registers `type`. */
  package?: string;
  args: Record<string, unknown>;
}

/** `differential_privacy` (trainer): central DP-FedAvg, local DP or DP-SGD on the learners; off when absent. */
export interface DifferentialPrivacyConfig {
  /** `central`: the trainer clips and noises; `local`: each learner clips and noises its update; `dp_sgd`: per-example clipping in local training. */
  mode: 'central' | 'local' | 'dp_sgd';
  /** Derived from `target_epsilon` when absent. */
  noise_multiplier?: number;
  /** Fixed clip norm; exactly one of this and `adaptive_clipping`. */
  clip_norm?: number;
  adaptive_clipping?: { initial_clip_norm: number; target_quantile: number; learning_rate: number; count_stddev?: number };
  /** Budget over max_rounds at `delta`. */
  target_epsilon?: number;
  delta: number;
}

/** `secure_aggregation` (trainer): SecAgg+; off when absent or `enabled: false`. */
export interface SecureAggregationConfig {
  enabled: boolean;
  /** Fraction of a learner's neighbourhood in (0, 1), or a count. */
  threshold: number;
  neighbours: number;
  clip_range: number;
  quantization_bits: number;
}

/** `model`: a registry entry (`num_classes`, `dropout`, `input_shape` are typical args). */
export interface ModelConfig {
  type: string;
  args: Record<string, unknown>;
}

/** `datasets[].partition.config`. */
export interface PartitionOptions {
  alpha?: number;
  num_labels_per_client?: number;
  imbalance_ratio?: number;
  seed?: number;
  min_size?: number;
}

/** `datasets[].partition`. */
export interface PartitionConfig {
  strategy: 'iid' | 'dirichlet' | 'label_skew' | 'quantity_skew';
  num_partitions?: number;
  partition_id?: number;
  config?: PartitionOptions;
  /** Share (0..0.5) of the partition held out as the learner's own test split (personalized evaluation). */
  test_fraction?: number;
}

/** `datasets[]`: a registry entry plus the split and partition this node uses. */
export interface DatasetConfig {
  type: string;
  split: 'train' | 'test' | 'all';
  args: Record<string, unknown>;
  partition?: PartitionConfig;
}

/** `retry` (seconds). */
export interface RetryConfig {
  max_attempts: number;
  backoff_strategy: 'constant' | 'linear' | 'exponential';
  initial_delay: number;
  max_delay: number;
  multiplier: number;
}

/** `heartbeat` (seconds). */
export interface HeartbeatConfig {
  enabled: boolean;
  interval: number;
  timeout: number;
}

/** `tracker.backends[]`. `loguru` is the deployment guide's name for the console + file logger. */
export interface TrackerBackendConfig {
  type: 'console' | 'file' | 'loguru' | 'jsonl';
  level: 'error' | 'warn' | 'info' | 'debug';
  log_dir: string;
  /** Size at which a log file rotates, e.g. `"100 MB"`. */
  rotation: string;
  /** Rotated files kept. */
  retention: number;
}

/** `tracker`. */
export interface TrackerConfig {
  backends: TrackerBackendConfig[];
  /** Where per-round JSONL history goes; core picks a default when absent. */
  run_dir?: string;
}

/** `metrics`: Prometheus text at `/metrics`. */
export interface MetricsConfig {
  enabled: boolean;
  host: string;
  port: number;
}

/** `health`: `GET /health` and `GET /ready`. */
export interface HealthConfig {
  enabled: boolean;
  host: string;
  port: number;
}

/** `dashboard` (trainer): the live web dashboard; off when absent. */
export interface DashboardConfig {
  enabled: boolean;
  host: string;
  port: number;
  /** When set, every dashboard route needs it (Bearer header or `?token=`). */
  auth_token?: string;
  /** Serve the trainer's dataset partitions at /join/partition/<i> (demos, tests). */
  serve_partitions?: boolean;
}

/** `transport.web` (trainer): learners in a browser tab over WebSocket on the dashboard's server. */
export interface WebTransportConfig {
  enabled: boolean;
  /** URL path of the WebSocket endpoint (`/learn`). */
  path: string;
}

/** `callbacks[]`, always in `{type, args}` form (the flat form is normalised on load). */
export interface CallbackConfig {
  type: string;
  args: Record<string, unknown>;
}

/** `checkpoint`. */
export interface CheckpointConfig {
  dir: string;
  resume: boolean;
  /** Checkpoints kept on disk. */
  keep: number;
}

/** A parsed `id@host:port` entry of `connect_to`. IPv6 hosts are returned without brackets. */
export interface PeerAddress {
  nodeId: string;
  host: string;
  port: number;
}

/** A node's fully resolved configuration. */
export interface NodeConfig {
  node_id: string;
  role: NodeRole;
  exp_name: string;
  seed: number;
  listen: ListenConfig;
  connect_to: string[];
  transport: TransportConfig;
  trainer: TrainerConfig;
  learner: LearnerConfig;
  aggregator: AggregatorConfig;
  differential_privacy?: DifferentialPrivacyConfig;
  secure_aggregation?: SecureAggregationConfig;
  model?: ModelConfig;
  datasets: DatasetConfig[];
  retry: RetryConfig;
  heartbeat: HeartbeatConfig;
  tracker: TrackerConfig;
  metrics: MetricsConfig;
  health: HealthConfig;
  dashboard?: DashboardConfig;
  callbacks: CallbackConfig[];
  plugins: string[];
  /**
   * Where `plugins` and `aggregator.package` are looked up first (then the working directory,
   * then the CLI's own location). `loadConfig` fills in the config file's directory, so the
   * value survives copies of the config and the files `oiafed launch` writes for its nodes.
   */
  config_dir?: string;
  checkpoint: CheckpointConfig;
}
