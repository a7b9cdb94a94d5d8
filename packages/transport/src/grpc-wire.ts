// gRPC plumbing: the service definition (with copy-free serialisers), channel/server options,
// credentials, metadata and status <-> TransportError mapping.
import { readFileSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import { Ack, type Envelope, Frame, NodeServiceService } from './generated/oiafed/v1/node.js';
import { TransportError, type TransportErrorCode } from './errors.js';
import { UNARY_ALIGN_BASE } from './serde.js';
import { encodeEnvelopeBuffer } from './wire-codec.js';

/** TLS settings: PEM contents as Buffers, or paths to PEM files. */
export interface TlsOptions {
  /** CA that signed the other side's certificate (client: the server's; server: the clients'). */
  ca?: string | Buffer;
  cert?: string | Buffer;
  key?: string | Buffer;
  /** Server only: reject clients that present no certificate signed by `ca`. */
  requireClientCert?: boolean;
  /**
   * Server only, with requireClientCert (default true there): a client certificate's CN or a
   * DNS/URI SAN must equal the node id the client registers as. false: any trusted certificate may
   * claim any id (one certificate shared by all learners).
   */
  bindNodeId?: boolean;
}

function view(u8: Uint8Array): Buffer {
  return Buffer.from(u8.buffer, u8.byteOffset, u8.byteLength);
}

const encodeEnvelope = (v: Envelope | Buffer): Buffer => (Buffer.isBuffer(v) ? v : encodeEnvelopeBuffer(v, UNARY_ALIGN_BASE));
// Chunk frames arrive pre-encoded (wire-codec.ts); control frames go through the generated code.
const encodeFrame = (v: Frame | Buffer): Buffer => (Buffer.isBuffer(v) ? v : view(Frame.encode(v).finish()));
const encodeAck = (v: Ack): Buffer => view(Ack.encode(v).finish());

/**
 * NodeService with the generated paths and codecs, but serialisers that return views instead of
 * the generated `Buffer.from(copy)`, and a request serialiser that accepts pre-encoded bytes (so
 * the size check before sending does not encode twice).
 */
export const nodeServiceDefinition = {
  call: {
    ...NodeServiceService.call,
    requestSerialize: encodeEnvelope,
    responseSerialize: encodeEnvelope,
  },
  notify: {
    ...NodeServiceService.notify,
    requestSerialize: encodeEnvelope,
    responseSerialize: encodeAck,
  },
  connect: {
    ...NodeServiceService.connect,
    requestSerialize: encodeFrame,
    responseSerialize: encodeFrame,
  },
} satisfies grpc.ServiceDefinition;

export const PATHS = {
  call: NodeServiceService.call.path,
  notify: NodeServiceService.notify.path,
  connect: NodeServiceService.connect.path,
} as const;

/** A PEM value from config: a Buffer as is, else read from the file it names (the error names the tls key). */
export function readPem(value: string | Buffer | undefined, what: string): Buffer | undefined {
  if (value === undefined) return undefined;
  if (Buffer.isBuffer(value)) return value;
  try {
    return readFileSync(value);
  } catch (err) {
    throw new TransportError('INVALID_ARGUMENT', `tls.${what}: cannot read PEM file '${value}' (${(err as Error).message})`);
  }
}

export function clientCredentials(tls: TlsOptions | undefined): grpc.ChannelCredentials {
  if (!tls) return grpc.credentials.createInsecure();
  const key = readPem(tls.key, 'key');
  const cert = readPem(tls.cert, 'cert');
  if ((key === undefined) !== (cert === undefined))
    throw new TransportError('INVALID_ARGUMENT', 'tls: key and cert must be given together (client certificate)');
  return grpc.credentials.createSsl(readPem(tls.ca, 'ca') ?? null, key ?? null, cert ?? null);
}

export function serverCredentials(tls: TlsOptions | undefined): grpc.ServerCredentials {
  if (!tls) return grpc.ServerCredentials.createInsecure();
  const key = readPem(tls.key, 'key');
  const cert = readPem(tls.cert, 'cert');
  if (!key || !cert) throw new TransportError('INVALID_ARGUMENT', 'tls: a listening node needs both tls.key and tls.cert');
  const ca = readPem(tls.ca, 'ca') ?? null;
  if (tls.requireClientCert && !ca) throw new TransportError('INVALID_ARGUMENT', 'tls.requireClientCert needs tls.ca to verify clients');
  return grpc.ServerCredentials.createSsl(ca, [{ private_key: key, cert_chain: cert }], tls.requireClientCert ?? false);
}

export interface WireOptions {
  maxMessageBytes: number;
  chunkBytes: number;
  keepaliveTimeMs?: number;
  keepaliveTimeoutMs?: number;
  compression: 'none' | 'gzip';
  reconnectInitialMs: number;
  reconnectMaxMs: number;
}

/** Bytes in flight per HTTP/2 connection and stream before the receiver must acknowledge. */
const FLOW_CONTROL_WINDOW = 16 * 1024 * 1024;

// Envelope fields around the payload (ids, metadata) ride on top of maxMessageBytes.
const ENVELOPE_SLACK = 64 * 1024;

function commonOptions(o: WireOptions): Record<string, number> {
  // chunkBytes <= maxMessageBytes (GrpcTransport clamps it), so stream frames always fit.
  const limit = Math.min(2 ** 31 - 1, o.maxMessageBytes + ENVELOPE_SLACK);
  const out: Record<string, number> = {
    'grpc.max_receive_message_length': limit,
    'grpc.max_send_message_length': limit,
  };
  if (o.keepaliveTimeMs) out['grpc.keepalive_time_ms'] = o.keepaliveTimeMs;
  if (o.keepaliveTimeoutMs) out['grpc.keepalive_timeout_ms'] = o.keepaliveTimeoutMs;
  if (o.compression === 'gzip') out['grpc.default_compression_algorithm'] = 2;
  return out;
}

export function channelOptions(o: WireOptions): grpc.ChannelOptions {
  const out = commonOptions(o);
  if (o.keepaliveTimeMs) out['grpc.keepalive_permit_without_calls'] = 1;
  out['grpc.initial_reconnect_backoff_ms'] = Math.max(10, o.reconnectInitialMs);
  out['grpc.max_reconnect_backoff_ms'] = Math.max(10, o.reconnectMaxMs);
  // HTTP/2 receive window of the dialer: with the default 64 KB the listener stalls for a
  // WINDOW_UPDATE every 64 KB of a model it sends down the Connect stream.
  out['grpc-node.flow_control_window'] = FLOW_CONTROL_WINDOW;
  return out;
}

export function serverOptions(o: WireOptions): grpc.ServerOptions {
  const out = commonOptions(o);
  // Let clients ping as often as their keepalive asks instead of being sent GOAWAY.
  if (o.keepaliveTimeMs) {
    out['grpc.keepalive_permit_without_calls'] = 1;
    out['grpc.http2.min_ping_interval_without_data_ms'] = Math.min(o.keepaliveTimeMs, 5 * 60_000);
  }
  return out;
}

export function authMetadata(token: string | undefined): grpc.Metadata {
  const md = new grpc.Metadata();
  // "" is never "no auth": PeerAuth refuses an empty token when the transport is built.
  if (token !== undefined) md.set('authorization', `Bearer ${token}`);
  return md;
}

const TO_GRPC: Partial<Record<TransportErrorCode, grpc.status>> = {
  UNKNOWN_PEER: grpc.status.NOT_FOUND,
  UNKNOWN_METHOD: grpc.status.UNIMPLEMENTED,
  DEADLINE_EXCEEDED: grpc.status.DEADLINE_EXCEEDED,
  UNAVAILABLE: grpc.status.UNAVAILABLE,
  UNAUTHENTICATED: grpc.status.UNAUTHENTICATED,
  PAYLOAD_TOO_LARGE: grpc.status.RESOURCE_EXHAUSTED,
  ALREADY_EXISTS: grpc.status.ALREADY_EXISTS,
  INVALID_ARGUMENT: grpc.status.INVALID_ARGUMENT,
  CANCELLED: grpc.status.CANCELLED,
};

export function toGrpcStatus(code: TransportErrorCode): grpc.status {
  return TO_GRPC[code] ?? grpc.status.INTERNAL;
}

/** Maps a grpc-js error (status code + details) to a TransportError naming peer and method. */
export function fromGrpcError(err: unknown, ctx: { remote: string; method?: string; what: string }): TransportError {
  if (err instanceof TransportError) return err;
  const e = err as Partial<grpc.ServiceError>;
  const details = e?.details || e?.message || String(err);
  let code: TransportErrorCode;
  switch (e?.code) {
    case grpc.status.NOT_FOUND:
      code = 'UNKNOWN_PEER';
      break;
    case grpc.status.UNIMPLEMENTED:
      code = 'UNKNOWN_METHOD';
      break;
    case grpc.status.DEADLINE_EXCEEDED:
      code = 'DEADLINE_EXCEEDED';
      break;
    case grpc.status.UNAVAILABLE:
      code = 'UNAVAILABLE';
      break;
    case grpc.status.UNAUTHENTICATED:
      code = 'UNAUTHENTICATED';
      break;
    case grpc.status.RESOURCE_EXHAUSTED:
      code = 'PAYLOAD_TOO_LARGE';
      break;
    case grpc.status.ALREADY_EXISTS:
      code = 'ALREADY_EXISTS';
      break;
    case grpc.status.INVALID_ARGUMENT:
      code = 'INVALID_ARGUMENT';
      break;
    case grpc.status.CANCELLED:
      code = 'CANCELLED';
      break;
    default:
      code = 'INTERNAL';
  }
  return new TransportError(code, `${ctx.what}: ${details}`, { remote: ctx.remote, method: ctx.method, cause: err });
}
