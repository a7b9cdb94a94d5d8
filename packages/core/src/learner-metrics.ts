/**
 * The learner side of a node's Prometheus metrics: local training time and throughput, rounds
 * trained, and payload bytes. The trainer observes the same training times from the learners'
 * replies; a learner's own /metrics lets an operator look at one machine without the trainer.
 */
import type { NodeMetrics } from '@oiafed/tracker';
import type { Transport } from '@oiafed/transport';

/** What `Learner`'s `onTrainEnd` reports after each local training task. */
export interface LocalTrainInfo {
  round: number;
  seconds: number;
  samplesPerSecond: number;
}

/**
 * Returns an `onTrainEnd` handler for `Learner` that records `oiafed_local_train_seconds`,
 * `oiafed_local_samples_per_second` (label `learner`), `oiafed_rounds_completed_total` (rounds
 * this learner trained) and `oiafed_current_round`.
 */
export function recordLocalTraining(metrics: NodeMetrics, learnerId: string): (info: LocalTrainInfo) => void {
  return (info) => {
    metrics.localTrainSeconds.observe({ learner: learnerId }, info.seconds);
    metrics.localSamplesPerSecond.set({ learner: learnerId }, info.samplesPerSecond);
    metrics.roundsCompleted.inc();
    metrics.currentRound.set(info.round);
  };
}

/**
 * Keeps `oiafed_sent_bytes_total` / `oiafed_received_bytes_total` equal to the transport's own
 * counters, brought up to date on every scrape. For learners only: the trainer adds each round's
 * bytes itself, and both would count twice.
 */
export function trackTransportBytes(metrics: NodeMetrics, transport: Pick<Transport, 'stats'>): void {
  let sent = 0;
  let received = 0;
  metrics.onCollect(() => {
    const stats = transport.stats();
    // Counters only go up; a transport restarted from zero is not a negative increment.
    if (stats.bytesSent > sent) metrics.bytesSent.inc(stats.bytesSent - sent);
    if (stats.bytesReceived > received) metrics.bytesReceived.inc(stats.bytesReceived - received);
    sent = Math.max(sent, stats.bytesSent);
    received = Math.max(received, stats.bytesReceived);
  });
}
