import { freeLoopbackPort } from '@oiafed/core';
import { describe, expect, it } from 'vitest';
import { collect, repoRoot, roundAccuracies, runCli, startCli, tempDir, writeCifarFixture, writeYaml } from './helpers.js';

const guide = `${repoRoot}/examples/guide`;

describe('the deployment guide configs', () => {
  it('validate unchanged', async () => {
    const result = await runCli(['validate', `${guide}/trainer.yaml`, `${guide}/learner_0.yaml`]);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('ok: ');
  });

  it('rejects a bad config with exit 2, a precise message and no stack trace', async () => {
    const dir = tempDir('bad');
    const file = writeYaml(dir, 'bad.yaml', `extend: ${guide}/trainer.yaml\ntrainer: {args: {max_rounds: ten}}\nretry: {backoff_strategy: fast}\n`);
    const result = await runCli(['validate', file]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('trainer.args.max_rounds');
    expect(result.stderr).toContain('retry.backoff_strategy');
    expect(result.stderr).not.toMatch(/\n\s+at /);
  });

  it('run as three processes (hosts -> 127.0.0.1, a small model, 2 rounds)', async () => {
    const dir = tempDir('guide');
    writeCifarFixture(dir, 100);
    const port = await freeLoopbackPort();
    const trainer = writeYaml(
      dir,
      'trainer.yaml',
      `extend: ${guide}/trainer.yaml
listen: {host: 127.0.0.1, port: ${port}}
trainer: {args: {max_rounds: 2, min_clients: 2, registration_timeout: 120}}
model: {type: simple_cnn}
tracker: {run_dir: ${dir}/run}
`,
    );
    const learner = (id: number) =>
      writeYaml(
        dir,
        `learner_${id}.yaml`,
        `extend: ${guide}/learner_0.yaml
node_id: learner_${id}
connect_to: [trainer@127.0.0.1:${port}]
learner: {args: {device: cpu}}
datasets: [{type: cifar10, args: {data_dir: ${dir}}, partition: {partition_id: ${id}}}]
retry: {initial_delay: 0.2, max_delay: 1, max_attempts: 30}
`,
      );
    const trainerRun = collect(startCli(['run', '--config', trainer]));
    const learnerRuns = [0, 1].map((id) => collect(startCli(['run', '--config', learner(id)])));
    const [trainerResult, ...learnerResults] = await Promise.all([trainerRun, ...learnerRuns]);
    expect(trainerResult.code, trainerResult.stderr.slice(-3000)).toBe(0);
    expect(roundAccuracies(trainerResult.stdout)).toHaveLength(2);
    for (const result of learnerResults) {
      expect(result.code, result.stderr.slice(-3000)).toBe(0);
      expect(result.stderr).toContain('num_partitions is not set; assuming 10');
    }
  });
});
