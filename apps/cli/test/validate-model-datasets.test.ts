import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, realpathSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cliArgv, repoRoot, runCli, tempDir, tinyTrainerYaml, writeFile } from './helpers.js';

interface ValidateDoc {
  valid: boolean;
  files: Array<{ file: string; valid: boolean; issues: Array<{ path: string; message: string }> }>;
}

/** `oiafed validate` checks `model` and `datasets[]` by their registries, without building anything. */
describe('validate checks model and dataset types and args', () => {
  it('exit 2 for an unknown model.type, an unknown model arg, an unknown dataset type and bad dataset args, naming each key path', async () => {
    const dir = tempDir('validate-model-datasets');
    const tiny = readFileSync(tinyTrainerYaml(dir), 'utf8');
    const withModel = (model: string) => tiny.replace('model: {type: mlp, args: {hidden: [16], num_classes: 10}}', `model: ${model}`);
    const withDataset = (entry: string) => tiny.replace('  - type: synthetic\n    args: {alpha: 1, beta: 1, samples_per_client: 120}', entry);
    const files = [
      writeFile(dir, 'resnet99.yaml', withModel('{type: resnet99}')),
      writeFile(dir, 'dropout.yaml', withModel('{type: resnet18, args: {num_classes: 100, dropout: 0.5}}')),
      writeFile(dir, 'cifar1000.yaml', withDataset('  - type: cifar1000')),
      writeFile(dir, 'label-mode.yaml', withDataset('  - type: cifar100\n    args: {label_mode: finest}')),
      writeFile(dir, 'label-mod.yaml', withDataset('  - type: cifar100\n    args: {label_mod: coarse}')),
      writeFile(dir, 'good.yaml', withModel('{type: resnet18, args: {num_classes: 100}}').replace(
        '  - type: synthetic\n    args: {alpha: 1, beta: 1, samples_per_client: 120}',
        '  - type: cifar-100\n    args: {label_mode: coarse, download: true}',
      )),
    ];
    const result = await runCli(['validate', ...files, '--json']);
    expect(result.code, result.stderr).toBe(2);
    const doc = JSON.parse(result.stdout) as ValidateDoc;
    expect(doc.files.map((f) => f.valid)).toEqual([false, false, false, false, false, true]);
    const issues = doc.files.map((f) => f.issues.map((i) => `${i.path}: ${i.message}`));
    expect(issues[0]).toEqual([expect.stringMatching(/^model: model\.type: unknown model type "resnet99"; registered types: .*resnet18.*; did you mean "resnet/)]);
    expect(issues[1]).toEqual([
      expect.stringMatching(/^model: model "resnet18": model\.args\.dropout is not a known argument \(allowed: num_classes, input_shape, seed\)/),
    ]);
    expect(issues[2]).toEqual([expect.stringMatching(/^datasets\.0: datasets\.0\.type: unknown dataset type "cifar1000"; .*did you mean "cifar100"\?$/)]);
    expect(issues[3]).toEqual(['datasets.0: dataset "cifar100": datasets.0.args.label_mode must be one of "fine", "coarse", got string "finest"']);
    expect(issues[4]).toEqual([expect.stringMatching(/^datasets\.0: dataset "cifar100": datasets\.0\.args\.label_mod is not a known argument .*did you mean "label_mode"\?$/)]);

    const text = await runCli(['validate', files[0]!]);
    expect(text.code).toBe(2);
    expect(text.stderr).toContain(`${files[0]}: model: model.type: unknown model type "resnet99"`);
  });

  it('checks a learner config too, and --set values', async () => {
    const learner = join(repoRoot, 'examples/guide/learner_0.yaml');
    const result = await runCli(['validate', learner, '--set', 'model.type=lenett', '--set', 'datasets.0.type=fmnistt']);
    expect(result.code, result.stdout).toBe(2);
    expect(result.stderr).toMatch(/model: model\.type: unknown model type "lenett"; .*did you mean "lenet"\?/);
    expect(result.stderr).toMatch(/datasets\.0: datasets\.0\.type: unknown dataset type "fmnistt"; registered types: .*fashion_mnist.*; did you mean "/);
  });

  it('loads no tfjs: the check and the model catalog import neither tfjs-core nor tfjs-layers', () => {
    // tfjs-core makes its engine (globalThis._tfengine) on import: seconds that validate must not pay.
    const probe = `await import('@oiafed/core/component-check'); await import('@oiafed/models/catalog');
      const before = typeof globalThis._tfengine; await import('@oiafed/models'); console.log(before, typeof globalThis._tfengine);`;
    const [node, ...flags] = cliArgv().slice(0, -1);
    const out = execFileSync(node!, [...flags, '--input-type=module', '-e', probe], { cwd: join(repoRoot, 'apps/cli'), encoding: 'utf8' });
    expect(out.trim()).toBe('undefined object');
  });

  it('the example configs still validate', async () => {
    const examples = readdirSync(join(repoRoot, 'examples'), { recursive: true, encoding: 'utf8' })
      .filter((f) => f.endsWith('.yaml') && !f.endsWith('hosts.yaml'))
      .map((f) => join(repoRoot, 'examples', f));
    expect(examples.length).toBeGreaterThan(3);
    // hosts/learner.yaml takes these from the launcher (oiafed launch --hosts).
    const result = await runCli(['validate', ...examples], { env: { TRAINER_HOST: '127.0.0.1', PARTITION_ID: '0' } });
    expect(result.code, result.stderr).toBe(0);
  });

  it("honours plugins: a plugin's model and dataset types are known, and their registered args schemas apply", async () => {
    const project = pluginProject();
    const yaml = (model: string, dataset: string) =>
      readFileSync(tinyTrainerYaml(project), 'utf8')
        .replace('model: {type: mlp, args: {hidden: [16], num_classes: 10}}', `plugins: [./types-plugin.mjs]\nmodel: ${model}`)
        .replace('  - type: synthetic\n    args: {alpha: 1, beta: 1, samples_per_client: 120}', dataset);
    const good = writeFile(project, 'good.yaml', yaml('{type: plugin_net, args: {width: 8}}', '  - type: plugin_blobs\n    args: {spread: 0.5}'));
    const bad = writeFile(project, 'bad.yaml', yaml('{type: plugin_net, args: {widt: 8}}', '  - type: plugin_blobs\n    args: {spread: -1}'));
    const result = await runCli(['validate', good, bad, '--json'], { cwd: project });
    expect(result.code, result.stderr).toBe(2);
    const doc = JSON.parse(result.stdout) as ValidateDoc;
    expect(doc.files.map((f) => f.valid)).toEqual([true, false]);
    expect(doc.files[1]!.issues.map((i) => i.message)).toEqual([
      expect.stringMatching(/^model "plugin_net": model\.args\.widt is not a known argument .*did you mean "width"\?$/),
      'dataset "plugin_blobs": datasets.0.args.spread must be >= 0, got -1',
    ]);
  });
});

/** Registers `plugin_net` and `plugin_blobs` with args schemas; the factories are never called by validate. */
const TYPES_PLUGIN = `import { registerModel } from '@oiafed/models';
import { registerDataset } from '@oiafed/datasets';

export function register() {
  registerModel('plugin_net', () => { throw new Error('validate must not build the model'); }, {
    argsSchema: { type: 'object', properties: { width: { type: 'integer', minimum: 1 } }, additionalProperties: false },
  });
  registerDataset('plugin_blobs', async () => { throw new Error('validate must not load data'); }, {
    argsSchema: { type: 'object', properties: { spread: { type: 'number', minimum: 0 } }, additionalProperties: false },
  });
}
`;

/** A user's project: the plugin file and the @oiafed packages in its node_modules (links, as npm install gives). */
function pluginProject(): string {
  const project = tempDir('validate-plugin-types');
  writeFileSync(join(project, 'types-plugin.mjs'), TYPES_PLUGIN);
  for (const name of ['models', 'datasets']) {
    const at = join(project, 'node_modules/@oiafed', name);
    mkdirSync(dirname(at), { recursive: true });
    symlinkSync(realpathSync(join(repoRoot, 'packages', name)), at);
  }
  return project;
}
