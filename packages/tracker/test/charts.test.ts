import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { buildReportHtml, RunHistory } from '@oiafed/tracker';
import { lineChart, runCharts } from '@oiafed/tracker/charts';

const rounds = [1, 2, 3].map((round) => ({
  round,
  timestamp: new Date(Date.UTC(2026, 10, 29, 3, round)).toISOString(),
  participants: 2,
  duration_s: round,
  accuracy: 0.5 + round / 10,
  loss: 1 / round,
}));

describe('@oiafed/tracker/charts', () => {
  it('is browser-safe: no node imports (the dashboard page bundles it)', () => {
    const source = readFileSync(fileURLToPath(new URL('../src/charts.ts', import.meta.url)), 'utf8');
    const imports = [...source.matchAll(/^import\s+(type\s+)?.*from\s+'([^']+)'/gm)];
    expect(imports.filter(([, typeOnly]) => !typeOnly).map(([, , from]) => from)).toEqual([]);
  });

  it('draws the run charts as SVG, escaping series names and titles', () => {
    const [accuracy, loss] = runCharts(rounds, ['accuracy', 'loss']);
    const svg = lineChart(accuracy!);
    expect(svg).toMatch(/^<svg [^>]*aria-label="Global accuracy"/);
    expect(svg.match(/<polyline /g)).toHaveLength(1);
    expect(svg).toContain('80%');
    expect(lineChart(loss!)).toContain('data-series="global loss"');
    const hostile = lineChart({ ...accuracy!, title: '<script>x</script>', series: [{ ...accuracy!.series[0]!, name: '"><img>' }] });
    expect(hostile).not.toMatch(/<script|<img/);
    expect(hostile).toContain('&#60;script&#62;');
  });

  it("is what `oiafed report` draws: the report's accuracy chart is lineChart's", () => {
    const dir = mkdtempSync(join(tmpdir(), 'oiafed-tracker-charts-'));
    const history = new RunHistory(dir);
    for (const r of rounds) history.append(r);
    const html = buildReportHtml(dir);
    for (const chart of runCharts(history.read())) expect(html).toContain(lineChart(chart));
    rmSync(dir, { recursive: true, force: true });
  });
});
