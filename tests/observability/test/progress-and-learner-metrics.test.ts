/**
 * Progress bars on a terminal (a real Writable that says it is a TTY), silence elsewhere, and
 * the learner-side metrics hooks against a real registry and a real in-process transport.
 */
import { Writable } from 'node:stream';
import { learnerEpochProgress, recordLocalTraining, trackTransportBytes, trainerProgress, watchRegistrations, type RoundRecord } from '@oiafed/core';
import { createNodeMetrics } from '@oiafed/tracker';
import { MemoryHub, MemoryTransport } from '@oiafed/transport';
import { describe, expect, it } from 'vitest';
import { parseMetrics, valueOf } from './helpers.js';

class Terminal extends Writable {
  text = '';
  constructor(readonly isTTY: boolean, readonly columns = 100) {
    super();
  }
  override _write(chunk: Buffer, _: BufferEncoding, done: () => void): void {
    this.text += chunk.toString();
    done();
  }
}

function record(round: number, accuracy: number): RoundRecord {
  return {
    round,
    timestamp: new Date().toISOString(),
    selected: 2,
    participants: 2,
    failed: [],
    accuracy,
    loss: 1 - accuracy,
    duration_s: 0.1,
    slowest_train_s: 0.05,
    bytes_sent: 10,
    bytes_received: 10,
    aggregated: true,
  } as RoundRecord;
}

describe('trainer progress', () => {
  it('draws a round bar on a TTY and ends it with the count and the last accuracy', async () => {
    const tty = new Terminal(true);
    const callback = trainerProgress({ stream: tty });
    await callback.onTrainStart!({ maxRounds: 4, startRound: 1 });
    for (let round = 1; round <= 4; round++) await callback.onRoundEnd!(record(round, 0.5 + round / 10), undefined as never);
    await callback.onTrainEnd!([]);
    expect(tty.text.startsWith('\rrounds [')).toBe(true);
    const finalLine = tty.text.split('\r').pop()!;
    expect(finalLine).toMatch(/^rounds \[#+\] 4\/4 \(100%\)/);
    expect(finalLine).toContain('acc 90.0% loss 0.100');
    expect(finalLine.endsWith('\x1b[K\n')).toBe(true);
  });

  it('stays silent off a TTY (the round lines on stdout already report each round)', async () => {
    const plain = new Terminal(false);
    const callback = trainerProgress({ stream: plain });
    expect(callback).toEqual({});
    const stop = watchRegistrations(new MemoryTransport({ hub: new MemoryHub(), nodeId: 't', role: 'trainer' }), 2, { stream: plain });
    stop();
    learnerEpochProgress({ stream: plain })({ round: 1, epoch: 1, epochs: 1, loss: 1, accuracy: 0 });
    expect(plain.text).toBe('');
  });

  it('shows the wait for learners and closes the bar once enough registered', async () => {
    const tty = new Terminal(true);
    const hub = new MemoryHub();
    const trainer = new MemoryTransport({ hub, nodeId: 'trainer', role: 'trainer' });
    await trainer.start();
    const stop = watchRegistrations(trainer, 2, { stream: tty });
    expect(tty.text).toContain('waiting for learners [');
    expect(tty.text).toContain('0/2');
    const learners = ['learner_0', 'learner_1'].map(
      (nodeId) => new MemoryTransport({ hub, nodeId, role: 'learner', connectTo: ['trainer'] }),
    );
    for (const learner of learners) await learner.start();
    const finalLine = tty.text.split('\r').pop()!;
    expect(finalLine).toMatch(/^waiting for learners \[#+\] 2\/2 \(100%\).* all registered\x1b\[K\n$/);
    const length = tty.text.length;
    stop();
    expect(tty.text.length).toBe(length);
    await Promise.all([...learners, trainer].map((t) => t.stop()));
  });
});

describe('learner progress and metrics', () => {
  it('draws one local-epoch bar per round', () => {
    const tty = new Terminal(true);
    const onEpoch = learnerEpochProgress({ stream: tty });
    for (const round of [1, 2]) for (let epoch = 1; epoch <= 3; epoch++) onEpoch({ round, epoch, epochs: 3, loss: 0.5, accuracy: 0.75 });
    const finished = tty.text.split('\n').filter((l) => l.includes('3/3 (100%)'));
    expect(finished).toHaveLength(2);
    expect(finished[0]).toContain('round 1 local epochs [');
    expect(finished[1]).toContain('round 2 local epochs [');
    expect(finished[1]).toContain('loss 0.500 acc 75.0%');
  });

  it('records local training time, samples/s and transport bytes on the learner\'s registry', async () => {
    const metrics = createNodeMetrics({ nodeId: 'learner_3', role: 'learner' });
    const onTrainEnd = recordLocalTraining(metrics, 'learner_3');
    onTrainEnd({ round: 1, seconds: 0.4, samplesPerSecond: 500 });
    onTrainEnd({ round: 2, seconds: 0.6, samplesPerSecond: 333 });
    const hub = new MemoryHub();
    const trainer = new MemoryTransport({ hub, nodeId: 'trainer', role: 'trainer' });
    const learner = new MemoryTransport({ hub, nodeId: 'learner_3', role: 'learner', connectTo: ['trainer'] });
    learner.handle('echo', (payload) => payload);
    await trainer.start();
    await learner.start();
    trackTransportBytes(metrics, learner);
    const tensor = { name: 'w', shape: [256], data: new Float32Array(256), dtype: 'float32' as const };
    await trainer.call('learner_3', 'echo', { body: { hi: 1 }, tensors: [tensor] });
    const first = parseMetrics(await metrics.render());
    const labels = { learner: 'learner_3', node: 'learner_3', role: 'learner' };
    expect(valueOf(first, 'oiafed_local_train_seconds_count', labels)).toBe(2);
    expect(valueOf(first, 'oiafed_local_train_seconds_sum', labels)).toBeCloseTo(1.0, 10);
    expect(valueOf(first, 'oiafed_local_samples_per_second', labels)).toBe(333);
    expect(valueOf(first, 'oiafed_rounds_completed_total')).toBe(2);
    expect(valueOf(first, 'oiafed_current_round')).toBe(2);
    const stats = learner.stats();
    expect(stats.bytesReceived).toBeGreaterThanOrEqual(1024);
    expect(valueOf(first, 'oiafed_received_bytes_total')).toBe(stats.bytesReceived);
    expect(valueOf(first, 'oiafed_sent_bytes_total')).toBe(stats.bytesSent);
    await trainer.call('learner_3', 'echo', { body: { hi: 2 }, tensors: [tensor] });
    const second = parseMetrics(await metrics.render());
    expect(valueOf(second, 'oiafed_received_bytes_total')).toBe(learner.stats().bytesReceived);
    expect(valueOf(second, 'oiafed_received_bytes_total')).toBeGreaterThan(valueOf(first, 'oiafed_received_bytes_total')!);
    await learner.stop();
    await trainer.stop();
  });
});
