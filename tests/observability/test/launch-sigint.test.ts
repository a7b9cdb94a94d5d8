/**
 * `oiafed launch` forwards Ctrl-C: SIGINT to the launcher reaches the trainer and every learner,
 * and no child process outlives the launcher.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { assertRunning, capture, exited, startCli, tempDir, waitFor, writeFile } from './helpers.js';

function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('oiafed launch and Ctrl-C', () => {
  it('forwards SIGINT to every node and exits once all of them have', async () => {
    const dir = tempDir('sigint');
    const config = writeFile(
      dir,
      'trainer.yaml',
      `exp_name: sigint
node_id: trainer
role: trainer
seed: 1
transport: {mode: grpc}
trainer:
  type: default
  args: {max_rounds: 500, local_epochs: 1, min_clients: 2, round_timeout: 60, registration_timeout: 60}
learner:
  type: default
  args: {batch_size: 16, lr: 0.05}
aggregator: {type: fedavg}
model: {type: mlp, args: {hidden: [16]}}
datasets:
  - type: synthetic
    args: {samples_per_client: 100}
checkpoint: {dir: ${join(dir, 'ckpt')}}
tracker:
  backends: [{type: console, level: info}]
`,
    );
    const launcher = startCli(['launch', '--config', config, '--num-clients', '2', '--run-dir', join(dir, 'run')]);
    const out = capture(launcher);
    await waitFor(() => {
      assertRunning(launcher, out, 'oiafed launch');
      return /^round\s+2\/500/m.test(out.stdout);
    }, 'round 2', 60_000);
    const nodes = childrenOf(launcher.pid!);
    expect(nodes).toHaveLength(3);
    launcher.kill('SIGINT');
    const code = await exited(launcher, out, 30_000);
    expect(out.stderr).toContain('SIGINT received');
    // The trainer stopped by the signal (a checkpoint is its graceful-stop mark), not by max_rounds.
    expect(out.stderr).toMatch(/checkpoint of round \d+ written/);
    expect(out.stdout).toMatch(/\(aborted\)/);
    expect(code).toBe(0);
    for (const pid of nodes) expect(isRunning(pid), `node process ${pid} outlived the launcher`).toBe(false);
  }, 60_000);
});
