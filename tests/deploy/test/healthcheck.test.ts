/**
 * The images' and compose's HEALTHCHECK commands, run for real against @oiafed/tracker's
 * /health endpoint on 127.0.0.1: healthy -> exit 0, unhealthy (503) or down -> exit 1.
 */
import { startObservability, type ObservabilityServer } from '@oiafed/tracker';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { composeFile } from './compose.js';
import { deployDir, finalStage, parseDockerfile } from './helpers.js';

/** Runs an exec-form command (node -> this node binary); resolves to its exit code. */
function run(argv: string[], env: Record<string, string> = {}): Promise<number> {
  const [cmd, ...args] = argv;
  const bin = cmd === 'node' ? process.execPath : cmd!;
  return new Promise((resolve) => {
    execFile(bin, args, { env: { ...process.env, ...env }, timeout: 20_000 }, (err) => {
      resolve(err ? (typeof err.code === 'number' ? err.code : 1) : 0);
    });
  });
}

const dockerHealthcheck = (name: string) => {
  const hc = finalStage(parseDockerfile(readFileSync(join(deployDir, 'docker', name), 'utf8'))).find((i) => i.keyword === 'HEALTHCHECK')!;
  return hc.exec!;
};

let live = true;
let server: ObservabilityServer;
beforeAll(async () => {
  server = await startObservability({
    health: { enabled: true, host: '127.0.0.1', port: 0 },
    status: () => ({ live, ready: false }),
  });
});
afterAll(async () => {
  await server?.close();
});

describe.each(['Dockerfile', 'Dockerfile.cuda'])('%s HEALTHCHECK', (name) => {
  it('passes while /health is live and fails on 503', async () => {
    const cmd = dockerHealthcheck(name);
    const env = { OIAFED_HEALTH_PORT: String(server.healthPort) };
    live = true;
    expect(await run(cmd, env)).toBe(0);
    live = false;
    expect(await run(cmd, env)).toBe(1);
    live = true;
  });
});

describe('compose healthcheck', () => {
  it('runs the same probe (port substituted) and passes on a live node that is not ready yet', async () => {
    const test: string[] = composeFile().services.trainer.healthcheck.test;
    expect(test[0]).toBe('CMD');
    const argv = test.slice(1).map((a) => a.replace('127.0.0.1:8080', `127.0.0.1:${server.healthPort}`));
    expect(argv.join(' ')).toContain(`:${server.healthPort}/health`);
    live = true;
    expect(await run(argv)).toBe(0);
  });

  it('fails when nothing listens', async () => {
    const closed = await startObservability({ health: { enabled: true, host: '127.0.0.1', port: 0 }, status: () => ({ live: true, ready: true }) });
    const port = String(closed.healthPort);
    await closed.close();
    expect(await run(dockerHealthcheck('Dockerfile'), { OIAFED_HEALTH_PORT: port })).toBe(1);
  });
});
