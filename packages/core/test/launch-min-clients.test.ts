import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { launchLocal } from '../src/launch.js';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const quickstart = join(repoRoot, 'examples/quickstart/trainer.yaml');

// `launch --num-clients N` below the config's min_clients used to start everything and fail after
// registration_timeout ("only 2 of 4 learners registered"); it now refuses before starting anything.
describe('launchLocal refuses fewer learners than the trainer waits for', () => {
  it('names min_clients and --num-clients, and starts no node', async () => {
    const runDir = join(mkdtempSync(join(tmpdir(), 'oiafed-minclients-')), 'run');
    const launch = launchLocal({ trainerConfig: quickstart, numClients: 2, nodeCommand: ['false'], runDir });
    await expect(launch).rejects.toThrow(/min_clients is 4 but --num-clients is 2/);
    expect(existsSync(runDir)).toBe(false);
  });

  it('checks min_available_clients too', async () => {
    const runDir = join(mkdtempSync(join(tmpdir(), 'oiafed-minclients-')), 'run');
    const overrides = ['trainer.args.min_clients=1', 'trainer.args.min_available_clients=3'];
    const launch = launchLocal({ trainerConfig: quickstart, numClients: 2, nodeCommand: ['false'], runDir, overrides });
    await expect(launch).rejects.toThrow(/min_available_clients is 3 but --num-clients is 2/);
  });
});
