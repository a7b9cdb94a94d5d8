// Joins a federation from a page: pick the backend, register over WebSocket, serve the trainer's
// calls until it says the federation is over (or the page closes the link).
import { BrowserLink, type WebSocketClass } from './browser-link.js';
import { pickBackend, type WebBackend } from './backend.js';
import type { WebDataset } from './data.js';
import { WebLearner, type WebLearnerEvent, type WebLearnerSettings } from './web-learner.js';

export interface JoinOptions {
  /** ws:// or wss:// URL of the trainer's transport.web path. */
  url: string;
  nodeId: string;
  token?: string;
  data: WebDataset;
  testData?: WebDataset;
  settings?: Partial<WebLearnerSettings>;
  seed?: number;
  /** Backends to try, in order (webgl, wasm, cpu). */
  backends?: readonly WebBackend[];
  /** URL prefix of the tfjs wasm binaries, or each binary's URL by file name. */
  wasmPath?: string | Record<string, string>;
  onEvent?: (event: WebLearnerEvent) => void;
  WebSocket?: WebSocketClass;
}

export interface JoinedLearner {
  backend: WebBackend;
  /** Why backends before it were passed over (e.g. software webgl). */
  skipped: string[];
  link: BrowserLink;
  learner: WebLearner;
  /** Settles when the trainer ends the federation (finished) or the socket closes first, with the reason. */
  done: Promise<{ finished: boolean; reason: string }>;
}

export async function joinFederation(o: JoinOptions): Promise<JoinedLearner> {
  const { backend, skipped } = await pickBackend({ order: o.backends, wasmPath: o.wasmPath });
  const learner = new WebLearner({ nodeId: o.nodeId, data: o.data, testData: o.testData, settings: o.settings, seed: o.seed, backend, onEvent: o.onEvent });
  const link = await BrowserLink.connect({ url: o.url, nodeId: o.nodeId, token: o.token, metadata: learner.metadata(), WebSocket: o.WebSocket }, learner.handlers());
  const done = Promise.race([learner.finished.then((reason) => ({ finished: true, reason })), link.closed.then((reason) => ({ finished: false, reason }))]);
  return { backend, skipped, link, learner, done };
}
