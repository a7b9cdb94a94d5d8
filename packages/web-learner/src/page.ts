// The /join page's script (bundled by build-browser.mjs into dist/browser/join.js): pick data,
// join the trainer that served the page, show local progress and the global accuracy curve.
// Everything shown is set through textContent / attributes: node ids and reasons come from the network.
import { decodePartition, parseCsv, readImageFolder, type WebDataset } from './data.js';
import { joinFederation } from './join.js';
import type { WebBackend } from './backend.js';
import type { WebLearnerEvent } from './web-learner.js';

/** What the trainer serves at /join/config.json (packages/core/src/web-learners.ts). */
interface JoinConfig {
  ws_path: string;
  auth_required: boolean;
  partitions: number;
  model: { type: string; args: Record<string, unknown> };
  learner: { batch_size: number; lr: number; optimizer: 'sgd' | 'adam'; momentum: number; weight_decay: number };
  events_path?: string;
}

/** State the page exposes as window.oiafedJoin (read by the browser test and the curious). */
interface PageState {
  status: 'idle' | 'loading' | 'joined' | 'finished' | 'failed';
  backend?: string;
  nodeId?: string;
  detail?: string;
  trained: Array<{ round: number; loss: number; accuracy: number; seconds: number; samplesPerSecond: number }>;
  global: Array<{ round: number; accuracy: number }>;
}

const state: PageState = { status: 'idle', trained: [], global: [] };
(globalThis as { oiafedJoin?: PageState }).oiafedJoin = state;

/** The dashboard's ?token= (when it has an auth_token): every request of the page passes it on. */
const dashboardToken = new URLSearchParams(location.search).get('token');

function pageUrl(path: string): string {
  const url = new URL(path, document.baseURI);
  if (dashboardToken) url.searchParams.set('token', dashboardToken);
  return url.href;
}

const WASM_FILES = ['tfjs-backend-wasm.wasm', 'tfjs-backend-wasm-simd.wasm', 'tfjs-backend-wasm-threaded-simd.wasm'];

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;

function setStatus(status: PageState['status'], detail: string): void {
  state.status = status;
  state.detail = detail;
  $('status').textContent = `${status}: ${detail}`;
}

function logLine(text: string): void {
  const li = document.createElement('li');
  li.textContent = text;
  const log = $('log');
  log.prepend(li);
  while (log.childElementCount > 200) log.lastElementChild?.remove();
}

/** Redraws one curve (accuracy 0..1 by round) as an SVG polyline. */
function drawCurve(svgId: string, points: Array<{ round: number; accuracy: number }>): void {
  const svg = $(svgId) as unknown as SVGSVGElement;
  const line = svg.querySelector('polyline')!;
  const maxRound = Math.max(1, ...points.map((p) => p.round));
  line.setAttribute('points', points.map((p) => `${((p.round / maxRound) * 300).toFixed(1)},${(100 - p.accuracy * 100).toFixed(1)}`).join(' '));
}

function onLearnerEvent(e: WebLearnerEvent): void {
  if (e.type === 'model') logLine(`built model ${e.modelType} (${e.numParams} parameters)`);
  else if (e.type === 'epoch') $('progress').textContent = `round ${e.round}: epoch ${e.epoch}/${e.epochs}, loss ${e.loss.toFixed(4)}, accuracy ${(e.accuracy * 100).toFixed(1)}%`;
  else if (e.type === 'trained') {
    state.trained.push({ round: e.round, loss: e.loss, accuracy: e.accuracy, seconds: e.seconds, samplesPerSecond: e.samplesPerSecond });
    logLine(`round ${e.round}: trained in ${e.seconds.toFixed(2)} s (${e.samplesPerSecond.toFixed(0)} samples/s), local accuracy ${(e.accuracy * 100).toFixed(1)}%`);
    drawCurve('local-curve', state.trained);
  } else if (e.type === 'evaluated') logLine(`round ${e.round}: evaluated, accuracy ${(e.accuracy * 100).toFixed(1)}%`);
  else logLine(`trainer: ${e.reason}`);
}

/** Follows the dashboard's Server-Sent Events (one `round` event per finished round). */
function followGlobalCurve(path: string, token: string | undefined): void {
  if (typeof EventSource === 'undefined') return;
  const url = token ? `${path}?token=${encodeURIComponent(token)}` : path;
  const events = new EventSource(url);
  events.addEventListener('round', (ev) => {
    const record = JSON.parse((ev as MessageEvent<string>).data) as { round?: number; accuracy?: number };
    if (typeof record.round !== 'number' || typeof record.accuracy !== 'number') return;
    state.global = [...state.global.filter((p) => p.round !== record.round), { round: record.round, accuracy: record.accuracy }].sort((a, b) => a.round - b.round);
    drawCurve('global-curve', state.global);
  });
  events.onerror = () => undefined;
}

