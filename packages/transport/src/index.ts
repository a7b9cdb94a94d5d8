export type {
  DType,
  Tensor,
  Payload,
  PeerInfo,
  CallContext,
  CallHandler,
  CallOptions,
  TransportStats,
  TransportEvent,
  Transport,
  Logger,
} from './types.js';
export { noopLogger } from './types.js';
export type { TransportErrorCode } from './errors.js';
export { TransportError, RemoteError, isTransportErrorCode } from './errors.js';
export type { RetryOptions } from './retry-policy.js';
export { RetryPolicy, DEFAULT_RETRY } from './retry-policy.js';
export type { MemoryTransportOptions } from './memory-transport.js';
export { MemoryHub, MemoryTransport } from './memory-transport.js';
export type { GrpcTransportOptions } from './grpc-transport.js';
export { GrpcTransport } from './grpc-transport.js';
export type { TlsOptions } from './grpc-wire.js';
export { readPem } from './grpc-wire.js';
export { MAX_NODE_ID_LENGTH, nodeIdProblem } from './peer-auth.js';
export type { RateLimitedLogOptions } from './rate-limited-log.js';
export { RateLimitedLog, sanitizeForLog } from './rate-limited-log.js';
