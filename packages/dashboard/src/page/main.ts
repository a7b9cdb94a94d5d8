/**
 * The dashboard page script (bundled by esbuild into dist/dashboard.js). It keeps a copy of the
 * dashboard state, fed by the `/events` stream (a snapshot on every connect, so a reload or a
 * reconnect starts from the truth), and redraws the parts an event touches. Text from the run
 * (learner ids, reasons) only ever reaches the DOM through textContent or the escaping chart module.
 */
import { bytes, lineChart, num, pct, runCharts, seconds } from '@oiafed/tracker/charts';
import { applyEvent, emptyState, type DashboardEvent, type DashboardState, type LearnerRow } from '../model.js';

/** What tests and the latency measurement read from the page. */
interface PageProbe {
  state: DashboardState;
  /** Events received, by type. */
  events: Record<string, number>;
  /** Per `round` event: ms from the record's timestamp (round end on the trainer) to its arrival here. */
  latencies: number[];
  /** Learner events received, by the state they carried (states can pass faster than a frame). */
  learnerStates: Record<string, number>;
  connected: boolean;
}

const state = emptyState();
const probe: PageProbe = { state, events: {}, latencies: [], learnerStates: {}, connected: false };
(window as unknown as { oiafedDashboard: PageProbe }).oiafedDashboard = probe;
/** Server clock minus page clock (ms), from the snapshot's `now`, so elapsed and "ago" use the trainer's time. */
let clockSkew = 0;
let chartsDirty = true;
let learnersDirty = true;

const el = (id: string): HTMLElement => document.getElementById(id) as HTMLElement;
const query = (document.currentScript as HTMLScriptElement | null)?.dataset.query ?? '';

function connect(): void {
  const source = new EventSource(`events${query}`);
  const on = (type: DashboardEvent['type']): void => {
    source.addEventListener(type, (msg) => {
      const data = JSON.parse((msg as MessageEvent<string>).data) as DashboardEvent['data'];
      receive({ type, data } as DashboardEvent);
    });
  };
  (['snapshot', 'round', 'learner', 'progress', 'run'] as const).forEach(on);
  source.onopen = () => setConnected(true);
  // EventSource reconnects by itself (the server sets retry: 2000); the next snapshot resyncs.
  // Once the run has ended the trainer closes the dashboard: stop retrying and say so.
  source.onerror = () => {
    if (state.run.status !== 'finished' && state.run.status !== 'failed') return setConnected(false);
    source.close();
    probe.connected = false;
    el('conn').textContent = `run ${state.run.status}; the trainer has stopped serving this page`;
    el('conn').className = '';
  };
}

function receive(event: DashboardEvent): void {
  probe.events[event.type] = (probe.events[event.type] ?? 0) + 1;
  if (event.type === 'round') probe.latencies.push(Date.now() - Date.parse(event.data.timestamp));
  if (event.type === 'learner') probe.learnerStates[event.data.state] = (probe.learnerStates[event.data.state] ?? 0) + 1;
  if (event.type === 'snapshot') clockSkew = Date.parse(event.data.now) - Date.now();
  applyEvent(state, event);
  if (event.type === 'snapshot' || event.type === 'round') chartsDirty = true;
  if (event.type === 'snapshot' || event.type === 'learner') learnersDirty = true;
  if (event.type === 'snapshot' || event.type === 'progress') renderProgress();
  renderHeader();
  // Many learner events can arrive between two frames (heartbeats of a large federation): draw once per frame.
  if (chartsDirty || learnersDirty) requestAnimationFrame(renderDirty);
}

function setConnected(live: boolean): void {
  probe.connected = live;
  const conn = el('conn');
  conn.textContent = live ? 'live' : 'reconnecting…';
  conn.className = live ? 'live' : 'down';
}

function renderHeader(): void {
  const run = state.run;
  el('exp').textContent = run.exp_name || 'OiaFed run';
  document.title = `${run.exp_name || 'OiaFed run'} · dashboard`;
  const stopped = run.stop_reason && `stopped: ${run.stop_reason}`;
  const parts = [run.model && `model ${run.model}`, run.aggregator && `aggregator ${run.aggregator}`, run.status, stopped, run.error];
  el('sub').textContent = parts.filter(Boolean).join(' · ');
  const done = state.rounds.length > 0 ? state.rounds[state.rounds.length - 1].round : 0;
  el('rounds').textContent = run.max_rounds > 0 ? `${done} / ${run.max_rounds}` : String(done);
  const lastAcc = [...state.rounds].reverse().find((r) => typeof r.accuracy === 'number');
  el('acc').textContent = lastAcc ? pct(lastAcc.accuracy as number) : '–';
  const live = [...state.learners.values()].filter((l) => l.state !== 'lost').length;
  el('nlearners').textContent = live === state.learners.size ? String(live) : `${live} / ${state.learners.size}`;
  renderClock();
  renderLinks();
}

