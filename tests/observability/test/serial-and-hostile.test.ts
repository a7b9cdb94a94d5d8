/**
 * Serial mode (a whole federation in this process) serves the same endpoints, and an extra,
 * hostile learner on the same in-process hub shows up in `oiafed_updates_rejected_total{reason}`.
 */
import { resolveConfig } from '@oiafed/config';
import { LearnerMethods, RegistrationKeys, DEFAULT_LEARNER_CAPABILITIES, runSerial } from '@oiafed/core';
import type { Logger } from '@oiafed/tracker';
import { MemoryHub, MemoryTransport, type Payload } from '@oiafed/transport';
import { describe, expect, it } from 'vitest';
import { httpGet, scrape, tempDir, valueOf, waitFor, type Sample } from './helpers.js';

function capturingLogger(lines: string[]): Logger {
  const logger: Logger = {
    debug: () => undefined,
    info: (msg) => void lines.push(msg),
    warn: (msg) => void lines.push(msg),
    error: (msg) => void lines.push(msg),
    child: () => logger,
    flush: async () => undefined,
  };
  return logger;
}

describe('serial mode with metrics and health on', () => {
  it('serves /metrics, /health and /ready, and counts a hostile learner\'s updates as rejected', async () => {
    const config = resolveConfig(
      {
        node_id: 'trainer',
        role: 'trainer',
        exp_name: 'serial-obs',
        seed: 5,
        transport: { mode: 'memory' },
        trainer: { args: { max_rounds: 5, min_clients: 2, local_epochs: 2, registration_timeout: 20, round_timeout: 30 } },
        learner: { args: { batch_size: 16, lr: 0.05 } },
        aggregator: { type: 'fedavg' },
        model: { type: 'mlp', args: { hidden: [16] } },
        datasets: [{ type: 'synthetic', args: { alpha: 1, beta: 1, samples_per_client: 200 } }],
        metrics: { enabled: true, host: '127.0.0.1', port: 0 },
        health: { enabled: true, host: '127.0.0.1', port: 0 },
        tracker: { backends: [{ type: 'console', level: 'error' }], run_dir: tempDir('serial-run') },
      },
      { file: 'serial-obs.yaml', env: {} },
    );
    const hub = new MemoryHub();
    const evil = new MemoryTransport({
      hub,
      nodeId: 'evil',
      role: 'learner',
      connectTo: ['trainer'],
      metadata: { [RegistrationKeys.capabilities]: DEFAULT_LEARNER_CAPABILITIES.join(',') },
    });
    // Right body, tensors one value too long: the trainer must refuse it, not aggregate it.
    evil.handle(LearnerMethods.train, (payload: Payload) => {
      const body = payload.body as { round: number };
      return {
        body: { round: body.round, num_samples: 100, local_steps: 1, metrics: { loss: 1, accuracy: 0.1, seconds: 0.01, samples_per_second: 1 } },
        tensors: payload.tensors!.map((t) => ({ ...t, shape: [t.data.length + 1] })),
      };
    });
    const lines: string[] = [];
    const seen: Sample[][] = [];
    let metricsPort = 0;
    let healthPort = 0;
    let healthAnswers: Array<Awaited<ReturnType<typeof httpGet>>> = [];
    const running = runSerial(config, {
      numClients: 2,
      hub,
      logger: capturingLogger(lines),
      onListening: () => {
        void evil.start();
      },
    });
    metricsPort = Number((await waitFor(() => lines.map((l) => /^metrics on :(\d+)/.exec(l)?.[1]).find(Boolean), 'metrics port'))!);
    healthPort = Number((await waitFor(() => lines.map((l) => /^health on :(\d+)/.exec(l)?.[1]).find(Boolean), 'health port'))!);
    healthAnswers = await Promise.all([httpGet(healthPort, '/health'), httpGet(healthPort, '/ready')]);
    let done = false;
    const finished = running.finally(() => (done = true));
    while (!done) {
      const samples = await scrape(metricsPort);
      if (samples) seen.push(samples);
      await new Promise((r) => setTimeout(r, 20));
    }
    const summary = await finished;
    await evil.stop();

    expect(summary.rounds).toHaveLength(5);
    expect(summary.rounds.every((r) => r.participants === 2 && r.failed[0]?.learner === 'evil')).toBe(true);
    expect(healthAnswers[0]?.status).toBe(200);
    expect(JSON.parse(healthAnswers[0]!.body)).toMatchObject({ status: 'ok', live: true });
    expect(healthAnswers[1]?.status).toBe(200);
    expect(JSON.parse(healthAnswers[1]!.body)).toMatchObject({ status: 'ready', detail: { role: 'trainer' } });

    expect(seen.length).toBeGreaterThan(0);
    const last = seen[seen.length - 1]!;
    const rejected = last.filter((s) => s.name === 'oiafed_updates_rejected_total');
    expect(rejected.map((s) => s.labels.reason)).toEqual(['invalid_argument']);
    const rounds = valueOf(last, 'oiafed_rounds_completed_total')!;
    // Round r's rejection is counted before round r completes.
    expect(rejected[0]!.value).toBeGreaterThanOrEqual(rounds);
    expect(valueOf(last, 'oiafed_updates_accepted_total')).toBeGreaterThanOrEqual(2 * rounds);
    expect(valueOf(last, 'oiafed_learners_registered')).toBe(3);
    // One process, many nodes: process metrics stay off in serial mode (they describe the process).
    expect(valueOf(last, 'oiafed_compute_backend_info')).toBe(1);
    expect(new Set(seen.map((s) => valueOf(s, 'oiafed_updates_rejected_total', { reason: 'invalid_argument' }))).size).toBeGreaterThanOrEqual(2);
  });
});
