/**
 * A self-contained HTML report of a run: inline SVG line charts (no scripts, no external CSS or
 * fonts, so it opens from a CI artifact or an air-gapped cluster) and summary tables.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { readRunHistory, readRunSummary, type StoredRoundRecord } from './history.js';

/** Options of {@link renderReport}. */
export interface ReportOptions {
  /** Output file; default `<runDir>/report.html`. */
  out?: string;
  /** Page title; default from `summary.json`'s `exp_name`, else the run directory's name. */
  title?: string;
}

interface Series {
  name: string;
  color: string;
  points: Array<[number, number]>;
}

interface ChartSpec {
  title: string;
  yLabel: string;
  series: Series[];
  /** Force the y axis to include 0 (counts, durations). */
  fromZero?: boolean;
  /** Round range shared by all charts, so they line up even when a series skips rounds. */
  rounds: [number, number];
  format?: (v: number) => string;
}

const COLORS = ['#2563eb', '#dc2626', '#16a34a', '#9333ea', '#ea580c'];
const W = 560;
const H = 300;
const M = { left: 64, right: 18, top: 40, bottom: 46 };

/**
 * Reads `<runDir>/history.jsonl` (and `summary.json` when present) and writes the report.
 *
 * @returns The path of the written HTML file.
 * @throws Error from {@link readRunHistory} when the history is missing or corrupt.
 */
export function renderReport(runDir: string, options: ReportOptions = {}): string {
  const rounds = readRunHistory(runDir);
  const summary = readRunSummary(runDir);
  const title = options.title ?? (typeof summary?.exp_name === 'string' ? summary.exp_name : `Run ${basename(resolve(runDir))}`);
  const out = options.out ?? join(runDir, 'report.html');
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, buildHtml(title, rounds, summary));
  return out;
}

function series(rounds: StoredRoundRecord[], key: string, name: string, color: string): Series {
  const points: Array<[number, number]> = [];
  for (const r of rounds) {
    const v = r[key];
    if (typeof v === 'number' && Number.isFinite(v)) points.push([r.round, v]);
  }
  return { name, color, points };
}

