/**
 * SVG line charts of a run's rounds, as strings: pure and browser-safe (no node imports), so
 * `oiafed report` and the live dashboard draw the same charts from this one module. Every text
 * that reaches the SVG is escaped.
 */
import type { StoredRoundRecord } from './history.js';

/** One line of a chart: `[round, value]` points. */
export interface Series {
  name: string;
  color: string;
  points: Array<[number, number]>;
}

/** A chart: its title, y label, series and shared round range. */
export interface ChartSpec {
  title: string;
  yLabel: string;
  series: Series[];
  /** Force the y axis to include 0 (counts, durations). */
  fromZero?: boolean;
  /** Round range shared by all charts, so they line up even when a series skips rounds. */
  rounds: [number, number];
  format?: (v: number) => string;
}

/** Series colours, in order. */
export const COLORS = ['#2563eb', '#dc2626', '#16a34a', '#9333ea', '#ea580c'];
const W = 560;
const H = 300;
const M = { left: 64, right: 18, top: 40, bottom: 46 };

/** The numeric `key` of every round that has it, as a series. */
export function roundSeries(rounds: readonly StoredRoundRecord[], key: string, name: string, color: string): Series {
  const points: Array<[number, number]> = [];
  for (const r of rounds) {
    const v = r[key];
    if (typeof v === 'number' && Number.isFinite(v)) points.push([r.round, v]);
  }
  return { name, color, points };
}

/**
 * The global model's accuracy, and when learners evaluated personalized models on their own
 * splits (`personalized_accuracy`), their weighted mean with the lowest and highest learner.
 */
function accuracySeries(rounds: readonly StoredRoundRecord[]): Series[] {
  const personalized = roundSeries(rounds, 'personalized_accuracy', 'personalized (mean)', COLORS[2]);
  if (personalized.points.length === 0) return [roundSeries(rounds, 'accuracy', 'accuracy', COLORS[0])];
  return [
    roundSeries(rounds, 'accuracy', 'global', COLORS[0]),
    personalized,
    roundSeries(rounds, 'personalized_accuracy_min', 'personalized min', COLORS[4]),
    roundSeries(rounds, 'personalized_accuracy_max', 'personalized max', COLORS[3]),
  ];
}

/** Which of the run charts to build: accuracy and loss always, participants and duration on request. */
export type RunChart = 'accuracy' | 'loss' | 'participants' | 'duration';

/** The run's standard charts (global accuracy, loss, participants, round duration) over the same round range. */
export function runCharts(
  rounds: readonly StoredRoundRecord[],
  which: readonly RunChart[] = ['accuracy', 'loss', 'participants', 'duration'],
): ChartSpec[] {
  const accuracy = accuracySeries(rounds);
  // Accuracy is a ratio by contract; a config that logs percentages still gets a sane axis.
  const ratio = accuracy.every((s) => s.points.every(([, v]) => v >= 0 && v <= 1));
  let span: [number, number] = [0, 0];
  if (rounds.length > 0) {
    span = [rounds[0].round, rounds[0].round];
    for (const r of rounds) span = [Math.min(span[0], r.round), Math.max(span[1], r.round)];
  }
  const all: Record<RunChart, ChartSpec> = {
    accuracy: {
      title: accuracy.length > 1 ? 'Accuracy: global and personalized' : 'Global accuracy',
      yLabel: 'accuracy',
      series: accuracy,
      format: ratio ? pct : num,
      rounds: span,
    },
    loss: {
      title: 'Loss',
      yLabel: 'loss',
      series: [roundSeries(rounds, 'loss', 'global loss', COLORS[1]), roundSeries(rounds, 'train_loss', 'train loss', COLORS[3])],
      rounds: span,
    },
    participants: {
      title: 'Participants per round',
      yLabel: 'learners',
      series: [roundSeries(rounds, 'participants', 'participants', COLORS[2])],
      fromZero: true,
      rounds: span,
    },
    duration: { title: 'Round duration', yLabel: 'seconds', series: [roundSeries(rounds, 'duration_s', 'duration', COLORS[4])], fromZero: true, rounds: span },
  };
  return which.map((k) => all[k]);
}

/** One SVG line chart; each series is a `<polyline>` (plus point markers when there are few). */
export function lineChart(spec: ChartSpec): string {
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

/** A number in at most 4 significant digits (exponent when tiny or huge). */
export function num(v: number): string {
  if (Number.isInteger(v)) return String(v);
  const a = Math.abs(v);
  return a !== 0 && (a < 1e-3 || a >= 1e6) ? v.toExponential(2) : String(Number(v.toPrecision(4)));
}

/** A 0..1 ratio as a percentage. */
export function pct(v: number): string {
  return `${Number((v * 100).toFixed(2))}%`;
}

/** Seconds as s, min or h. */
export function seconds(v: number): string {
  if (v < 120) return `${Number(v.toFixed(2))} s`;
  if (v < 7200) return `${Number((v / 60).toFixed(1))} min`;
  return `${Number((v / 3600).toFixed(2))} h`;
}

/** Bytes in decimal units. */
export function bytes(v: number): string {
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let i = 0;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return `${i === 0 ? v : Number(v.toFixed(2))} ${units[i]}`;
}

/** Escapes text for HTML and SVG (text and attribute values). */
export function esc(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