async function loadData(cfg: JoinConfig, source: string): Promise<WebDataset> {
  if (source === 'partition') {
    const index = Number($<HTMLInputElement>('partition').value);
    const res = await fetch(pageUrl(`partition/${index}`));
    if (!res.ok) throw new Error(`partition ${index}: HTTP ${res.status} ${await res.text()}`);
    return decodePartition(await res.arrayBuffer());
  }
  if (source === 'csv') {
    const file = $<HTMLInputElement>('csv').files?.[0];
    if (!file) throw new Error('pick a CSV file');
    return parseCsv(await file.text(), cfg.model.args.num_classes as number | undefined);
  }
  const files = $<HTMLInputElement>('images').files;
  if (!files || files.length === 0) throw new Error('pick a folder of images (one sub-folder per class)');
  const shape = (cfg.model.args.input_shape as number[] | undefined) ?? [28, 28, 1];
  return readImageFolder(files, { height: shape[0]!, width: shape[1]!, channels: shape[2] === 3 ? 3 : 1 });
}

async function join(cfg: JoinConfig): Promise<void> {
  const source = ($<HTMLSelectElement>('source').value || 'partition') as string;
  const nodeId = $<HTMLInputElement>('node-id').value.trim();
  const token = $<HTMLInputElement>('token').value || undefined;
  const choice = $<HTMLSelectElement>('backend').value;
  setStatus('loading', `reading data (${source})`);
  const data = await loadData(cfg, source);
  logLine(`${data.length} samples of shape [${data.sampleShape.join(', ')}], ${data.numClasses} classes`);
  const url = new URL(cfg.ws_path, document.baseURI);
  url.protocol = location.protocol === 'https:' ? 'wss:' : 'ws:';
  const l = cfg.learner;
  const joined = await joinFederation({
    url: url.href,
    nodeId,
    token,
    data,
    settings: { batchSize: l.batch_size, lr: l.lr, optimizer: l.optimizer, momentum: l.momentum, weightDecay: l.weight_decay },
    backends: choice === 'auto' ? undefined : [choice as WebBackend],
    wasmPath: Object.fromEntries(WASM_FILES.map((f) => [f, pageUrl(`assets/${f}`)])),
    onEvent: onLearnerEvent,
  });
  state.backend = joined.backend;
  for (const why of joined.skipped) logLine(`backend ${why}`);
  state.nodeId = nodeId;
  $('backend-used').textContent = joined.backend;
  setStatus('joined', `as ${nodeId} on ${joined.backend}`);
  followGlobalCurve(cfg.events_path ?? '/events', dashboardToken ?? undefined);
  const end = await joined.done;
  joined.learner.dispose();
  setStatus(end.finished ? 'finished' : 'failed', end.reason);
  // A lost connection (trainer restarted, network): the user may join again.
  if (!end.finished) $<HTMLButtonElement>('join').disabled = false;
}

async function main(): Promise<void> {
  const res = await fetch(pageUrl('config.json'));
  if (!res.ok) throw new Error(`HTTP ${res.status}`);
  const cfg = (await res.json()) as JoinConfig;
  const params = new URLSearchParams(location.search);
  $<HTMLInputElement>('node-id').value = params.get('node_id') ?? `browser_${Math.random().toString(36).slice(2, 8)}`;
  // The learner's transport token (transport.grpc.auth_token), not the dashboard's ?token=.
  $<HTMLInputElement>('token').value = params.get('learner_token') ?? '';
  $('token-row').hidden = !cfg.auth_required;
  $<HTMLInputElement>('partition').max = String(Math.max(0, cfg.partitions - 1));
  $<HTMLInputElement>('partition').value = params.get('partition') ?? '0';
  $<HTMLSelectElement>('source').value = cfg.partitions > 0 ? 'partition' : 'csv';
  if (cfg.partitions === 0) ($<HTMLOptionElement>('source-partition')).disabled = true;
  $<HTMLSelectElement>('backend').value = params.get('backend') ?? 'auto';
  $('model').textContent = `${cfg.model.type}`;
  const start = () => {
    $<HTMLButtonElement>('join').disabled = true;
    join(cfg).catch((err: Error) => {
      setStatus('failed', err.message);
      $<HTMLButtonElement>('join').disabled = false;
    });
  };
  $('join').addEventListener('click', start);
  if (params.get('auto') === '1') start();
}

main().catch((err: Error) => setStatus('failed', `cannot load the trainer's join config: ${err.message}`));
