/**
 * JSON Schema (draft-07) of a node config. The same object is written to
 * `schema/node-config.schema.json` by `schema/generate.ts` so editors can validate YAML with
 * `# yaml-language-server: $schema=...`; a test fails when the two drift apart.
 */

type Schema = Record<string, unknown>;

const seconds = (def: number, description: string): Schema => ({
  type: 'number',
  exclusiveMinimum: 0,
  default: def,
  description: `${description} (seconds)`,
});
const int = (minimum: number, def?: number, description?: string): Schema => ({
  type: 'integer',
  minimum,
  ...(def === undefined ? {} : { default: def }),
  ...(description === undefined ? {} : { description }),
});
const str = (def?: string, description?: string): Schema => ({
  type: 'string',
  ...(def === undefined ? {} : { default: def }),
  ...(description === undefined ? {} : { description }),
});
const enumOf = (values: string[], def?: string): Schema => ({
  type: 'string',
  enum: values,
  ...(def === undefined ? {} : { default: def }),
});
const bool = (def: boolean): Schema => ({ type: 'boolean', default: def });
const port = (def?: number): Schema => ({
  type: 'integer',
  minimum: 0,
  maximum: 65535,
  ...(def === undefined ? {} : { default: def }),
});
const closed = (properties: Record<string, Schema>, extra: Schema = {}): Schema => ({
  type: 'object',
  properties,
  additionalProperties: false,
  default: {},
  ...extra,
});
const openArgs = (description: string): Schema => ({ type: 'object', default: {}, description });

/** Pattern of a node id (also the id part of `connect_to`). */
export const NODE_ID_PATTERN = '^[A-Za-z0-9_.-]+$';
/** Longest node id (the transport refuses longer ids on the wire too). */
export const MAX_NODE_ID_LENGTH = 128;
/** A secret that must not be empty: an empty token would silently mean "no authentication". */
const secret = (description: string): Schema => ({ type: 'string', minLength: 1, description });
/** Pattern of a `connect_to` entry: `id@host:port`, host may be `[ipv6]`. */
export const PEER_ADDRESS_PATTERN = '^[A-Za-z0-9_.-]+@(\\[[0-9A-Fa-f:.]+\\]|[A-Za-z0-9_.-]+):[0-9]{1,5}$';
/** Pattern of `learner.args.device`. */
export const DEVICE_PATTERN = '^(auto|cpu|cuda|cuda:[0-9]+)$';
/** Pattern of `tracker.backends[].rotation`. */
export const ROTATION_PATTERN = '^[0-9]+(\\.[0-9]+)? ?[KkMmGg]?[Bb]$';

