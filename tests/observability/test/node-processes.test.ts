/**
 * A real federation of three processes (trainer + two learners over gRPC on loopback), scraped
 * while it trains: /metrics values move round after round, /health and /ready answer JSON and
 * flip as the trainer starts and learners register, log files rotate, and `oiafed report`
 * renders the run's history.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { freeLoopbackPort } from '@oiafed/core';
import { afterAll, describe, expect, it } from 'vitest';
import {
  assertRunning,
  capture,
  exited,
  httpGet,
  scrape,
  startCli,
  tempDir,
  valueOf,
  waitFor,
  writeFile,
  type Sample,
} from './helpers.js';

const ROUNDS = 10;
const children: Array<ReturnType<typeof startCli>> = [];

afterAll(() => {
  for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
});

function nodeYaml(options: {
  nodeId: string;
  role: 'trainer' | 'learner';
  trainerPort: number;
  metricsPort?: number;
  healthPort?: number;
  dir: string;
  partition?: number;
}): string {
  const { nodeId, role, trainerPort, dir } = options;
  const endpoints = [
    options.metricsPort ? `metrics: {enabled: true, host: 127.0.0.1, port: ${options.metricsPort}}` : '',
    options.healthPort ? `health: {enabled: true, host: 127.0.0.1, port: ${options.healthPort}}` : '',
  ].join('\n');
  const address = role === 'trainer' ? `listen: {host: 127.0.0.1, port: ${trainerPort}}` : `connect_to: ["trainer@127.0.0.1:${trainerPort}"]`;
  return `exp_name: observability
node_id: ${nodeId}
role: ${role}
seed: 3
${address}
transport: {mode: grpc}
trainer:
  type: default
  args: {max_rounds: ${ROUNDS}, local_epochs: 2, client_fraction: 1.0, min_clients: 2, round_timeout: 60, registration_timeout: 60}
learner:
  type: default
  args: {batch_size: 16, lr: 0.05, optimizer: sgd}
aggregator: {type: fedavg}
model: {type: mlp, args: {hidden: [16]}}
datasets:
  - type: synthetic
    args: {alpha: 1, beta: 1, samples_per_client: 200}
    partition: {num_partitions: 2, partition_id: ${options.partition ?? 0}}
heartbeat: {enabled: true, interval: 1, timeout: 10}
retry: {max_attempts: 1000, backoff_strategy: constant, initial_delay: 0.1, max_delay: 0.1}
${endpoints}
tracker:
  run_dir: ${join(dir, 'run')}
  backends:
    - {type: loguru, level: debug, log_dir: ${join(dir, 'logs')}, rotation: "1 KB", retention: 3}
`;
}

describe('a three-process federation with metrics and health endpoints', () => {
  it('serves /metrics, /health and /ready that follow the run, rotates logs, and renders a report', async () => {
    const dir = tempDir('obs');
    const [trainerPort, metricsPort, healthPort, learnerMetricsPort, learnerHealthPort] = await Promise.all(
      Array.from({ length: 5 }, () => freeLoopbackPort()),
    );
    const trainerFile = writeFile(dir, 'trainer.yaml', nodeYaml({ nodeId: 'trainer', role: 'trainer', trainerPort: trainerPort!, metricsPort, healthPort, dir }));
    const learner0File = writeFile(
      dir,
      'learner_0.yaml',
      nodeYaml({ nodeId: 'learner_0', role: 'learner', trainerPort: trainerPort!, metricsPort: learnerMetricsPort, healthPort: learnerHealthPort, dir, partition: 0 }),
    );
    const learner1File = writeFile(dir, 'learner_1.yaml', nodeYaml({ nodeId: 'learner_1', role: 'learner', trainerPort: trainerPort!, dir, partition: 1 }));

    // learner_0 first: alive but not ready while no trainer is there to register with.
    const learner0 = startCli(['run', '--config', learner0File]);
    children.push(learner0);
    const learner0Out = capture(learner0);
    const learnerHealth = await waitFor(() => {
      assertRunning(learner0, learner0Out, 'learner_0');
      return httpGet(learnerHealthPort!, '/health');
    }, 'the learner /health');
    expect(learnerHealth.status).toBe(200);
    expect(learnerHealth.contentType).toContain('application/json');
    expect(JSON.parse(learnerHealth.body)).toMatchObject({ status: 'ok', live: true, ready: false });
    const learnerNotReady = await httpGet(learnerHealthPort!, '/ready');
    expect(learnerNotReady?.status).toBe(503);
    expect(JSON.parse(learnerNotReady!.body)).toMatchObject({ status: 'not_ready', ready: false, detail: { role: 'learner' } });

    const trainer = startCli(['run', '--config', trainerFile]);
    children.push(trainer);
    const trainerOut = capture(trainer);
    // The trainer is ready once it listens, before min_clients learners are there.
    const trainerReady = await waitFor(async () => {
      assertRunning(trainer, trainerOut, 'trainer');
      const answer = await httpGet(healthPort!, '/ready');
      return answer?.status === 200 ? answer : undefined;
    }, 'the trainer /ready');
    expect(JSON.parse(trainerReady.body)).toMatchObject({ status: 'ready', ready: true, detail: { role: 'trainer' } });
    await waitFor(async () => {
      assertRunning(learner0, learner0Out, 'learner_0');
      return (await httpGet(learnerHealthPort!, '/ready'))?.status === 200;
    }, 'the learner /ready after registering');

    // One of min_clients=2 learners: the trainer waits, and says so in its gauges.
    const waiting = await waitFor(async () => {
      assertRunning(trainer, trainerOut, 'trainer');
      const samples = await scrape(metricsPort!);
      return samples && valueOf(samples, 'oiafed_learners_registered') === 1 ? samples : undefined;
    }, 'learners_registered = 1');
    expect(valueOf(waiting, 'oiafed_rounds_completed_total')).toBe(0);
    expect(valueOf(waiting, 'oiafed_compute_backend_info', { backend: 'cpu', node: 'trainer', role: 'trainer' })).toBe(1);
    expect(valueOf(waiting, 'process_resident_memory_bytes')).toBeGreaterThan(0);

    const learner1 = startCli(['run', '--config', learner1File]);
    children.push(learner1);
    const learner1Out = capture(learner1);

    // Scrape while rounds go by.
    const seen: Sample[][] = [];
    while (trainer.exitCode === null) {
      const samples = await scrape(metricsPort!);
      if (samples) seen.push(samples);
      await new Promise((r) => setTimeout(r, 40));
    }
    expect(await exited(trainer, trainerOut), trainerOut.stderr).toBe(0);
    expect(await exited(learner0, learner0Out), learner0Out.stderr).toBe(0);
    expect(await exited(learner1, learner1Out), learner1Out.stderr).toBe(0);

    const rounds = seen.map((s) => valueOf(s, 'oiafed_rounds_completed_total')!);
    const distinct = [...new Set(rounds)];
    expect(distinct.length).toBeGreaterThanOrEqual(3);
    expect(rounds).toEqual([...rounds].sort((a, b) => a - b));
    const last = seen[seen.length - 1]!;
    const lastRounds = valueOf(last, 'oiafed_rounds_completed_total')!;
    expect(lastRounds).toBeGreaterThanOrEqual(ROUNDS - 2);
    expect(valueOf(last, 'oiafed_current_round')).toBeGreaterThanOrEqual(lastRounds);
    expect(valueOf(last, 'oiafed_round_duration_seconds_count')).toBe(lastRounds);
    expect(valueOf(last, 'oiafed_round_duration_seconds_sum')).toBeGreaterThan(0);
    expect(valueOf(last, 'oiafed_learners_registered')).toBe(2);
    expect(valueOf(last, 'oiafed_learners_alive')).toBe(2);
    expect(valueOf(last, 'oiafed_learners_participating')).toBe(2);
    expect(valueOf(last, 'oiafed_updates_accepted_total')).toBeGreaterThanOrEqual(2 * lastRounds);
    // Two learners download and upload the 1,146 weights of a 60-16-10 MLP each round.
    const bytesPerRound = 2 * (60 * 16 + 16 + 16 * 10 + 10) * 4;
    expect(valueOf(last, 'oiafed_sent_bytes_total')).toBeGreaterThanOrEqual(lastRounds * bytesPerRound);
    expect(valueOf(last, 'oiafed_received_bytes_total')).toBeGreaterThanOrEqual(lastRounds * bytesPerRound);
    const accuracy = valueOf(last, 'oiafed_global_accuracy')!;
    expect(accuracy).toBeGreaterThan(0.3);
    expect(accuracy).toBeLessThanOrEqual(1);
    expect(valueOf(last, 'oiafed_global_loss')).toBeGreaterThan(0);
    for (const learner of ['learner_0', 'learner_1']) {
      expect(valueOf(last, 'oiafed_local_train_seconds_count', { learner })).toBe(lastRounds);
      expect(valueOf(last, 'oiafed_local_train_seconds_sum', { learner })).toBeGreaterThan(0);
      expect(valueOf(last, 'oiafed_local_samples_per_second', { learner })).toBeGreaterThan(0);
    }
    // Accuracy moved over the run: a gauge that was set, not a constant.
    const accuracies = new Set(seen.map((s) => valueOf(s, 'oiafed_global_accuracy')));
    expect(accuracies.size).toBeGreaterThanOrEqual(2);

    // Logs: `<node>.log` is live, rotated files are numbered, at most retention=3 files in all.
    const logs = readdirSync(join(dir, 'logs'));
    for (const node of ['trainer', 'learner_0', 'learner_1']) {
      const files = logs.filter((f) => new RegExp(`^${node}\\d*\\.log$`).test(f)).sort();
      expect(files, logs.join(' ')).toContain(`${node}.log`);
      expect(files, logs.join(' ')).toContain(`${node}1.log`);
      expect(files.length).toBeLessThanOrEqual(3);
      for (const file of files) expect(statSync(join(dir, 'logs', file)).size).toBeLessThanOrEqual(1000);
    }
    expect(logs).toContain('trainer2.log');
    const line = JSON.parse(readFileSync(join(dir, 'logs', 'trainer.log'), 'utf8').trim().split('\n').pop()!);
    expect(line).toMatchObject({ node: 'trainer' });
    expect(typeof line.timestamp).toBe('string');

    // Run history and report.
    const history = readFileSync(join(dir, 'run', 'history.jsonl'), 'utf8').trim().split('\n');
    expect(history).toHaveLength(ROUNDS);
    const report = startCli(['report', join(dir, 'run')]);
    const reportOut = capture(report);
    expect(await exited(report, reportOut), reportOut.stderr).toBe(0);
    const html = readFileSync(join(dir, 'run', 'report.html'), 'utf8');
    expect(html.match(/<svg/g)?.length ?? 0).toBeGreaterThanOrEqual(3);
    expect(html).toContain('observability');
    expect(existsSync(join(dir, 'run', 'summary.json'))).toBe(true);
  }, 90_000);
});
