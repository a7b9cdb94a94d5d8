import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { runCli, runInProcess, tempDir, tinyTrainerYaml, writeFile } from './helpers.js';

function lastLine(text: string): string {
  const lines = text.trimEnd().split('\n');
  return lines[lines.length - 1]!;
}

describe('--json for scripts', () => {
  it('validate --json: one document listing each file, its issues and the overall verdict', async () => {
    const dir = tempDir('validate');
    const good = tinyTrainerYaml(dir);
    const bad = writeFile(dir, 'bad.yaml', 'node_id: x\nrole: trainer\nmodel: {type: mlp}\nseed: many\n');
    const result = await runCli(['validate', good, bad, '--json']);
    expect(result.code).toBe(2);
    const doc = JSON.parse(result.stdout) as { valid: boolean; files: Array<Record<string, unknown>> };
    expect(doc.valid).toBe(false);
    expect(doc.files[0]).toEqual({ file: good, valid: true, role: 'trainer', node_id: 'trainer', issues: [] });
    expect(doc.files[1]).toMatchObject({ file: bad, valid: false, issues: [{ file: bad, path: 'seed', line: 4 }] });
  });

  it('show-config --json with --set: the resolved config, overrides applied and validated', async () => {
    const dir = tempDir('show');
    const config = tinyTrainerYaml(dir);
    const result = await runCli([
      'show-config',
      config,
      '--json',
      '--set',
      'trainer.args.max_rounds=3',
      '--set',
      'transport.mode=memory',
      '--set',
      'datasets.0.partition.partition_id=1',
    ]);
    expect(result.code, result.stderr).toBe(0);
    const doc = JSON.parse(result.stdout) as Record<string, any>;
    expect(doc.trainer.args.max_rounds).toBe(3);
    expect(doc.transport.mode).toBe('memory');
    expect(doc.datasets[0].partition).toMatchObject({ partition_id: 1, num_partitions: 2 });
    // The YAML form records which overrides made it, and reads back to the same config.
    const yaml = await runInProcess(['show-config', config, '--set', 'trainer.args.max_rounds=3']);
    expect(yaml.stdout.startsWith('# --set trainer.args.max_rounds=3\n')).toBe(true);
    expect((parseYaml(yaml.stdout) as Record<string, any>).trainer.args.max_rounds).toBe(3);
  });

  it('partition-stats --json: per partition its size and label counts', async () => {
    const dir = tempDir('stats');
    const config = tinyTrainerYaml(dir);
    const result = await runCli(['partition-stats', config, '--json', '--out', join(dir, 'stats.html')], { cwd: dir });
    expect(result.code, result.stderr).toBe(0);
    const doc = JSON.parse(result.stdout) as { num_partitions: number; num_classes: number; partitions: Array<{ partition_id: number; size: number; label_counts: number[] }> };
    expect(doc.num_partitions).toBe(2);
    expect(doc.partitions.map((p) => p.partition_id)).toEqual([0, 1]);
    for (const p of doc.partitions) {
      expect(p.label_counts).toHaveLength(doc.num_classes);
      expect(p.label_counts.reduce((a, b) => a + b, 0)).toBe(p.size);
    }
  });

  it('run --mode serial --json: round lines and logs on stderr, the summary as the one stdout line', async () => {
    const dir = tempDir('run');
    const config = tinyTrainerYaml(dir);
    const result = await runCli(['run', '--config', config, '--mode', 'serial', '--num-clients', '2', '--json', '--set', 'trainer.args.max_rounds=2']);
    expect(result.code, result.stderr.slice(-3000)).toBe(0);
    expect(result.stdout.trimEnd().split('\n')).toHaveLength(1);
    const summary = JSON.parse(lastLine(result.stdout)) as Record<string, unknown>;
    expect(summary).toMatchObject({ role: 'trainer', mode: 'serial', node_id: 'trainer', rounds: 2, stopped_by: 'max_rounds', run_dir: join(dir, 'run') });
    expect(typeof summary.final_accuracy).toBe('number');
    expect(result.stderr).toMatch(/^round 2\/2 /m);
    // Not a terminal: no escape codes on either stream.
    expect(result.stdout + result.stderr).not.toContain('\x1b');
  });

  it('launch --json with --set: the generated per-node configs record the override, the summary is the last stdout line', async () => {
    const dir = tempDir('launch');
    const config = tinyTrainerYaml(dir);
    const runDir = join(dir, 'run');
    const result = await runCli(
      ['launch', '--config', config, '--num-clients', '2', '--run-dir', runDir, '--quiet-logs', '--json', '--set', 'trainer.args.max_rounds=1', '--set', 'learner.args.batch_size=16'],
      { cwd: dir },
    );
    expect(result.code, result.stderr.slice(-3000)).toBe(0);
    const summary = JSON.parse(lastLine(result.stdout)) as Record<string, unknown>;
    expect(summary).toMatchObject({ mode: 'launch', rounds: 1, stopped_by: 'max_rounds', exit_code: 0, learner_exit_codes: [0, 0], run_dir: runDir });
    for (const node of ['trainer', 'learner_0', 'learner_1']) {
      const text = readFileSync(join(runDir, 'launch', `${node}.yaml`), 'utf8');
      expect(text).toContain('# --set trainer.args.max_rounds=1\n');
      const generated = parseYaml(text) as Record<string, any>;
      expect(generated.learner.args.batch_size).toBe(16);
      if (node === 'trainer') expect(generated.trainer.args.max_rounds).toBe(1);
    }
  });
});
