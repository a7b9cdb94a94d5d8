import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { runCli, tempDir, tinyTrainerYaml, writeFile } from './helpers.js';

/** `oiafed validate` goes past the schema: component types and their args, by their own registries. */
describe('validate checks learner and aggregator types and args', () => {
  it('exit 2 for an unknown learner.type, bad learner-algorithm args and bad aggregator args, naming each', async () => {
    const dir = tempDir('validate-components');
    const good = writeFile(dir, 'fedprox-learner.yaml', readTiny(dir).replace('learner: {type: default, args: {', 'learner: {type: fedprox, args: {mu: 0.01, '));
    const unknown = writeFile(dir, 'unknown.yaml', readTiny(dir).replace('learner: {type: default,', 'learner: {type: fedwarp,'));
    const badArgs = writeFile(
      dir,
      'bad-args.yaml',
      readTiny(dir)
        .replace('learner: {type: default, args: {', 'learner: {type: fedprox, args: {mu: -1, ')
        .replace('aggregator: {type: fedavg}', 'aggregator: {type: scaffold, args: {server_lr: 0}}'),
    );
    const result = await runCli(['validate', good, unknown, badArgs, '--json']);
    expect(result.code, result.stderr).toBe(2);
    const doc = JSON.parse(result.stdout) as { valid: boolean; files: Array<{ valid: boolean; issues: Array<{ path: string; message: string }> }> };
    expect(doc.files.map((f) => f.valid)).toEqual([true, false, false]);
    expect(doc.files[1]!.issues).toEqual([{ file: unknown, path: 'learner', message: expect.stringMatching(/^unknown learner_algorithm type "fedwarp"; registered types: .*fedprox/) }]);
    expect(doc.files[2]!.issues.map((i) => `${i.path}: ${i.message}`)).toEqual([
      expect.stringMatching(/^aggregator: aggregator "scaffold": args.server_lr must be > 0, got 0/),
      'learner: learner algorithm "fedprox": args.mu must be >= 0, got -1',
    ]);

    const text = await runCli(['validate', unknown]);
    expect(text.code).toBe(2);
    expect(text.stderr).toContain(`${unknown}: learner: unknown learner_algorithm type "fedwarp"`);
  });
});

function readTiny(dir: string): string {
  return readFileSync(tinyTrainerYaml(dir), 'utf8');
}
