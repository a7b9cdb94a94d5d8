import { execFileSync } from 'node:child_process';
import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { repoRoot, tempDir } from './helpers.js';

/** What a user gets from the registry: the packed tarball, installed into an empty project outside the repo. */
describe('npm pack', () => {
  it('@oiafed/config packs into a tarball that installs and imports in an empty folder', () => {
    execFileSync('npx', ['tsc', '-p', 'packages/config/tsconfig.build.json'], { cwd: repoRoot, stdio: 'pipe' });
    const packDir = tempDir('pack');
    execFileSync('npm', ['pack', '-w', '@oiafed/config', '--pack-destination', packDir, '--silent'], { cwd: repoRoot, stdio: 'pipe' });
    const tarball = readdirSync(packDir).find((f) => f.endsWith('.tgz'));
    expect(tarball).toMatch(/^oiafed-config-\d+\.\d+\.\d+\.tgz$/);

    const project = tempDir('consumer');
    writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'consumer', version: '1.0.0', type: 'module', private: true }));
    execFileSync('npm', ['install', join(packDir, tarball!), '--prefer-offline', '--no-audit', '--no-fund', '--silent'], {
      cwd: project,
      stdio: 'pipe',
    });
    writeFileSync(join(project, 'trainer.yaml'), 'node_id: trainer\nrole: trainer\nmodel: {type: mlp}\n');
    const script = [
      "import { loadConfig } from '@oiafed/config';",
      "const schema = (await import('@oiafed/config/schema.json', { with: { type: 'json' } })).default;",
      "const c = loadConfig('trainer.yaml');",
      'console.log(JSON.stringify({ port: c.listen.port, rounds: c.trainer.args.max_rounds, schema: typeof schema.properties }));',
    ].join('\n');
    writeFileSync(join(project, 'check.mjs'), script);
    const output = execFileSync(process.execPath, ['check.mjs'], { cwd: project, encoding: 'utf8' });
    expect(JSON.parse(output)).toEqual({ port: 50051, rounds: 10, schema: 'object' });
  });
});
