import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli, runInProcess, tempDir, tinyTrainerYaml } from './helpers.js';

// `oiafed run --mode serial --learner-pool N` is the CLI's way to the learner pool: the same
// federation, learners trained N at a time on worker threads, must end with the same history as
// the sequential run (one thread per learner), round by round.
describe('oiafed run --mode serial --learner-pool', () => {
  const history = (dir: string) =>
    readFileSync(join(dir, 'run', 'history.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((row) => JSON.parse(row) as { round: number; accuracy?: number; loss?: number; participants?: number });

  it('trains 4 learners 2 at a time to the sequential run\'s accuracies and losses', async () => {
    const runs = await Promise.all(
      [[], ['--learner-pool', '2']].map(async (extra) => {
        const dir = tempDir('pool');
        const config = tinyTrainerYaml(dir, 'metrics: {enabled: false}\n');
        const args = ['run', '--config', config, '--mode', 'serial', '--num-clients', '4', '--json'];
        const result = await runCli([...args, '--set', 'trainer.args.max_rounds=3', '--set', 'trainer.args.min_clients=4', '--set', 'learner.args.threads=1', ...extra]);
        expect(result.code, result.stderr).toBe(0);
        return history(dir);
      }),
    );
    const [sequential, pooled] = runs as [ReturnType<typeof history>, ReturnType<typeof history>];
    expect(pooled.map((r) => r.participants)).toEqual([4, 4, 4]);
    expect(pooled.map((r) => [r.accuracy, r.loss])).toEqual(sequential.map((r) => [r.accuracy, r.loss]));
  });

  it('is refused outside serial mode and with a non-positive size, exit 2', async () => {
    const config = tinyTrainerYaml(tempDir('pool-usage'));
    const process = await runInProcess(['run', '--config', config, '--learner-pool', '2']);
    expect(process.code).toBe(2);
    expect(process.stderr).toMatch(/--learner-pool needs --mode serial/);
    const zero = await runInProcess(['run', '--config', config, '--mode', 'serial', '--num-clients', '2', '--learner-pool', '0']);
    expect(zero.code).toBe(2);
    expect(zero.stderr).toMatch(/--learner-pool must be an integer >= 1, got "0"/);
  });
});