function buildHtml(title: string, rounds: StoredRoundRecord[], summary: Record<string, unknown> | undefined): string {
  const accuracy = series(rounds, 'accuracy', 'accuracy', COLORS[0]);
  // Accuracy is a ratio by contract; a config that logs percentages still gets a sane axis.
  const ratio = accuracy.points.every(([, v]) => v >= 0 && v <= 1);
  const span: [number, number] = rounds.length > 0 ? [Math.min(...rounds.map((r) => r.round)), Math.max(...rounds.map((r) => r.round))] : [0, 0];
  const charts: ChartSpec[] = [
    { title: 'Global accuracy', yLabel: 'accuracy', series: [accuracy], format: ratio ? pct : num, rounds: span },
    {
      title: 'Loss',
      yLabel: 'loss',
      series: [series(rounds, 'loss', 'global loss', COLORS[1]), series(rounds, 'train_loss', 'train loss', COLORS[3])],
      rounds: span,
    },
    { title: 'Participants per round', yLabel: 'learners', series: [series(rounds, 'participants', 'participants', COLORS[2])], fromZero: true, rounds: span },
    { title: 'Round duration', yLabel: 'seconds', series: [series(rounds, 'duration_s', 'duration', COLORS[4])], fromZero: true, rounds: span },
  ];
  const body =
    rounds.length === 0
      ? '<p class="empty">No rounds recorded yet.</p>'
      : `<section class="charts">${charts.map((c) => `<figure>${lineChart(c)}</figure>`).join('\n')}</section>
<h2>Summary</h2>
${summaryTable(rounds)}
${summary ? `<h2>Run summary</h2>\n${keyValueTable(summary)}` : ''}
<details><summary>All ${rounds.length} rounds</summary>
${roundsTable(rounds)}
</details>`;
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(title)}</title>
<style>
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:24px auto;max-width:1180px;padding:0 16px;color:#1f2937;background:#fff}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px}
.sub{color:#6b7280;font-size:13px;margin:0 0 16px}
.charts{display:grid;grid-template-columns:repeat(auto-fit,minmax(520px,1fr));gap:16px}
figure{margin:0;border:1px solid #e5e7eb;border-radius:6px;padding:6px}
svg{width:100%;height:auto;display:block}
table{border-collapse:collapse;font-size:13px;font-variant-numeric:tabular-nums}
th,td{padding:4px 12px;border-bottom:1px solid #e5e7eb;text-align:right}
th:first-child,td:first-child{text-align:left}
thead th{background:#f9fafb;position:sticky;top:0}
details{margin-top:24px}summary{cursor:pointer;font-weight:600}
.empty{color:#6b7280}
</style>
</head>
<body>
<h1>${esc(title)}</h1>
<p class="sub">OiaFed run report &middot; ${rounds.length} rounds &middot; generated ${esc(new Date().toISOString())}</p>
${body}
</body>
</html>
`;
}

/** One SVG line chart; each series is a `<polyline>` (plus point markers when there are few). */
function lineChart(spec: ChartSpec): string {
  const all = spec.series.flatMap((s) => s.points);
  const fmt = spec.format ?? num;
  const head = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${W} ${H}" role="img" aria-label="${esc(spec.title)}">
<text x="${M.left}" y="20" font-size="14" font-weight="600" fill="#111827">${esc(spec.title)}</text>`;
  if (all.length === 0) {
    return `${head}
<text x="${W / 2}" y="${H / 2}" text-anchor="middle" font-size="13" fill="#9ca3af">not recorded</text>
</svg>`;
  }
  const ys = all.map((p) => p[1]);
  const [xMin, xMax] = spec.rounds;
  let [yMin, yMax] = [Math.min(...ys), Math.max(...ys)];
  if (spec.fromZero) yMin = Math.min(0, yMin);
  const yTicks = niceTicks(yMin, yMax, 5);
  yMin = yTicks[0];
  yMax = yTicks[yTicks.length - 1];
  const xTicks = roundTicks(xMin, xMax);
  const pw = W - M.left - M.right;
  const ph = H - M.top - M.bottom;
  const sx = (x: number): number => M.left + (xMax === xMin ? pw / 2 : ((x - xMin) / (xMax - xMin)) * pw);
  const sy = (y: number): number => M.top + ph - (yMax === yMin ? ph / 2 : ((y - yMin) / (yMax - yMin)) * ph);
  const parts: string[] = [head];
  for (const t of yTicks) {
    const y = sy(t).toFixed(1);
    parts.push(`<line x1="${M.left}" x2="${W - M.right}" y1="${y}" y2="${y}" stroke="#e5e7eb"/>`);
    parts.push(`<text x="${M.left - 6}" y="${y}" dy="4" text-anchor="end" font-size="11" fill="#4b5563">${esc(fmt(t))}</text>`);
  }
  for (const t of xTicks) {
    const x = sx(t).toFixed(1);
    parts.push(`<line x1="${x}" x2="${x}" y1="${M.top + ph}" y2="${M.top + ph + 4}" stroke="#6b7280"/>`);
    parts.push(`<text x="${x}" y="${M.top + ph + 17}" text-anchor="middle" font-size="11" fill="#4b5563">${t}</text>`);
  }
  parts.push(`<line x1="${M.left}" x2="${W - M.right}" y1="${M.top + ph}" y2="${M.top + ph}" stroke="#6b7280"/>`);
  parts.push(`<line x1="${M.left}" x2="${M.left}" y1="${M.top}" y2="${M.top + ph}" stroke="#6b7280"/>`);
  parts.push(`<text x="${M.left + pw / 2}" y="${H - 8}" text-anchor="middle" font-size="12" fill="#374151">round</text>`);
  parts.push(
    `<text transform="translate(14 ${M.top + ph / 2}) rotate(-90)" text-anchor="middle" font-size="12" fill="#374151">${esc(spec.yLabel)}</text>`,
  );
  const drawn = spec.series.filter((s) => s.points.length > 0);
  drawn.forEach((s) => {
    const pts = s.points.map(([x, y]) => `${sx(x).toFixed(1)},${sy(y).toFixed(1)}`).join(' ');
    parts.push(
      `<polyline data-series="${esc(s.name)}" points="${pts}" fill="none" stroke="${s.color}" stroke-width="2" stroke-linejoin="round"/>`,
    );
    if (s.points.length <= 60) {
      for (const [x, y] of s.points) {
        parts.push(
          `<circle cx="${sx(x).toFixed(1)}" cy="${sy(y).toFixed(1)}" r="3" fill="${s.color}"><title>round ${x}: ${esc(s.name)} ${esc(fmt(y))}</title></circle>`,
        );
      }
    }
  });
  // Legend in the top-right corner, right-aligned so long names stay inside the frame.
  let lx = W - M.right;
  for (let i = drawn.length - 1; i >= 0; i--) {
    const s = drawn[i];
    const textWidth = s.name.length * 6.2;
    parts.push(`<text x="${lx}" y="20" text-anchor="end" font-size="12" fill="#374151">${esc(s.name)}</text>`);
    lx -= textWidth + 6;
    parts.push(`<line x1="${lx - 18}" x2="${lx}" y1="16" y2="16" stroke="${s.color}" stroke-width="3"/>`);
    lx -= 32;
  }
  parts.push('</svg>');
  return parts.join('\n');
}

/** Ticks on multiples of 1, 2 or 5 x 10^k covering [min, max]. */
function niceTicks(min: number, max: number, count: number): number[] {
  if (min === max) {
    const pad = min === 0 ? 1 : Math.abs(min) * 0.1;
    min -= pad;
    max += pad;
  }
  const raw = (max - min) / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((f) => f * mag).find((s) => s >= raw) ?? 10 * mag;
  const start = Math.floor(min / step + 1e-9) * step;
  const ticks: number[] = [];
  for (let t = start; t <= max + step * 1e-9 || ticks.length < 2; t += step) ticks.push(Number(t.toPrecision(12)));
  if (ticks[ticks.length - 1] < max) ticks.push(Number((ticks[ticks.length - 1] + step).toPrecision(12)));
  return ticks;
}

/** Integer round ticks: every round when there are few, otherwise a nice integer step. */
function roundTicks(min: number, max: number): number[] {
  if (max - min <= 12) {
    const ticks: number[] = [];
    for (let r = Math.ceil(min); r <= max; r++) ticks.push(r);
    return ticks.length > 0 ? ticks : [min];
  }
  const step = Math.max(1, niceTicks(min, max, 8)[1] - niceTicks(min, max, 8)[0]);
  const ticks: number[] = [];
  for (let r = Math.ceil(min / step) * step; r <= max; r += step) ticks.push(Math.round(r));
  return ticks;
}

function summaryTable(rounds: StoredRoundRecord[]): string {
  const rows: Array<[string, string]> = [];
  const first = rounds[0];
  const last = rounds[rounds.length - 1];
  rows.push(['Rounds recorded', `${rounds.length} (round ${first.round} to ${last.round})`]);
  const best = (key: string, pick: (a: number, b: number) => boolean): [StoredRoundRecord, number] | undefined => {
    let found: [StoredRoundRecord, number] | undefined;
    for (const r of rounds) {
      const v = r[key];
      if (typeof v === 'number' && Number.isFinite(v) && (!found || pick(v, found[1]))) found = [r, v];
    }
    return found;
  };
  const lastOf = (key: string): [StoredRoundRecord, number] | undefined => best(key, () => true);
  const acc = lastOf('accuracy');
  const bestAcc = best('accuracy', (a, b) => a > b);
  if (acc && bestAcc) {
    rows.push(['Final accuracy', `${pct(acc[1])} (round ${acc[0].round})`]);
    rows.push(['Best accuracy', `${pct(bestAcc[1])} (round ${bestAcc[0].round})`]);
  }
  const loss = lastOf('loss');
  const minLoss = best('loss', (a, b) => a < b);
  if (loss && minLoss) {
    rows.push(['Final loss', `${num(loss[1])} (round ${loss[0].round})`]);
    rows.push(['Lowest loss', `${num(minLoss[1])} (round ${minLoss[0].round})`]);
  }
  const trainLoss = lastOf('train_loss');
  if (trainLoss) rows.push(['Final train loss', `${num(trainLoss[1])} (round ${trainLoss[0].round})`]);
  const parts = rounds.map((r) => r.participants);
  rows.push(['Participants per round', `mean ${num(mean(parts))}, min ${Math.min(...parts)}, max ${Math.max(...parts)}`]);
  const durations = rounds.map((r) => r.duration_s);
  const slowest = best('duration_s', (a, b) => a > b);
  rows.push(['Total round time', seconds(durations.reduce((a, b) => a + b, 0))]);
  rows.push([
    'Round duration',
    `mean ${seconds(mean(durations))}${slowest ? `, slowest ${seconds(slowest[1])} (round ${slowest[0].round})` : ''}`,
  ]);
  const total = (key: string): number | undefined => {
    const vs = rounds.map((r) => r[key]).filter((v): v is number => typeof v === 'number' && Number.isFinite(v));
    return vs.length > 0 ? vs.reduce((a, b) => a + b, 0) : undefined;
  };
  const sent = total('bytes_sent');
  const received = total('bytes_received');
  if (sent !== undefined) rows.push(['Bytes sent', bytes(sent)]);
  if (received !== undefined) rows.push(['Bytes received', bytes(received)]);
  rows.push(['First round finished', first.timestamp], ['Last round finished', last.timestamp]);
  return `<table><tbody>${rows.map(([k, v]) => `<tr><th>${esc(k)}</th><td>${esc(v)}</td></tr>`).join('')}</tbody></table>`;
}

function keyValueTable(obj: Record<string, unknown>): string {
  const rows = Object.entries(obj).map(([k, v]) => {
    const text = typeof v === 'number' ? num(v) : typeof v === 'string' ? v : JSON.stringify(v);
    return `<tr><th>${esc(k)}</th><td>${esc(text)}</td></tr>`;
  });
  return `<table><tbody>${rows.join('')}</tbody></table>`;
}

function roundsTable(rounds: StoredRoundRecord[]): string {
  const cols: Array<[string, (r: StoredRoundRecord) => string]> = [
    ['round', (r) => String(r.round)],
    ['participants', (r) => String(r.participants)],
    ['accuracy', (r) => opt(r.accuracy, pct)],
    ['loss', (r) => opt(r.loss, num)],
    ['train loss', (r) => opt(r.train_loss, num)],
    ['duration', (r) => seconds(r.duration_s)],
    ['sent', (r) => opt(r.bytes_sent, bytes)],
    ['received', (r) => opt(r.bytes_received, bytes)],
    ['finished', (r) => r.timestamp],
  ];
  const head = `<thead><tr>${cols.map(([h]) => `<th>${h}</th>`).join('')}</tr></thead>`;
  const body = rounds.map((r) => `<tr>${cols.map(([, f]) => `<td>${esc(f(r))}</td>`).join('')}</tr>`).join('\n');
  return `<table>${head}<tbody>\n${body}\n</tbody></table>`;
}

function opt(v: unknown, f: (n: number) => string): string {
  return typeof v === 'number' && Number.isFinite(v) ? f(v) : '';
}

function mean(vs: number[]): number {
  return vs.reduce((a, b) => a + b, 0) / vs.length;
}

function num(v: number): string {
  if (Number.isInteger(v)) return String(v);
  const a = Math.abs(v);
  return a !== 0 && (a < 1e-3 || a >= 1e6) ? v.toExponential(2) : String(Number(v.toPrecision(4)));
}

function pct(v: number): string {
  return `${Number((v * 100).toFixed(2))}%`;
}

function seconds(v: number): string {
  if (v < 120) return `${Number(v.toFixed(2))} s`;
  if (v < 7200) return `${Number((v / 60).toFixed(1))} min`;
  return `${Number((v / 3600).toFixed(2))} h`;
}

function bytes(v: number): string {
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let i = 0;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return `${i === 0 ? v : Number(v.toFixed(2))} ${units[i]}`;
}

function esc(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