/** The JSON Schema every node config is validated against (ajv, `allErrors`, `useDefaults`). */
export const nodeConfigSchema: Readonly<Schema> = {
  $schema: 'http://json-schema.org/draft-07/schema#',
  title: 'OiaFed node config',
  description: 'Configuration of one OiaFed node (trainer or learner).',
  type: 'object',
  required: ['node_id', 'role'],
  additionalProperties: false,
  properties: {
    extend: str(undefined, 'Parent config file, relative to this file; deep-merged under this one.'),
    node_id: { type: 'string', pattern: NODE_ID_PATTERN, maxLength: MAX_NODE_ID_LENGTH, description: 'Unique id of this node.' },
    role: enumOf(['trainer', 'learner']),
    exp_name: str('oiafed', 'Experiment name.'),
    seed: { type: 'integer', default: 42 },
    listen: closed(
      {
        host: str('0.0.0.0'),
        port: { ...port(), description: 'Default: 50051 for a trainer, 0 (ephemeral) for a learner.' },
      },
      { description: 'Address this node serves on.' },
    ),
    connect_to: {
      type: 'array',
      items: { type: 'string', pattern: PEER_ADDRESS_PATTERN },
      default: [],
      description: 'Peers to dial, each id@host:port (e.g. trainer@127.0.0.1:50051).',
    },
    transport: closed({
      mode: enumOf(['auto', 'memory', 'grpc'], 'auto'),
      grpc: closed({
        timeout: seconds(60, 'Deadline of one call'),
        keepalive: closed({
          time: seconds(30, 'Keepalive ping interval'),
          timeout: seconds(10, 'Keepalive ping timeout'),
        }),
        max_message_mb: { type: 'number', exclusiveMinimum: 0, default: 256 },
        chunk_mb: { type: 'number', exclusiveMinimum: 0, default: 4 },
        max_json_body_kb: { type: 'number', exclusiveMinimum: 0, default: 1024, description: 'Largest JSON body of a received message, in KiB; larger ones are refused unparsed.' },
        compression: enumOf(['none', 'gzip'], 'none'),
        tls: {
          type: 'object',
          additionalProperties: false,
          properties: {
            ca: str(undefined, 'CA certificate (PEM file path).'),
            cert: str(undefined, 'Certificate (PEM file path).'),
            key: str(undefined, 'Private key (PEM file path).'),
            require_client_cert: bool(false),
            bind_node_id: {
              type: 'boolean',
              description:
                'With require_client_cert (default true there): a client certificate\'s CN or a DNS/URI SAN must equal the node id it registers as.',
            },
          },
        },
        auth_token: secret('Bearer token sent when dialing; on a listening node, the shared token every peer must send (unless auth_tokens is set).'),
        auth_tokens: {
          type: 'object',
          propertyNames: { pattern: NODE_ID_PATTERN, maxLength: MAX_NODE_ID_LENGTH },
          additionalProperties: secret('Token of this node id.'),
          minProperties: 1,
          description: 'Listening node: one bearer token per peer node id; a peer must send the token of the id it registers as.',
        },
      }),
      update_compression: closed({
        type: enumOf(['none', 'float16', 'int8', 'topk'], 'none'),
        topk_ratio: { type: 'number', exclusiveMinimum: 0, maximum: 1, default: 0.01 },
      }),
      web: {
        type: 'object',
        additionalProperties: false,
        description: "Trainer: learners in a browser tab join over WebSocket at `path` on the dashboard's HTTP server (needs dashboard.enabled); the Connect stream's frames, token and bounds. Off when absent.",
        properties: {
          enabled: bool(false),
          path: { type: 'string', pattern: '^/[A-Za-z0-9_./-]*$', maxLength: 200, default: '/learn', description: 'URL path of the WebSocket endpoint.' },
        },
      },
    }),
    trainer: closed({
      type: str('default'),
      args: closed({
        max_rounds: int(1, 10),
        local_epochs: int(1, 1),
        client_fraction: { type: 'number', exclusiveMinimum: 0, maximum: 1, default: 1 },
        min_clients: int(1, 1),
        eval_every: int(0, 1, 'Evaluate every N rounds (0: never).'),
        checkpoint_every: int(0, 0, 'Checkpoint every N rounds (0: never).'),
        round_timeout: seconds(600, 'Time limit of one round'),
        registration_timeout: seconds(300, 'Time to wait for learners to register'),
        min_available_clients: int(1, undefined, 'Learners to wait for before round 1 (default: min_clients).'),
        update_norm_clip: {
          type: 'number',
          exclusiveMinimum: 0,
          description: "Caps the L2 norm of each learner's update delta (update - global) before aggregation; off when absent.",
        },
      }),
    }),
    learner: closed({
      type: str('default', 'Learner algorithm (registered by core or a plugin): default, fedprox, scaffold, fedbn, fednova, ...'),
      args: closed(
        {
          batch_size: int(1, 32),
          lr: { type: 'number', exclusiveMinimum: 0, default: 0.01 },
          optimizer: enumOf(['sgd', 'adam'], 'sgd'),
          momentum: { type: 'number', minimum: 0, default: 0 },
          weight_decay: { type: 'number', minimum: 0, default: 0 },
          device: { type: 'string', pattern: DEVICE_PATTERN, default: 'auto', description: 'auto, cpu, cuda or cuda:N.' },
          local_epochs: int(1, undefined, "Overrides the trainer's local_epochs."),
          threads: int(1, undefined, "Cores a learner trains and evaluates with (spent as data-parallel workers or one thread, chosen per model: docs/configuration.md); default: the machine's available parallelism."),
          blas: {
            ...enumOf(['auto', 'on', 'off']),
            description:
              "Convolutions and matmuls of the wasm backend on OpenBLAS (koffi + libopenblas.so.0): auto (when it loads; default), on (fail when it does not), off (XNNPACK). OIAFED_BLAS overrides auto.",
          },
        },
        // Other keys belong to the learner algorithm named by learner.type, validated by its own schema.
        { additionalProperties: true, description: "Local training settings, plus the learner algorithm's own args." },
      ),
    }),
    aggregator: closed({
      type: str('fedavg'),
      package: str(undefined, 'npm package imported at start so it registers this type.'),
      args: openArgs("Validated by the aggregator's own schema."),
    }),
    differential_privacy: {
      type: 'object',
      additionalProperties: false,
      description: 'Trainer: differential privacy of the learners\' updates; off when absent (issue 16 §2).',
      properties: {
        mode: { ...enumOf(['central', 'local', 'dp_sgd'], 'central'), description: 'central: the trainer clips and noises the mean; local: each learner clips and noises its update; dp_sgd: per-example clipping and noise in local training.' },
        noise_multiplier: { type: 'number', exclusiveMinimum: 0, description: 'Noise std over the clip norm; derived from target_epsilon when absent.' },
        clip_norm: { type: 'number', exclusiveMinimum: 0, description: "Fixed L2 clip of each learner's update delta (or adaptive_clipping)." },
        adaptive_clipping: {
          type: 'object',
          additionalProperties: false,
          description: 'Clip norm that tracks a quantile of the update norms (Andrew et al. 2021).',
          properties: {
            initial_clip_norm: { type: 'number', exclusiveMinimum: 0, default: 0.1 },
            target_quantile: { type: 'number', minimum: 0, maximum: 1, default: 0.5 },
            learning_rate: { type: 'number', exclusiveMinimum: 0, default: 0.2 },
            count_stddev: { type: 'number', exclusiveMinimum: 0, description: 'Noise std of the unclipped count (default max(m / 20, noise_multiplier)).' },
          },
        },
        target_epsilon: { type: 'number', exclusiveMinimum: 0, description: 'Budget over max_rounds: the run refuses to start if it would spend more.' },
        delta: { type: 'number', exclusiveMinimum: 0, exclusiveMaximum: 1, default: 1e-5 },
      },
    },
    secure_aggregation: {
      type: 'object',
      additionalProperties: false,
      description: "Trainer: SecAgg+ secure aggregation, the trainer sees only the sum of the learners' updates; off when absent (issue 16 §1).",
      properties: {
        enabled: { type: 'boolean', default: true },
        threshold: {
          anyOf: [
            { type: 'number', exclusiveMinimum: 0, exclusiveMaximum: 1 },
            { type: 'integer', minimum: 1 },
          ],
          default: 0.7,
          description: "Shares that rebuild a learner's secrets: a fraction in (0, 1) of its neighbourhood (neighbours + itself) or a count; more than half of it.",
        },
        neighbours: int(1, 100, 'Neighbours each learner masks with and shares its secrets among (SecAgg+ graph); >= learners - 1 is the complete graph.'),
        clip_range: { type: 'number', exclusiveMinimum: 0, default: 8, description: "Each coordinate of an update's delta is clipped to [-clip_range, clip_range] before quantization." },
        quantization_bits: { type: 'integer', minimum: 8, maximum: 32, default: 32, description: 'The group is Z_{2^bits}; more bits, less quantization error.' },
      },
    },
    model: {
      type: 'object',
      required: ['type'],
      additionalProperties: false,
      properties: {
        type: str(),
        args: openArgs('Model arguments, e.g. num_classes, dropout, input_shape.'),
      },
    },
    datasets: {
      type: 'array',
      default: [],
      items: {
        type: 'object',
        required: ['type'],
        additionalProperties: false,
        properties: {
          type: str(),
          split: enumOf(['train', 'test', 'all'], 'train'),
          args: openArgs('Dataset arguments, e.g. data_dir, download.'),
          partition: {
            type: 'object',
            additionalProperties: false,
            properties: {
              strategy: enumOf(['iid', 'dirichlet', 'label_skew', 'quantity_skew'], 'iid'),
              num_partitions: int(1),
              partition_id: int(0),
              config: {
                type: 'object',
                additionalProperties: false,
                properties: {
                  alpha: { type: 'number', exclusiveMinimum: 0 },
                  num_labels_per_client: int(1),
                  imbalance_ratio: { type: 'number', exclusiveMinimum: 0 },
                  seed: { type: 'integer' },
                  min_size: int(0),
                },
              },
              test_fraction: {
                type: 'number',
                minimum: 0,
                maximum: 0.5,
                description: "Share of this learner's partition held out as its own test split (stratified per label) for personalized evaluation.",
              },
            },
          },
        },
      },
    },
    retry: closed({
      max_attempts: int(1, 10),
      backoff_strategy: enumOf(['constant', 'linear', 'exponential'], 'exponential'),
      initial_delay: { type: 'number', minimum: 0, default: 1, description: 'seconds' },
      max_delay: { type: 'number', minimum: 0, default: 30, description: 'seconds' },
      multiplier: { type: 'number', minimum: 1, default: 2 },
    }),
    heartbeat: closed({
      enabled: bool(true),
      interval: seconds(5, 'Time between heartbeats'),
      timeout: seconds(15, 'Silence after which a peer counts as lost'),
    }),
    tracker: closed({
      backends: {
        type: 'array',
        default: [{ type: 'console', level: 'info' }],
        items: {
          type: 'object',
          required: ['type'],
          additionalProperties: false,
          properties: {
            type: enumOf(['console', 'file', 'loguru', 'jsonl']),
            level: enumOf(['error', 'warn', 'info', 'debug'], 'info'),
            log_dir: str('./logs'),
            rotation: { type: 'string', pattern: ROTATION_PATTERN, default: '100 MB', description: 'e.g. "100 MB", "10 KB".' },
            retention: int(0, 5, 'Rotated files kept.'),
          },
        },
      },
      run_dir: str(undefined, 'Where per-round JSONL history goes.'),
    }),
    metrics: closed({ enabled: bool(false), host: str('0.0.0.0'), port: port(9090) }),
    health: closed({ enabled: bool(false), host: str('0.0.0.0'), port: port(8080) }),
    dashboard: {
      type: 'object',
      additionalProperties: false,
      description: "Trainer: the live web dashboard (run header, curves, learners table; Server-Sent Events at /events); off when absent.",
      properties: {
        enabled: bool(false),
        host: str('127.0.0.1', 'Interface to listen on; 0.0.0.0 shows the run to the whole network (set auth_token then).'),
        port: port(8090),
        auth_token: secret('When set, every dashboard route needs it: Authorization: Bearer <token>, or ?token=<token> in the page URL.'),
        serve_partitions: {
          type: 'boolean',
          default: false,
          description: "Demos and tests: serve each partition of the trainer's datasets at /join/partition/<i> so a browser learner can train on one (anyone who can open the dashboard can read them).",
        },
      },
    },
    callbacks: {
      type: 'array',
      default: [],
      items: {
        type: 'object',
        required: ['type'],
        // Open so editors accept the flat form ({type: early_stopping, patience: 5}); the loader
        // moves every key but `type` into `args` before validating.
        additionalProperties: true,
        properties: { type: str(), args: openArgs('Callback arguments.') },
      },
    },
    plugins: {
      type: 'array',
      items: { type: 'string' },
      default: [],
      description:
        'Modules imported at start so they can register components: a path (./x.mjs) or a package name, looked up from config_dir, then the working directory, then the CLI.',
    },
    config_dir: str(
      undefined,
      'Directory plugins are looked up from first; the loader fills in the config file\'s directory. Relative: to the config file.',
    ),
    checkpoint: closed({ dir: str('./checkpoints'), resume: bool(false), keep: int(1, 3) }),
  },
};

/** The schema as the JSON text stored in `schema/node-config.schema.json`. */
export function renderSchemaJson(): string {
  return `${JSON.stringify(nodeConfigSchema, null, 2)}\n`;
}
