/**
 * `oiafed validate`, the command the docs tell operators to run before deploying, accepts every
 * node config shipped under deploy/ (run from source, as a child process, with the environment
 * each container gets). One child process for all files: it loads the whole CLI from source.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { sourceNodeFlags } from '../../source-node.js';
import { composeFile, configMountSource } from './compose.js';
import { repoRoot } from './helpers.js';
import { downwardEnv, k8s } from './k8s.js';

const cli = join(repoRoot, 'apps/cli/src/main.ts');
const tmp = mkdtempSync(join(tmpdir(), 'oiafed-deploy-cli-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function oiafed(args: string[], env: Record<string, string>): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [...sourceNodeFlags(), cli, ...args], { cwd: repoRoot, env: { PATH: process.env.PATH ?? '', ...env }, timeout: 50_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, out: `${stdout}${stderr}` });
    });
  });
}

describe('oiafed validate on the deploy configs', () => {
  it('accepts the compose configs and the ConfigMap configs of pod oiafed-learner-3', async () => {
    const services = composeFile().services as Record<string, unknown>;
    const files = Object.entries(services).map(([name, svc]) => configMountSource(name, svc));
    const { manifests } = k8s();
    const cm = manifests.find((m) => m.doc.kind === 'ConfigMap')!.doc;
    for (const key of ['trainer.yaml', 'learner.yaml']) {
      writeFileSync(join(tmp, key), cm.data[key]);
      files.push(join(tmp, key));
    }
    const sts = manifests.find((m) => m.doc.kind === 'StatefulSet')!.doc;
    const env = downwardEnv(sts.spec.template.spec.containers[0], 'oiafed-learner-3', 3);
    const { code, out } = await oiafed(['validate', ...files], env);
    expect(out).not.toMatch(/error/i);
    expect(code, out).toBe(0);
    expect(out.match(/^ok: /gm)?.length, out).toBe(files.length);
    expect(out).toContain('"oiafed-learner-3"');
  });
});
