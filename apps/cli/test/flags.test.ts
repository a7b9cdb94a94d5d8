import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cliArgv, repoRoot, runCli, runInProcess, tempDir, tinyTrainerYaml } from './helpers.js';

const version = (JSON.parse(readFileSync(join(repoRoot, 'apps/cli/package.json'), 'utf8')) as { version: string }).version;

describe('oiafed --version', () => {
  it('prints the version from package.json and exits 0, as --version, -V and version', async () => {
    const child = await runCli(['--version']);
    expect(child.code, child.stderr).toBe(0);
    expect(child.stdout).toBe(`oiafed ${version}\n`);
    for (const flag of ['-V', 'version']) expect(await runInProcess([flag])).toEqual({ code: 0, stdout: `oiafed ${version}\n`, stderr: '' });
  });

  it('oiafed-trainer and oiafed-learner answer --version too', () => {
    const [node, ...flags] = cliArgv();
    for (const app of ['trainer', 'learner']) {
      const script = join(repoRoot, `apps/${app}/src/main.ts`);
      const result = spawnSync(node!, [...flags.slice(0, -1), script, '-V'], { encoding: 'utf8', cwd: tempDir(app) });
      expect(result.status, result.stderr).toBe(0);
      expect(result.stdout).toBe(`oiafed ${version}\n`);
    }
  });
});

describe('flag mistakes', () => {
  it('an unknown flag gets the usage line and the closest flag, exit 2, not parseArgs text', async () => {
    const result = await runCli(['run', '--config', 'x.yaml', '--num-client', '3']);
    expect(result.code).toBe(2);
    expect(result.stdout).toBe('');
    expect(result.stderr).toBe(
      'oiafed run: unknown option --num-client; did you mean --num-clients?\n' +
        'usage: oiafed run --config <file.yaml> [options]\n' +
        '(oiafed run --help lists every option)\n',
    );
    expect(result.stderr).not.toMatch(/To specify a positional argument|Unknown option '/);
  });

  it('each verb names its own usage; a far-off flag gets no guess', async () => {
    const launch = await runInProcess(['launch', '--confg', 'a.yaml']);
    expect(launch.code).toBe(2);
    expect(launch.stderr).toMatch(/^oiafed launch: unknown option --confg; did you mean --config\?\nusage: oiafed launch --config/);
    const validate = await runInProcess(['validate', 'a.yaml', '--zzzzzz']);
    expect(validate.code).toBe(2);
    expect(validate.stderr).toMatch(/^oiafed validate: unknown option --zzzzzz\nusage: oiafed validate <file\.yaml>/);
  });

  it('a flag without its value, a value on a switch, an unknown verb', async () => {
    const missing = await runInProcess(['run', '--config']);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/^oiafed run: --config needs a value\nusage: /);
    const switchValue = await runInProcess(['show-config', 'a.yaml', '--json=yes']);
    expect(switchValue.code).toBe(2);
    expect(switchValue.stderr).toMatch(/^oiafed show-config: --json takes no value\n/);
    const verb = await runInProcess(['lauch']);
    expect(verb.code).toBe(2);
    expect(verb.stderr).toMatch(/^unknown command "lauch"; did you mean "launch"\?/);
  });

  it('a bad --set is a config error naming --set, exit 2', async () => {
    const dir = tempDir('set');
    const config = tinyTrainerYaml(dir);
    const noEquals = await runInProcess(['show-config', config, '--set', 'trainer.args.max_rounds']);
    expect(noEquals.code).toBe(2);
    expect(noEquals.stderr).toMatch(/^--set: "trainer\.args\.max_rounds": expected key\.path=value/);
    const badValue = await runInProcess(['run', '--config', config, '--set', 'trainer.args.max_rounds=many']);
    expect(badValue.code).toBe(2);
    expect(badValue.stderr).toBe('--set: trainer.args.max_rounds: must be integer (got "many")\n');
  });
});
