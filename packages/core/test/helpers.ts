import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolveConfig, type NodeConfig } from '@oiafed/config';

export function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), `oiafed-core-${prefix}-`));
}

/** A small synthetic federation config; `overrides` are merged one level deep. */
export function syntheticTrainerConfig(overrides: Record<string, unknown> = {}): NodeConfig {
  const base: Record<string, unknown> = {
    node_id: 'trainer',
    role: 'trainer',
    exp_name: 'core-test',
    seed: 7,
    transport: { mode: 'memory' },
    trainer: { args: { max_rounds: 4, min_clients: 3, local_epochs: 2, registration_timeout: 20, round_timeout: 60 } },
    learner: { args: { batch_size: 32, lr: 0.05, momentum: 0.5, device: 'cpu' } },
    aggregator: { type: 'fedavg' },
    model: { type: 'mlp', args: { hidden: [32] } },
    datasets: [{ type: 'synthetic', args: { alpha: 0, beta: 0, samples_per_client: 200 } }],
    tracker: { backends: [{ type: 'console', level: 'error' }], run_dir: tempDir('run') },
  };
  for (const [key, value] of Object.entries(overrides)) {
    const current = base[key];
    base[key] =
      current && typeof current === 'object' && !Array.isArray(current) && value && typeof value === 'object' && !Array.isArray(value)
        ? { ...(current as object), ...(value as object) }
        : value;
  }
  return resolveConfig(base, { file: 'test-trainer.yaml', env: {} });
}
