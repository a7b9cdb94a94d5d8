import { appendFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { readRunHistory, RunHistory, type StoredRoundRecord as RoundRecord } from '@oiafed/tracker';

const dirs: string[] = [];
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'oiafed-tracker-hist-'));
  dirs.push(dir);
  return dir;
}
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

const round = (n: number, extra: Partial<RoundRecord> = {}): RoundRecord => ({
  round: n,
  timestamp: `2026-11-29T03:0${n}:00.000Z`,
  participants: 3,
  duration_s: 1.5 * n,
  ...extra,
});

describe('RunHistory', () => {
  it('appends JSON lines under a new directory and reads them back', () => {
    const runDir = join(tempDir(), 'runs', 'exp1');
    const history = new RunHistory(runDir);
    expect(history.file).toBe(join(runDir, 'history.jsonl'));
    expect(history.read()).toEqual([]);
    history.append(round(1, { accuracy: 0.5, loss: 1.2, learners: { learner_0: { samples: 100 } } }));
    history.append(round(2, { accuracy: 0.6, loss: Number.NaN }));
    const lines = readFileSync(history.file, 'utf8').split('\n');
    expect(lines).toHaveLength(3);
    expect(lines[2]).toBe('');
    expect(history.read()).toEqual([
      round(1, { accuracy: 0.5, loss: 1.2, learners: { learner_0: { samples: 100 } } }),
      round(2, { accuracy: 0.6, loss: null as unknown as number }),
    ]);
    expect(readRunHistory(runDir)).toHaveLength(2);
  });

  it('writes summary.json', () => {
    const runDir = tempDir();
    new RunHistory(runDir).writeSummary({ exp_name: 'demo', best_accuracy: 0.9 });
    expect(JSON.parse(readFileSync(join(runDir, 'summary.json'), 'utf8'))).toEqual({ exp_name: 'demo', best_accuracy: 0.9 });
  });

  it('names file and line of a corrupt line', () => {
    const runDir = tempDir();
    const history = new RunHistory(runDir);
    history.append(round(1));
    appendFileSync(history.file, '{"round": 2, "timest\n');
    expect(() => readRunHistory(runDir)).toThrow(`${history.file}:2: corrupt run history line, not valid JSON`);
    rmSync(history.file);
    history.append(round(1));
    appendFileSync(history.file, '\n{"round": "two", "participants": 1, "duration_s": 1}\n');
    expect(() => history.read()).toThrow(`${history.file}:3: "round" must be a finite number, got "two"`);
  });

  it('rejects a missing history and a malformed record', () => {
    const runDir = tempDir();
    expect(() => readRunHistory(runDir)).toThrow(/cannot read run history .*history\.jsonl: no such file/);
    expect(() => new RunHistory(runDir).append({ round: 1 } as RoundRecord)).toThrow(/"participants" must be a finite number/);
  });
});
