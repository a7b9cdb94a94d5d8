// Node identity at the federation level, from configs as operators write them: an empty token
// refused by `oiafed validate` (exit 2), per-node tokens (`auth_tokens`) that stop a token holder
// from taking another learner's id, and the node-id rule shared by config and wire.
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { MAX_NODE_ID_LENGTH, NODE_ID_PATTERN, resolveConfig, type NodeConfig } from '@oiafed/config';
import { buildTransport } from '@oiafed/core';
import { MAX_NODE_ID_LENGTH as WIRE_MAX, nodeIdProblem, type Transport } from '@oiafed/transport';
import { afterAll, describe, expect, it } from 'vitest';
import { cliCommand, repoRoot, tempDir } from './helpers.js';

const ENV = { TOKEN_0: 'token-zero', TOKEN_1: 'token-one' };

function config(raw: Record<string, unknown>): NodeConfig {
  return resolveConfig(
    { exp_name: 'identity', retry: { max_attempts: 2, backoff_strategy: 'constant', initial_delay: 0.05, max_delay: 0.05 }, ...raw },
    { file: 'identity.yaml', env: ENV },
  );
}

describe('node identity from configs', () => {
  const started: Transport[] = [];
  afterAll(async () => {
    await Promise.all(started.map((t) => t.stop()));
  });
  const build = (c: NodeConfig) => {
    const t = buildTransport(c);
    started.push(t);
    return t;
  };

  it("with auth_tokens, learner_1's token cannot register as learner_0, and learner_0's can", async () => {
    const grpc = { timeout: 3, auth_tokens: { learner_0: '${TOKEN_0}', learner_1: '${TOKEN_1}' } };
    const trainer = build(config({ node_id: 'trainer', role: 'trainer', listen: { host: '127.0.0.1', port: 0 }, transport: { mode: 'grpc', grpc } }));
    await trainer.start();
    const learner = (id: string, token: string) =>
      build(config({ node_id: id, role: 'learner', connect_to: [`trainer@127.0.0.1:${trainer.boundPort}`], transport: { mode: 'grpc', grpc: { timeout: 3, auth_token: token } } }));
    const squat = await learner('learner_0', '${TOKEN_1}').start().then(() => undefined, (e: unknown) => e as Error);
    expect(squat?.message).toMatch(/may not register as 'learner_0': the bearer token is not the one issued to this node id/);
    await learner('learner_0', '${TOKEN_0}').start();
    expect(trainer.peers().map((p) => p.nodeId)).toEqual(['learner_0']);
  });

  it('config and wire apply the same node-id rule', () => {
    expect(WIRE_MAX).toBe(MAX_NODE_ID_LENGTH);
    const re = new RegExp(NODE_ID_PATTERN);
    const ids = ['learner_0', 'a.b-c', 'x'.repeat(MAX_NODE_ID_LENGTH), 'x'.repeat(MAX_NODE_ID_LENGTH + 1), '', 'a b', 'a\nb', 'ü', 'a/b', 'a:b'];
    for (const id of ids) expect(nodeIdProblem(id) === undefined, JSON.stringify(id.slice(0, 20))).toBe(re.test(id) && id.length <= MAX_NODE_ID_LENGTH);
  });

  it('`oiafed validate` exits 2 naming transport.grpc.auth_token when the token variable is empty', async () => {
    const dir = tempDir('identity');
    const file = join(dir, 'trainer.yaml');
    writeFileSync(file, 'node_id: trainer\nrole: trainer\ntransport:\n  mode: grpc\n  grpc: {auth_token: "${FED_TOKEN}"}\n');
    const [node, args] = cliCommand();
    const run = (token: string) =>
      new Promise<{ code: number; out: string }>((resolve) =>
        execFile(node, [...args, 'validate', file], { cwd: repoRoot, env: { PATH: process.env.PATH ?? '', FED_TOKEN: token }, timeout: 60_000 }, (err, stdout, stderr) =>
          resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, out: `${stdout}${stderr}` }),
        ),
      );
    const empty = await run('');
    expect(empty.code, empty.out).toBe(2);
    expect(empty.out).toMatch(/transport\.grpc\.auth_token: must not be empty/);
    expect(empty.out).not.toMatch(/\n\s+at /);
    const set = await run('s3cret');
    expect(set.code, set.out).toBe(0);
  });
});
