/**
 * Prometheus metrics of one node. Each node gets its own prom-client Registry, never the global
 * default one: serial mode runs a trainer and many learners in one process, and a shared
 * registry would refuse the second registration of every name.
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

/** The metrics a node exposes at `/metrics`; names are listed in the package README. */
export interface NodeMetrics {
  /** This node's registry; every series carries the labels `node` and `role`. */
  readonly registry: Registry;
  /** `oiafed_rounds_completed_total` */
  roundsCompleted: Counter;
  /** `oiafed_round_duration_seconds` */
  roundDuration: Histogram;
  /** `oiafed_learners_registered` */
  learnersRegistered: Gauge;
  /** `oiafed_learners_alive` */
  learnersAlive: Gauge;
  /** `oiafed_learners_participating` */
  learnersParticipating: Gauge;
  /** `oiafed_updates_accepted_total` */
  updatesAccepted: Counter;
  /** `oiafed_updates_rejected_total{reason}` */
  updatesRejected: Counter<'reason'>;
  /** `oiafed_sent_bytes_total` */
  bytesSent: Counter;
  /** `oiafed_received_bytes_total` */
  bytesReceived: Counter;
  /** `oiafed_local_train_seconds{learner}` */
  localTrainSeconds: Histogram<'learner'>;
  /** `oiafed_local_samples_per_second{learner}` */
  localSamplesPerSecond: Gauge<'learner'>;
  /** `oiafed_global_accuracy` (ratio 0..1) */
  globalAccuracy: Gauge;
  /** `oiafed_global_loss` */
  globalLoss: Gauge;
  /** `oiafed_personalized_accuracy`: learners' personalized models on their own splits, sample-weighted mean (0..1) */
  personalizedAccuracy: Gauge;
  /** `oiafed_personalized_accuracy_std`: weighted standard deviation of those accuracies */
  personalizedAccuracyStd: Gauge;
  /** `oiafed_personalized_accuracy_min` */
  personalizedAccuracyMin: Gauge;
  /** `oiafed_personalized_accuracy_max` */
  personalizedAccuracyMax: Gauge;
  /** `oiafed_dp_epsilon`: differential privacy spent so far (largest over learners for local DP and DP-SGD) */
  dpEpsilon: Gauge;
  /** `oiafed_current_round` */
  currentRound: Gauge;
  /** `oiafed_compute_backend_info{backend,device}`, value 1; see {@link NodeMetrics.setComputeBackend}. */
  computeBackend: Gauge<'backend' | 'device'>;
  /** Sets the one `oiafed_compute_backend_info` series, dropping any earlier backend. */
  setComputeBackend(backend: string, device: string): void;
  /**
   * Registers a hook run at the start of every {@link NodeMetrics.render}, to bring values that
   * live elsewhere up to date only when someone scrapes (e.g. a transport's byte counters).
   */
  onCollect(hook: () => void): void;
  /** Prometheus text exposition (format 0.0.4) of this registry. */
  render(): Promise<string>;
}

/** Options of {@link createNodeMetrics}. */
export interface CreateNodeMetricsOptions {
  nodeId: string;
  role: string;
  /**
   * Also collect prom-client's default process metrics (CPU, memory, event-loop lag, GC) into
   * this registry under their standard names (`process_*`, `nodejs_*`). Enable it for at most
   * one node per process, since they describe the process, not the node. Default false.
   */
  collectProcessMetrics?: boolean;
}

/** Round durations run from seconds (MNIST MLP) to many minutes (CIFAR CNN on CPU). */
const ROUND_BUCKETS = [0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600];
const LOCAL_TRAIN_BUCKETS = [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800];

