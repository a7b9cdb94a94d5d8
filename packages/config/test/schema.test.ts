import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig, nodeConfigSchema, resolveConfig, stringifyConfig } from '@oiafed/config';
import { writeTree } from './helpers.js';

describe('schema file', () => {
  it('equals the TS schema object (regenerate with `npx tsx packages/config/schema/generate.ts`)', () => {
    const path = createRequire(import.meta.url).resolve('@oiafed/config/schema.json');
    const text = readFileSync(path, 'utf8');
    expect(JSON.parse(text)).toEqual(nodeConfigSchema);
    expect(text).toBe(`${JSON.stringify(nodeConfigSchema, null, 2)}\n`);
  });
});

describe('stringifyConfig', () => {
  it('round-trips through loadConfig to an equal object', () => {
    const config = resolveConfig(
      {
        node_id: 'learner_3',
        role: 'learner',
        exp_name: '0123',
        connect_to: ['trainer@[::1]:50051'],
        transport: { mode: 'grpc', grpc: { auth_token: 'a $${literal} token', tls: { ca: 'ca.pem', cert: 'c.pem', key: 'k.pem' } } },
        learner: { args: { device: 'cuda:1', lr: 0.001, local_epochs: 2 } },
        model: { type: 'mlp', args: { input_shape: [28, 28, 1], dropout: 0.5, name: 'true' } },
        datasets: [{ type: 'mnist', split: 'test', args: { download: true }, partition: { strategy: 'dirichlet', num_partitions: 4, partition_id: 3, config: { alpha: 0.5 } } }],
        callbacks: [{ type: 'early_stopping', patience: 5 }],
        plugins: ['@acme/oiafed-my-algo'],
      },
      { env: {} },
    );
    const text = stringifyConfig(config);
    expect(text.startsWith('node_id: learner_3\nrole: learner\n')).toBe(true);
    const dir = writeTree({ 'resolved.yaml': text });
    // Loaded from a file, the config also records that file's directory.
    expect(loadConfig(join(dir, 'resolved.yaml'), { env: {} })).toEqual({ ...config, config_dir: dir });
  });
});
