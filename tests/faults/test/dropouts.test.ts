import { resolveConfig, type NodeConfig } from '@oiafed/config';
import { runLearnerNode, runTrainerNode, type LearnerRunResult, type RunOptions, type TrainingSummary } from '@oiafed/core';
import { describe, expect, it } from 'vitest';
import { summaryLine, tempDir } from './helpers.js';

type NodeLogger = NonNullable<RunOptions['logger']>;

/** Keeps every record so tests can assert what the nodes logged. */
function memoryLogger(node: string, lines: string[]): NodeLogger {
  const push = (level: string) => (msg: string) => lines.push(`${level} [${node}] ${msg}`);
  const logger: NodeLogger = {
    debug: push('debug'),
    info: push('info'),
    warn: push('warn'),
    error: push('error'),
    child: () => logger,
    flush: async () => undefined,
  };
  return logger;
}

function config(raw: Record<string, unknown>): NodeConfig {
  return resolveConfig(
    {
      exp_name: 'dropouts',
      seed: 9,
      transport: { mode: 'grpc', grpc: { timeout: 5 } },
      heartbeat: { enabled: true, interval: 0.3, timeout: 1.5 },
      retry: { max_attempts: 5, initial_delay: 0.05, max_delay: 0.2 },
      model: { type: 'mlp', args: { hidden: [16] } },
      learner: { args: { batch_size: 32, lr: 0.05, device: 'cpu' } },
      aggregator: { type: 'fedavg' },
      tracker: { backends: [{ type: 'console', level: 'error' }], run_dir: tempDir('dropouts-run') },
      checkpoint: { dir: tempDir('dropouts-ckpt') },
      ...raw,
    },
    { file: 'dropouts.yaml', env: {} },
  );
}

const dataset = (id: number) => [{ type: 'synthetic', args: { alpha: 0, beta: 0, samples_per_client: 200 }, partition: { num_partitions: 2, partition_id: id } }];

/** An in-process federation over real gRPC on 127.0.0.1: trainer first, learners once it listens. */
async function federation(
  trainerArgs: Record<string, unknown>,
  learnerArgs: Array<Record<string, unknown>>,
  hooks: { onRound?: (line: string, stopLearner: (i: number) => void) => void } = {},
) {
  process.env.OIAFED_BACKEND = 'cpu';
  const logs: string[] = [];
  const lines: string[] = [];
  const stops = learnerArgs.map(() => new AbortController());
  let learners: Promise<LearnerRunResult[]> | undefined;
  const summary: TrainingSummary = await runTrainerNode(
    config({ node_id: 'trainer', role: 'trainer', listen: { host: '127.0.0.1', port: 0 }, datasets: dataset(0), trainer: { args: trainerArgs } }),
    {
      logger: memoryLogger('trainer', logs),
      report: (line) => {
        lines.push(line);
        hooks.onRound?.(line, (i) => stops[i]!.abort());
      },
      onListening: ({ port }) => {
        learners = Promise.all(
          learnerArgs.map((args, i) =>
            runLearnerNode(
              config({
                node_id: `learner_${i}`,
                role: 'learner',
                connect_to: [`trainer@127.0.0.1:${port}`],
                datasets: dataset(i).map((d) => ({ ...d, split: 'train' })),
                learner: { args: { batch_size: 32, lr: 0.05, device: 'cpu', ...args } },
              }),
              { logger: memoryLogger(`learner_${i}`, logs), signal: stops[i]!.signal },
            ),
          ),
        );
      },
    },
  );
  return { summary, lines, logs, learners: await learners! };
}

describe('dropouts and stragglers', () => {
  it('finishes a round at its deadline with the updates that arrived, and discards and logs the late one', async () => {
    const { summary, logs, learners } = await federation(
      { max_rounds: 2, min_clients: 1, min_available_clients: 2, local_epochs: 1, round_timeout: 5, registration_timeout: 60 },
      [{}, { local_epochs: 20_000 }],
    );
    expect(summary.rounds).toHaveLength(2);
    for (const round of summary.rounds) {
      expect(round).toMatchObject({ selected: 2, participants: 1, aggregated: true });
      expect(round.failed).toEqual([{ learner: 'learner_1', reason: expect.stringMatching(/learner_1 got no answer within \d+ ms/) }]);
    }
    expect(logs.some((l) => /^warn \[trainer\] stream from 'learner_1': late response to 'oiafed.learner.train' discarded/.test(l))).toBe(true);
    expect(learners.map((l) => l.reason)).toEqual(['training finished', 'training finished']);
    summaryLine('straggler', {
      faults: 1,
      rounds_completed: summary.rounds.length,
      updates_lost: summary.rounds.reduce((s, r) => s + r.failed.length, 0),
      round_seconds: summary.rounds.map((r) => r.duration_s.toFixed(2)).join(','),
    });
  });

  it('waits (bounded, logged) when fewer than min_clients remain and never aggregates a short round', async () => {
    const { summary, logs } = await federation(
      { max_rounds: 3, min_clients: 2, local_epochs: 1, round_timeout: 10, registration_timeout: 1 },
      [{}, {}],
      { onRound: (line, stop) => (/^round 1\//.test(line) ? stop(1) : undefined) },
    );
    expect(summary.rounds).toHaveLength(3);
    expect(summary.rounds[0]).toMatchObject({ participants: 2, aggregated: true });
    const short = summary.rounds.slice(1);
    for (const round of short) {
      expect(round.participants).toBe(1);
      expect(round.aggregated).toBe(false);
      // The global model did not move: the trainer's evaluation of it is identical.
      expect(round.loss).toBe(summary.rounds[0]!.loss);
      expect(round.accuracy).toBe(summary.rounds[0]!.accuracy);
    }
    expect(logs.some((l) => /^warn \[trainer\] only 1 of min_clients=2 learners after waiting 1s/.test(l))).toBe(true);
    expect(logs.some((l) => /^warn \[trainer\] round [23]: 1 usable updates, fewer than min_clients=2; global model unchanged/.test(l))).toBe(true);
    summaryLine('below-min-clients', {
      faults: 1,
      rounds_completed: summary.rounds.length,
      rounds_not_aggregated: short.length,
      updates_lost: summary.rounds.reduce((s, r) => s + r.selected - r.participants, 0),
    });
  });
});
