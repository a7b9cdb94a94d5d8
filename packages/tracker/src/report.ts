/**
 * A self-contained HTML report of a run: inline SVG line charts (no scripts, no external CSS or
 * fonts, so it opens from a CI artifact or an air-gapped cluster) and summary tables.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { bytes, esc, lineChart, num, pct, runCharts, seconds } from './charts.js';
import { readRunHistory, readRunSummary, type StoredRoundRecord } from './history.js';

/** Options of {@link renderReport}. */
export interface ReportOptions {
  /** Output file; default `<runDir>/report.html`. */
  out?: string;
  /** Page title; default from `summary.json`'s `exp_name`, else the run directory's name. */
  title?: string;
}

/**
 * Reads `<runDir>/history.jsonl` (and `summary.json` when present) and writes the report.
 *
 * @returns The path of the written HTML file.
 * @throws Error from {@link readRunHistory} when the history is missing or corrupt.
 */
export function renderReport(runDir: string, options: ReportOptions = {}): string {
  const out = options.out ?? join(runDir, 'report.html');
  const html = buildReportHtml(runDir, options);
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, html);
  return out;
}

/**
 * The report of `runDir` as an HTML string (what {@link renderReport} writes; the dashboard's
 * `/report` serves it).
 *
 * @throws Error from {@link readRunHistory} when the history is missing or corrupt.
 */
export function buildReportHtml(runDir: string, options: Pick<ReportOptions, 'title'> = {}): string {
  const rounds = readRunHistory(runDir);
  const summary = readRunSummary(runDir);
  const title = options.title ?? (typeof summary?.exp_name === 'string' ? summary.exp_name : `Run ${basename(resolve(runDir))}`);
  return buildHtml(title, rounds, summary);
}

function buildHtml(title: string, rounds: StoredRoundRecord[], summary: Record<string, unknown> | undefined): string {
  const charts = runCharts(rounds);
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
  const personal = lastOf('personalized_accuracy');
  if (personal) {
    const r = personal[0];
    const spread = [r.personalized_accuracy_std, r.personalized_accuracy_min, r.personalized_accuracy_max].map((v) => opt(v, pct));
    rows.push([
      'Final personalized accuracy',
      `${pct(personal[1])} (round ${r.round}; ${opt(r.personalized_learners, String)} learners on their own test splits, weighted sd ${spread[0]}, min ${spread[1]}, max ${spread[2]})`,
    ]);
    const bestPersonal = best('personalized_accuracy', (a, b) => a > b)!;
    rows.push(['Best personalized accuracy', `${pct(bestPersonal[1])} (round ${bestPersonal[0].round})`]);
  }
  const loss = lastOf('loss');
  const minLoss = best('loss', (a, b) => a < b);
  if (loss && minLoss) {
    rows.push(['Final loss', `${num(loss[1])} (round ${loss[0].round})`]);
    rows.push(['Lowest loss', `${num(minLoss[1])} (round ${minLoss[0].round})`]);
  }
  const trainLoss = lastOf('train_loss');
  if (trainLoss) rows.push(['Final train loss', `${num(trainLoss[1])} (round ${trainLoss[0].round})`]);
  const epsilon = lastOf('dp_epsilon');
  if (epsilon) rows.push(['Privacy spent (epsilon)', `${num(epsilon[1])} (round ${epsilon[0].round})`]);
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
    ['personalized', (r) => opt(r.personalized_accuracy, pct)],
    ['loss', (r) => opt(r.loss, num)],
    ['train loss', (r) => opt(r.train_loss, num)],
    ['epsilon', (r) => opt(r.dp_epsilon, num)],
    ['duration', (r) => seconds(r.duration_s)],
    ['sent', (r) => opt(r.bytes_sent, bytes)],
    ['received', (r) => opt(r.bytes_received, bytes)],
    ['finished', (r) => r.timestamp],
  ];
  // The personalized column only for runs whose learners held their own test splits.
  if (!rounds.some((r) => typeof r.personalized_accuracy === 'number')) cols.splice(cols.findIndex(([h]) => h === 'personalized'), 1);
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
