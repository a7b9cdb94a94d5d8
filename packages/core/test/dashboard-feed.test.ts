import { describe, expect, it } from 'vitest';
import { createNoopLogger, type Logger } from '@oiafed/tracker';
import { runSerial } from '../src/runner.js';
import { syntheticTrainerConfig } from './helpers.js';

/** A logger that hands each info line to `onInfo` (the trainer logs the dashboard's URL). */
function capturingLogger(onInfo: (msg: string) => void): Logger {
  const logger: Logger = { ...createNoopLogger(), info: (msg) => onInfo(msg), child: () => logger };
  return logger;
}

/** Every Server-Sent Event of a stream until the server ends it. */
async function readEvents(url: string): Promise<Array<{ event: string; data: any }>> {
  const res = await fetch(url);
  const text = await res.text();
  return text
    .split('\n\n')
    .map((block) => ({ event: /^event: (.*)$/m.exec(block)?.[1], data: /^data: (.*)$/m.exec(block)?.[1] }))
    .filter((e): e is { event: string; data: string } => e.event !== undefined && e.data !== undefined)
    .map((e) => ({ event: e.event, data: JSON.parse(e.data) }));
}

describe('the trainer feeds its dashboard (issue 17 §1)', () => {
  it('serves the run over SSE when dashboard.enabled: header, every round record, learner rows, finished', async () => {
    const config = syntheticTrainerConfig({
      exp_name: 'feed-test',
      trainer: { args: { max_rounds: 4, min_clients: 2, local_epochs: 2, registration_timeout: 20, round_timeout: 60 } },
      dashboard: { enabled: true, host: '127.0.0.1', port: 0 },
    });
    let stream: Promise<Array<{ event: string; data: any }>> | undefined;
    const logger = capturingLogger((msg) => {
      const url = /^dashboard on (http:\/\/127\.0\.0\.1:\d+\/)/.exec(msg)?.[1];
      if (url) stream = readEvents(`${url}events`);
    });
    const summary = await runSerial(config, { numClients: 2, logger });
    expect(stream).toBeDefined();
    const events = await stream!;
    const snapshot = events[0]!;
    expect(snapshot.event).toBe('snapshot');
    expect(snapshot.data.run).toMatchObject({ exp_name: 'feed-test', model: 'mlp', aggregator: 'fedavg', max_rounds: 4 });
    const rounds = [...snapshot.data.rounds, ...events.filter((e) => e.event === 'round').map((e) => e.data)];
    // The round events are the history records themselves.
    expect(rounds).toEqual(JSON.parse(JSON.stringify(summary.rounds)));
    const finalRun = events.filter((e) => e.event === 'run').at(-1)!.data;
    expect(finalRun.status).toBe('finished');
    const rows = new Map<string, any>();
    for (const l of snapshot.data.learners) rows.set(l.id, l);
    for (const e of events) if (e.event === 'learner') rows.set(e.data.id, e.data);
    expect([...rows.keys()].sort()).toEqual(['learner_0', 'learner_1']);
    for (const row of rows.values()) {
      expect(row).toMatchObject({ state: 'registered', samples: expect.any(Number) });
      expect(row.bytes_up).toBeGreaterThan(0);
      expect(row.bytes_down).toBeGreaterThan(0);
      expect(row.last_round_s).toBeGreaterThan(0);
    }
    // Learners were seen training, then uploading (their notice, asked for by the train request).
    expect(events.some((e) => e.event === 'learner' && e.data.state === 'training')).toBe(true);
    expect(events.some((e) => e.event === 'learner' && e.data.state === 'uploading')).toBe(true);
  });
});
