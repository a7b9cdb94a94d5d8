import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { runCli, tempDir, tinyTrainerYaml, writeFile } from './helpers.js';

/** `datasets[].partition.test_fraction` (personalized evaluation): 0..0.5, checked by `oiafed validate`. */
describe('validate checks partition.test_fraction', () => {
  it('accepts 0.2 and refuses 0.7 with exit 2, naming the key path', async () => {
    const dir = tempDir('validate-test-fraction');
    const tiny = readFileSync(tinyTrainerYaml(dir), 'utf8');
    const withFraction = (name: string, fraction: number) =>
      writeFile(dir, name, tiny.replace('partition: {num_partitions: 2}', `partition: {num_partitions: 2, test_fraction: ${fraction}}`));
    const good = withFraction('good.yaml', 0.2);
    const ok = await runCli(['validate', good]);
    expect(ok.code, ok.stderr).toBe(0);
    const bad = withFraction('bad.yaml', 0.7);
    const result = await runCli(['validate', bad]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(`${bad}:`);
    expect(result.stderr).toMatch(/datasets\[0\]\.partition\.test_fraction: must be <= 0\.5/);
  });
});
