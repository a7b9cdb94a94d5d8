import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { repoRoot, roundAccuracies, runCli, tempDir } from './helpers.js';

describe('the README main job (shortened)', () => {
  it('trains 4 learner processes over gRPC and beats chance by a wide margin', async () => {
    const runDir = tempDir('quickstart');
    const result = await runCli(
      ['launch', '--config', join(repoRoot, 'examples/quickstart/trainer.yaml'), '--num-clients', '4', '--run-dir', runDir, '--quiet-logs'],
      { env: { ROUNDS: '5' }, timeoutMs: 180_000 },
    );
    expect(result.code, result.stderr.slice(-3000)).toBe(0);
    const accuracies = roundAccuracies(result.stdout);
    expect(accuracies).toHaveLength(5);
    // 10 classes: chance is 10%.
    expect(accuracies.at(-1)!).toBeGreaterThan(0.4);
    expect(accuracies.at(-1)!).toBeGreaterThan(accuracies[0]! - 0.02);
    expect(result.stdout).toMatch(/^done: 5 rounds/m);

    const history = readFileSync(join(runDir, 'history.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(history.map((r) => r.participants)).toEqual([4, 4, 4, 4, 4]);
    expect(history.every((r) => r.bytes_sent > 0 && r.bytes_received > 0)).toBe(true);
    for (let i = 0; i < 4; i++) {
      const log = readFileSync(join(runDir, 'launch', `learner_${i}.log`), 'utf8');
      expect(log).toContain('trained');
    }
    expect(existsSync(join(runDir, 'summary.json'))).toBe(true);
  });
});
