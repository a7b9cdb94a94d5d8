import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { deployDir } from './helpers.js';
import { exportedMetrics, queryable, type ExportedMetrics } from './metrics.js';

const dashboard = JSON.parse(readFileSync(join(deployDir, 'grafana/oiafed-dashboard.json'), 'utf8'));
const panels: any[] = dashboard.panels.filter((p: any) => p.type !== 'row');
const exprs: { panel: string; expr: string }[] = panels.flatMap((p) => p.targets.map((t: any) => ({ panel: p.title, expr: t.expr })));
/** Series names a PromQL expression selects (identifiers starting with oiafed_). */
const seriesIn = (expr: string) => [...expr.matchAll(/\b(oiafed_[a-z0-9_]+)\b/g)].map((m) => m[1]!);
/** Label names used in matchers (`{a="x"}`) and groupings (`by (a, b)`). */
const labelsIn = (expr: string) => [
  ...[...expr.matchAll(/\{([^}]*)\}/g)].flatMap((m) => [...m[1]!.matchAll(/([a-zA-Z_]\w*)\s*(=~|!~|!=|=)/g)].map((x) => x[1]!)),
  ...[...expr.matchAll(/\bby \(([^)]*)\)/g)].flatMap((m) => m[1]!.split(',').map((s) => s.trim())),
];
/** Labels Prometheus itself attaches (target labels) or the scrape configs under deploy/ add. */
const SCRAPE_LABELS = ['job', 'instance', 'le', 'component'];

let exported: ExportedMetrics;
beforeAll(async () => {
  exported = await exportedMetrics();
});

describe('Grafana dashboard', () => {
  it('has an uid, a title and uniquely numbered panels', () => {
    expect(dashboard.uid).toBe('oiafed-federation');
    expect(dashboard.title).toBeTruthy();
    const ids = dashboard.panels.map((p: any) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    expect(exprs.length).toBeGreaterThanOrEqual(15);
  });

  it('queries only series @oiafed/tracker exports', () => {
    const known = queryable(exported.types);
    for (const { panel, expr } of exprs) {
      const used = seriesIn(expr);
      expect(used.length, `${panel}: ${expr}`).toBeGreaterThan(0);
      for (const s of used) expect(known.has(s), `${panel}: series ${s} is not exported`).toBe(true);
    }
  });

  it('uses every oiafed_ metric the tracker exports', () => {
    const used = new Set(exprs.flatMap(({ expr }) => seriesIn(expr)).map((s) => s.replace(/_(bucket|sum|count)$/, '')));
    const oiafed = [...exported.types.keys()].filter((n) => n.startsWith('oiafed_'));
    expect(oiafed.length).toBeGreaterThanOrEqual(15);
    for (const m of oiafed) expect(used.has(m), m).toBe(true);
  });

  it('filters and groups only by labels the series carry', () => {
    const known = new Set([...exported.labels, ...SCRAPE_LABELS]);
    for (const { panel, expr } of exprs) for (const l of labelsIn(expr)) expect(known.has(l), `${panel}: label ${l}`).toBe(true);
  });

  it('reads federation-wide gauges from the trainer only (learners export them as 0)', () => {
    const trainerOnly = ['oiafed_global_loss', 'oiafed_global_accuracy', 'oiafed_learners_alive', 'oiafed_current_round'];
    for (const { expr } of exprs) {
      for (const m of trainerOnly) if (expr.includes(`${m}{`)) expect(expr, expr).toContain(`${m}{job=~"$job", role="trainer"}`);
    }
  });

  it('shows round duration p50 and p95, rejections by reason and samples/s per learner', () => {
    const all = exprs.map((e) => e.expr).join('\n');
    expect(all).toMatch(/histogram_quantile\(0\.5, sum by \(le\) \(rate\(oiafed_round_duration_seconds_bucket/);
    expect(all).toMatch(/histogram_quantile\(0\.95, sum by \(le\) \(rate\(oiafed_round_duration_seconds_bucket/);
    expect(all).toMatch(/sum by \(reason\) \(rate\(oiafed_updates_rejected_total/);
    expect(all).toMatch(/by \(learner\) \(oiafed_local_samples_per_second/);
  });

  it('reads counters only through rate() or increase(), or as a plain max', () => {
    const counters = [...exported.types].filter(([, t]) => t === 'counter').map(([n]) => n);
    expect(counters.length).toBeGreaterThan(0);
    for (const { expr } of exprs) {
      for (const c of counters) {
        if (!expr.includes(c)) continue;
        const wrapped = new RegExp(`(rate|increase)\\(${c}\\{[^}]*\\}\\[[^\\]]+\\]\\)`).test(expr);
        const total = new RegExp(`^max\\(${c}\\{[^}]*\\}\\)$`).test(expr);
        expect(wrapped || total, expr).toBe(true);
      }
    }
  });

  it('has balanced brackets and references only defined template variables', () => {
    const vars = new Set(dashboard.templating.list.map((v: any) => v.name));
    for (const { panel, expr } of exprs) {
      for (const [open, close] of ['()', '[]', '{}']) {
        expect(expr.split(open!).length, `${panel}: ${open}${close} in ${expr}`).toBe(expr.split(close!).length);
      }
      for (const m of expr.matchAll(/\$(\w+)/g)) if (!m[1]!.startsWith('__')) expect(vars.has(m[1]), `${panel}: $${m[1]}`).toBe(true);
    }
    for (const p of panels) expect(p.datasource.uid).toBe('${datasource}');
  });
});
