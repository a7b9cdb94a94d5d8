// Authentication keys: an empty token is a config error (never "auth off"), per-node tokens are
// keyed by valid node ids, and errors never print the token map.
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig, MAX_NODE_ID_LENGTH } from '@oiafed/config';
import { configError, writeTree } from './helpers.js';

const trainer = (grpc: string) => `node_id: trainer\nrole: trainer\ntransport:\n  mode: grpc\n  grpc: ${grpc}\n`;

describe('transport.grpc auth keys', () => {
  it('an auth_token that resolves to "" (TOKEN set but empty) is an error naming the key path', () => {
    const dir = writeTree({ 'trainer.yaml': trainer('{auth_token: "${TOKEN}"}') });
    const err = configError(() => loadConfig(join(dir, 'trainer.yaml'), { env: { TOKEN: '' } }));
    expect(err.message).toMatch(/trainer\.yaml.*transport\.grpc\.auth_token: must not be empty/);
  });

  it('accepts per-node tokens and rejects an empty one, a bad node id key and an empty map, without echoing tokens', () => {
    const dir = writeTree({
      'ok.yaml': trainer('{auth_tokens: {learner_0: "${T0}", learner_1: s3cret-1}}'),
      'bad.yaml': trainer('{auth_tokens: {learner_0: "", "bad id": s3cret-2}}'),
      'none.yaml': trainer('{auth_tokens: {}}'),
    });
    const ok = loadConfig(join(dir, 'ok.yaml'), { env: { T0: 's3cret-0' } });
    expect(ok.transport.grpc.auth_tokens).toEqual({ learner_0: 's3cret-0', learner_1: 's3cret-1' });
    const bad = configError(() => loadConfig(join(dir, 'bad.yaml'), { env: {} })).message;
    expect(bad).toMatch(/transport\.grpc\.auth_tokens\.learner_0: must not be empty/);
    expect(bad).toMatch(/transport\.grpc\.auth_tokens: key "bad id" must be an id of letters/);
    expect(bad).not.toContain('s3cret-2');
    expect(configError(() => loadConfig(join(dir, 'none.yaml'), { env: {} })).message).toMatch(/transport\.grpc\.auth_tokens: must NOT have fewer than 1 properties/);
  });

  it(`caps node_id at ${MAX_NODE_ID_LENGTH} characters without printing it`, () => {
    const dir = writeTree({ 'long.yaml': `node_id: ${'n'.repeat(5000)}\nrole: trainer\n` });
    const err = configError(() => loadConfig(join(dir, 'long.yaml'), { env: {} })).message;
    expect(err).toMatch(/node_id: must have at most 128 characters \(got 5000\)/);
    expect(err.length).toBeLessThan(500);
  });
});
