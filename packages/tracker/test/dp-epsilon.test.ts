import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createNodeMetrics, renderReport, RunHistory } from '@oiafed/tracker';

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

describe('differential privacy spent, where an operator sees it', () => {
  it('/metrics has the oiafed_dp_epsilon gauge', async () => {
    const m = createNodeMetrics({ nodeId: 'trainer', role: 'trainer' });
    m.dpEpsilon.set(2.5);
    const text = await m.render();
    expect(text).toContain('# TYPE oiafed_dp_epsilon gauge');
    expect(text).toContain('oiafed_dp_epsilon{node="trainer",role="trainer"} 2.5');
  });

  it('the report has an epsilon column and the last epsilon in its summary', () => {
    const runDir = mkdtempSync(join(tmpdir(), 'oiafed-tracker-dp-'));
    dirs.push(runDir);
    const history = new RunHistory(runDir);
    for (let r = 1; r <= 3; r++) {
      history.append({ round: r, timestamp: new Date(Date.UTC(2026, 10, 29, 3, r)).toISOString(), participants: 3, duration_s: 1, dp_epsilon: r * 0.5 });
    }
    const html = readFileSync(renderReport(runDir), 'utf8');
    expect(html).toContain('<th>epsilon</th>');
    expect(html).toMatch(/<th>Privacy spent \(epsilon\)<\/th><td>1\.5\d* \(round 3\)<\/td>/);
  });
});
