import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readLatestCheckpoint, writeCheckpoint, type CheckpointState } from '../src/checkpoint.js';
import { runSerial } from '../src/runner.js';
import { syntheticTrainerConfig, tempDir } from './helpers.js';

function state(round: number): CheckpointState {
  return {
    round,
    weights: Float32Array.from([1, 2, 3, round]),
    layout: [{ name: 'w', shape: [4], offset: 0, size: 4, trainable: true, isNormalization: false }],
    aggregatorType: 'fedadam',
    aggregatorState: { m: Float32Array.from([0.1, 0.2, 0.3, 0.4]), v: Float32Array.from([1, 1, 1, 1]), step: round },
    seed: 3,
    expName: 'x',
  };
}

describe('checkpoints', () => {
  it('round-trip weights and aggregator state, keeping the newest `keep`', () => {
    const dir = tempDir('ckpt');
    for (let round = 1; round <= 5; round++) writeCheckpoint(dir, state(round), 2);
    const latest = readLatestCheckpoint(dir)!;
    expect(latest.round).toBe(5);
    expect(latest.weights).toEqual(Float32Array.from([1, 2, 3, 5]));
    expect(latest.aggregatorState).toEqual(state(5).aggregatorState);
    expect(readdirSync(dir).filter((f) => f.startsWith('round-')).sort()).toEqual(['round-000004', 'round-000005']);
  });

  it('ignores a half-written checkpoint folder (the crash-during-write case)', () => {
    const dir = tempDir('ckpt-torn');
    writeCheckpoint(dir, state(1));
    // What a crash in the middle of writing round 2 leaves behind: a staging folder, no LATEST change.
    writeFileSync(join(dir, '.round-000002.tmp-999'), 'partial');
    expect(readLatestCheckpoint(dir)!.round).toBe(1);
    expect(readLatestCheckpoint(tempDir('empty'))).toBeUndefined();
  });

  it('a resumed run reaches the same weights as an uninterrupted one', async () => {
    const base = {
      aggregator: { type: 'fedadam', args: { server_lr: 0.05 } },
      trainer: { args: { max_rounds: 4, min_clients: 3, local_epochs: 1, checkpoint_every: 1, registration_timeout: 20 } },
    };
    const straight = await runSerial(syntheticTrainerConfig({ ...base, checkpoint: { dir: tempDir('straight') } }), { numClients: 3 });

    const dir = tempDir('resume');
    const firstHalf = syntheticTrainerConfig({
      ...base,
      trainer: { args: { ...base.trainer.args, max_rounds: 2 } },
      checkpoint: { dir },
    });
    await runSerial(firstHalf, { numClients: 3 });
    expect(existsSync(join(dir, 'LATEST'))).toBe(true);
    const resumed = await runSerial(syntheticTrainerConfig({ ...base, checkpoint: { dir } }), { numClients: 3, resume: true });
    expect(resumed.rounds.map((r) => r.round)).toEqual([3, 4]);
    expect(resumed.weights).toEqual(straight.weights);
  });
});
