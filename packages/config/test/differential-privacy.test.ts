import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '@oiafed/config';
import { configError, writeTree } from './helpers.js';

const TRAINER = 'node_id: trainer\nrole: trainer\n';

function load(body: string) {
  const dir = writeTree({ 'trainer.yaml': `${TRAINER}${body}` });
  return { file: join(dir, 'trainer.yaml'), load: () => loadConfig(join(dir, 'trainer.yaml'), { env: {} }) };
}

describe('differential_privacy.mode', () => {
  it('accepts central, local and dp_sgd, central by default', () => {
    for (const mode of ['central', 'local', 'dp_sgd']) {
      expect(load(`differential_privacy: {mode: ${mode}, noise_multiplier: 1, clip_norm: 1}\n`).load().differential_privacy?.mode).toBe(mode);
    }
    expect(load('differential_privacy: {noise_multiplier: 1, clip_norm: 1}\n').load().differential_privacy?.mode).toBe('central');
  });

  it('refuses another mode, naming the key path and the allowed values', () => {
    const { file, load: run } = load('differential_privacy: {mode: laplace, noise_multiplier: 1, clip_norm: 1}\n');
    expect(configError(run).message).toBe(`${file}: differential_privacy.mode: must be one of: central, local, dp_sgd (got "laplace")`);
  });
});