/** Creates a node's registry and its metrics. */
export function createNodeMetrics(options: CreateNodeMetricsOptions): NodeMetrics {
  const registry = new Registry();
  registry.setDefaultLabels({ node: options.nodeId, role: options.role });
  const registers = [registry];
  if (options.collectProcessMetrics) collectDefaultMetrics({ register: registry });

  const computeBackend = new Gauge({
    name: 'oiafed_compute_backend_info',
    help: 'Compute backend training runs on (value is always 1).',
    labelNames: ['backend', 'device'] as const,
    registers,
  });
  const collectHooks: Array<() => void> = [];
  return {
    registry,
    roundsCompleted: new Counter({ name: 'oiafed_rounds_completed_total', help: 'Federated rounds completed.', registers }),
    roundDuration: new Histogram({
      name: 'oiafed_round_duration_seconds',
      help: 'Wall time of one federated round, from selection to aggregated model.',
      buckets: ROUND_BUCKETS,
      registers,
    }),
    learnersRegistered: new Gauge({ name: 'oiafed_learners_registered', help: 'Learners registered with the trainer.', registers }),
    learnersAlive: new Gauge({ name: 'oiafed_learners_alive', help: 'Registered learners whose heartbeat is current.', registers }),
    learnersParticipating: new Gauge({
      name: 'oiafed_learners_participating',
      help: 'Learners selected for the current round.',
      registers,
    }),
    updatesAccepted: new Counter({ name: 'oiafed_updates_accepted_total', help: 'Learner updates aggregated.', registers }),
    updatesRejected: new Counter({
      name: 'oiafed_updates_rejected_total',
      help: 'Learner updates dropped, by reason (timeout, stale_round, shape_mismatch, non_finite, error).',
      labelNames: ['reason'] as const,
      registers,
    }),
    bytesSent: new Counter({ name: 'oiafed_sent_bytes_total', help: 'Payload bytes sent by this node.', registers }),
    bytesReceived: new Counter({ name: 'oiafed_received_bytes_total', help: 'Payload bytes received by this node.', registers }),
    localTrainSeconds: new Histogram({
      name: 'oiafed_local_train_seconds',
      help: 'Wall time of one local training task on a learner.',
      labelNames: ['learner'] as const,
      buckets: LOCAL_TRAIN_BUCKETS,
      registers,
    }),
    localSamplesPerSecond: new Gauge({
      name: 'oiafed_local_samples_per_second',
      help: 'Training throughput of the last local training task.',
      labelNames: ['learner'] as const,
      registers,
    }),
    globalAccuracy: new Gauge({ name: 'oiafed_global_accuracy', help: 'Accuracy (0..1) of the global model at the last evaluation.', registers }),
    globalLoss: new Gauge({ name: 'oiafed_global_loss', help: 'Loss of the global model at the last evaluation.', registers }),
    personalizedAccuracy: new Gauge({
      name: 'oiafed_personalized_accuracy',
      help: "Learners' personalized-model accuracy (0..1) on their own test splits at the last evaluation, weighted by test samples.",
      registers,
    }),
    personalizedAccuracyStd: new Gauge({
      name: 'oiafed_personalized_accuracy_std',
      help: "Weighted standard deviation of the learners' personalized accuracies at the last evaluation.",
      registers,
    }),
    personalizedAccuracyMin: new Gauge({ name: 'oiafed_personalized_accuracy_min', help: 'Lowest personalized accuracy of one learner at the last evaluation.', registers }),
    personalizedAccuracyMax: new Gauge({ name: 'oiafed_personalized_accuracy_max', help: 'Highest personalized accuracy of one learner at the last evaluation.', registers }),
    dpEpsilon: new Gauge({
      name: 'oiafed_dp_epsilon',
      help: 'Differential privacy epsilon spent so far at the configured delta (central: by the trainer; local, dp_sgd: the largest a learner reported).',
      registers,
    }),
    currentRound: new Gauge({ name: 'oiafed_current_round', help: 'Round in progress (or last finished).', registers }),
    computeBackend,
    setComputeBackend(backend: string, device: string): void {
      computeBackend.reset();
      computeBackend.set({ backend, device }, 1);
    },
    onCollect(hook: () => void): void {
      collectHooks.push(hook);
    },
    render: () => {
      for (const hook of collectHooks) hook();
      return registry.metrics();
    },
  };
}

/** Content type of {@link NodeMetrics.render}'s text. */
export const METRICS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';
