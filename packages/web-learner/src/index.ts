/**
 * @oiafed/web-learner: a federated learner that runs in a browser tab. tfjs in the page (webgl,
 * else wasm, else cpu), the model built from the trainer's spec, data from the page, and the
 * trainer reached over WebSocket (transport.web) with the frames of the gRPC Connect stream.
 */
export type { BrowserLinkOptions, WebHandler, WebPayload, WebSocketClass, WebTensor } from './browser-link.js';
export { BrowserLink, payloadOfEnvelope } from './browser-link.js';
export type { WebLearnerEvent, WebLearnerOptions, WebLearnerSettings } from './web-learner.js';
export { DEFAULT_WEB_SETTINGS, LEARNER_METHODS, WebLearner, weightsOf } from './web-learner.js';
export type { PartitionHeader, WebDataset } from './data.js';
export { decodePartition, parseCsv, readImageFolder } from './data.js';
export type { PickedBackend, WebBackend } from './backend.js';
export { BACKEND_ORDER, installBrowserShims, pickBackend, softwareWebGlRenderer } from './backend.js';
export type { JoinOptions, JoinedLearner } from './join.js';
export { joinFederation } from './join.js';
