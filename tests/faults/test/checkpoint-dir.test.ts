import { readdirSync } from 'node:fs';
import { readLatestCheckpoint, writeCheckpoint, type CheckpointState } from '@oiafed/core';
import { describe, expect, it } from 'vitest';
import { tempDir } from './helpers.js';

const state = (round: number): CheckpointState => ({
  round,
  weights: new Float32Array([round, round + 0.5]),
  layout: [{ name: 'w', shape: [2], offset: 0, size: 2, trainable: true, isNormalization: false }],
  aggregatorType: 'fedavg',
  aggregatorState: {},
  seed: 1,
  expName: 'stale',
});

describe('checkpoint folder left by an earlier, longer run', () => {
  it('keeps the checkpoint just written (LATEST never dangles) and prunes the stale one', () => {
    const dir = tempDir('stale-ckpt');
    writeCheckpoint(dir, state(8), 1);
    // A new run in the same folder, without --resume: round 3 < the stale round 8.
    writeCheckpoint(dir, state(3), 1);
    expect(readLatestCheckpoint(dir)?.round).toBe(3);
    expect(readdirSync(dir).filter((f) => f.startsWith('round-'))).toEqual(['round-000003']);
    writeCheckpoint(dir, state(4), 2);
    expect(readdirSync(dir).filter((f) => f.startsWith('round-')).sort()).toEqual(['round-000003', 'round-000004']);
    expect(Array.from(readLatestCheckpoint(dir)!.weights)).toEqual([4, 4.5]);
  });
});