/** Elapsed since start; ETA from the mean duration of the finished rounds. */
function renderClock(): void {
  const run = state.run;
  const now = Date.now() + clockSkew;
  const start = Date.parse(run.started_at);
  const ended = run.status === 'finished' || run.status === 'failed';
  const lastTime = state.rounds.length > 0 ? Date.parse(state.rounds[state.rounds.length - 1].timestamp) : now;
  const elapsed = ((ended ? lastTime : now) - start) / 1000;
  el('elapsed').textContent = Number.isFinite(elapsed) && elapsed >= 0 ? seconds(Math.round(elapsed)) : '–';
  const done = state.rounds.length > 0 ? state.rounds[state.rounds.length - 1].round : 0;
  const remaining = run.max_rounds - done;
  if (ended || remaining <= 0) {
    el('eta').textContent = ended ? run.status : '–';
  } else if (state.rounds.length > 0) {
    const mean = state.rounds.reduce((a, r) => a + r.duration_s, 0) / state.rounds.length;
    el('eta').textContent = seconds(Math.round(mean * remaining));
  } else {
    el('eta').textContent = '–';
  }
}

function renderLinks(): void {
  const metrics = el('link-metrics') as HTMLAnchorElement;
  if (state.links.metrics_port) {
    metrics.href = `${location.protocol}//${location.hostname}:${state.links.metrics_port}/metrics`;
    metrics.hidden = false;
  }
  const report = el('link-report') as HTMLAnchorElement;
  if (state.links.report && state.rounds.length > 0) {
    report.href = `${state.links.report}${query}`;
    report.hidden = false;
  }
}

function renderProgress(): void {
  const p = state.progress;
  const fill = el('progress-fill');
  if (!p) {
    el('progress-text').textContent = 'No round in progress';
    fill.style.width = '0';
    return;
  }
  el('progress-text').textContent = `Round ${p.round}: ${p.done} / ${p.selected} learners done`;
  fill.style.width = `${p.selected > 0 ? Math.round((100 * p.done) / p.selected) : 0}%`;
}

function renderDirty(): void {
  if (learnersDirty) renderLearners();
  if (chartsDirty) renderCharts();
}

function renderCharts(): void {
  chartsDirty = false;
  const [accuracy, loss] = runCharts(state.rounds, ['accuracy', 'loss']);
  // lineChart escapes every text it writes, so its SVG string is safe to insert.
  el('chart-accuracy').innerHTML = lineChart(accuracy);
  el('chart-loss').innerHTML = lineChart(loss);
}

const COLUMNS: Array<[string, (l: LearnerRow) => string]> = [
  ['id', (l) => l.id],
  ['state', (l) => l.state],
  ['backend', (l) => l.backend ?? ''],
  ['samples', (l) => (l.samples === undefined ? '' : String(l.samples))],
  ['last heartbeat', (l) => ago(l.last_heartbeat)],
  ['last round', (l) => (l.last_round_s === undefined ? '' : seconds(l.last_round_s))],
  ['bytes up', (l) => (l.bytes_up === undefined ? '' : bytes(l.bytes_up))],
  ['bytes down', (l) => (l.bytes_down === undefined ? '' : bytes(l.bytes_down))],
  ['rejected', (l) => (l.rejected === undefined ? '0' : num(l.rejected))],
  ['last rejection', (l) => l.last_rejection ?? ''],
];

function renderLearners(): void {
  learnersDirty = false;
  const rows = [...state.learners.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const body = (el('learners') as HTMLTableElement).tBodies[0];
  body.replaceChildren(...rows.map(learnerRow));
  el('no-learners').hidden = rows.length > 0;
}

function learnerRow(l: LearnerRow): HTMLTableRowElement {
  const tr = document.createElement('tr');
  tr.dataset.state = l.state;
  for (const [label, value] of COLUMNS) {
    const td = document.createElement('td');
    td.dataset.label = label;
    td.dataset.col = label.replace(/ /g, '-');
    if (label === 'state') {
      const badge = document.createElement('span');
      badge.className = `state state-${l.state}`;
      badge.textContent = l.state;
      td.append(badge);
    } else {
      td.textContent = value(l);
    }
    if (label === 'last rejection') td.className = 'reason';
    tr.append(td);
  }
  return tr;
}

function ago(iso: string | undefined): string {
  if (!iso) return '';
  const s = Math.max(0, Math.round((Date.now() + clockSkew - Date.parse(iso)) / 1000));
  return Number.isFinite(s) ? `${s} s ago` : '';
}

/** The clock and the "ago" column tick once a second without any event. */
function tick(): void {
  renderClock();
  for (const td of document.querySelectorAll<HTMLElement>('td[data-col="last-heartbeat"]')) {
    const id = td.parentElement?.firstElementChild?.textContent ?? '';
    td.textContent = ago(state.learners.get(id)?.last_heartbeat);
  }
}

renderHeader();
renderCharts();
connect();
setInterval(tick, 1000);
