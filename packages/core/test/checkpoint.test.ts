import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
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

  it('refuses to write a checkpoint with a non-finite weight or aggregator value, and leaves LATEST alone', () => {
    const dir = tempDir('ckpt-nan');
    writeCheckpoint(dir, state(1));
    const nanWeights = { ...state(2), weights: Float32Array.from([1, NaN, 3, 4]) };
    expect(() => writeCheckpoint(dir, nanWeights)).toThrow(/checkpoint of round 2: weight 1 is NaN; refusing a non-finite model/);
    const infState = { ...state(2), aggregatorState: { m: Float32Array.from([0, Infinity, 0, 0]), step: 2 } };
    expect(() => writeCheckpoint(dir, infState)).toThrow(/aggregator state "m" is not finite \(index 1\)/);
    expect(readdirSync(dir).filter((f) => f.startsWith('round-'))).toEqual(['round-000001']);
    expect(readLatestCheckpoint(dir)!.round).toBe(1);
  });

  it('refuses to load a checkpoint whose weights.bin holds NaN (written by an older version)', () => {
    const dir = tempDir('ckpt-nan-read');
    const folder = writeCheckpoint(dir, state(2));
    writeFileSync(join(folder, 'weights.bin'), new Uint8Array(Float32Array.from([1, NaN, 3, 4]).buffer));
    expect(() => readLatestCheckpoint(dir)).toThrow(/round-000002: weight 1 is NaN; refusing a non-finite model/);
  });

  it.each<[string, (manifest: Record<string, unknown>) => void, RegExp]>([
    ['a string round', (m) => (m.round = '2'), /"round" must be an integer >= 1, got "2"/],
    ['a fractional seed', (m) => (m.seed = 1.5), /"seed" must be an integer, got 1.5/],
    ['a numeric aggregator', (m) => (m.aggregator = 7), /"aggregator" must be a string, got 7/],
    ['a layout that is not an array', (m) => (m.layout = 'w'), /"layout" must be an array/],
    ['a layout with a gap', (m) => ((m.layout as Array<Record<string, unknown>>)[0]!.offset = 1), /layout\[0\] must be \{name: string, shape: integer\[\], offset: 0/],
    ['a vector past the end of vectors.bin', (m) => ((m.vectors as Array<Record<string, unknown>>)[0]!.length = 99), /vector "m" ends at 99, vectors.bin holds 8 values/],
    ['a string scalar', (m) => (m.scalars = { step: 'x' }), /"scalars" must be an object of numbers/],
    ['another format', (m) => (m.format = 'wrong'), /"format" must be "oiafed-checkpoint\/1"/],
  ])('refuses a manifest with %s, naming the field', (_label, mutate, message) => {
    const dir = tempDir('ckpt-manifest');
    const folder = writeCheckpoint(dir, state(2));
    const file = join(folder, 'manifest.json');
    const manifest = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
    mutate(manifest);
    writeFileSync(file, JSON.stringify(manifest));
    expect(() => readLatestCheckpoint(dir)).toThrow(message);
  });

  it.each(['../elsewhere/round-000001', '/tmp/round-000001', 'round-000001/../../x', 'x'])(
    'refuses a LATEST pointer %j that leaves the checkpoint dir (never follows it)',
    (pointer) => {
      const root = tempDir('ckpt-latest');
      const dir = join(root, 'ckpt');
      // A valid checkpoint outside the dir: following LATEST there would load it.
      writeCheckpoint(join(root, 'elsewhere'), state(1));
      mkdirSync(dir);
      writeFileSync(join(dir, 'LATEST'), pointer);
      expect(() => readLatestCheckpoint(dir)).toThrow(/LATEST: names .*expected a round-NNNNNN folder inside the checkpoint dir/);
    },
  );

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
