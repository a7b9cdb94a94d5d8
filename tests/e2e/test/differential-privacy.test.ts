/**
 * Differential privacy across real processes (issue 16 §2): `oiafed launch` starts a trainer and two
 * learner processes over gRPC on 127.0.0.1; only the trainer's config names differential_privacy, and
 * the learners apply DP-SGD from the trainer's announcement.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli, tempDir, writeYaml } from './helpers.js';

const trainerYaml = `exp_name: dp-e2e
node_id: trainer
role: trainer
seed: 5
listen: {host: 127.0.0.1, port: 0}
transport: {mode: grpc}
trainer:
  type: default
  args: {max_rounds: 2, local_epochs: 1, client_fraction: 1.0, min_clients: 2, round_timeout: 240, registration_timeout: 60}
learner:
  type: default
  args: {batch_size: 32, lr: 0.05, optimizer: sgd, device: cpu}
aggregator: {type: fedavg}
differential_privacy: {mode: dp_sgd, noise_multiplier: 1.1, clip_norm: 1.0, delta: 1.0e-5}
model: {type: mlp, args: {hidden: [16], num_classes: 10}}
datasets:
  - type: synthetic
    args: {alpha: 0.5, beta: 0.5, samples_per_client: 200}
    partition: {num_partitions: 2}
heartbeat: {enabled: true, interval: 2, timeout: 20}
retry: {max_attempts: 20, backoff_strategy: exponential, initial_delay: 0.2, max_delay: 2}
tracker:
  backends: [{type: console, level: info}]
`;

describe('differential privacy over gRPC', () => {
  it('two learner processes run DP-SGD from the announcement; the trainer shows their epsilon each round', async () => {
    const dir = tempDir('dp-e2e');
    const config = writeYaml(dir, 'trainer.yaml', trainerYaml);
    const runDir = join(dir, 'run');
    const result = await runCli(['launch', '--config', config, '--num-clients', '2', '--run-dir', runDir], { timeoutMs: 300_000 });
    expect(result.code, result.stderr.slice(-3000)).toBe(0);
    // 200 samples per learner, 20% held out: 160 to train on, batch 32: q = 0.2, 5 steps per round;
    // epsilonFor(0.2, 1.1, 5 and 10 steps, 1e-5) of @oiafed/privacy = 3.8388, 4.8636.
    const shown = [...result.stdout.matchAll(/^round\s+\d+\/2 .* eps=([\d.]+)/gm)].map((m) => Number(m[1]));
    expect(shown).toEqual([3.839, 4.864]);
    const history = readFileSync(join(runDir, 'history.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(history.map((r) => r.participants)).toEqual([2, 2]);
  }, 320_000);
});
