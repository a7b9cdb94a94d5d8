// The one place that converts between domain types (Payload, Tensor) and wire types (Envelope,
// TensorProto). Nothing outside this file and the gRPC plumbing sees generated types.
import { endianness } from 'node:os';
import { BinaryReader } from '@bufbuild/protobuf/wire';
import { DataType, Envelope, EnvelopeKind, ErrorInfo, type TensorProto } from './generated/oiafed/v1/node.js';
import { TransportError } from './errors.js';
import { encodeEnvelopeBuffer } from './wire-codec.js';
import type { DType, Payload, Tensor } from './types.js';

// Tensor bytes are the host's typed-array bytes, sent as-is; that is only the wire's
// little-endian format on a little-endian host.
const HOST_IS_LE = endianness() === 'LE';

/** Offset of a unary message's first byte in the buffer grpc-js hands the deserialiser. */
export const UNARY_ALIGN_BASE = 5;

interface DTypeInfo {
  wire: DataType;
  bytes: number;
  ctor: Float32ArrayConstructor | Uint16ArrayConstructor | Int8ArrayConstructor | Int32ArrayConstructor | Uint8ArrayConstructor;
}

const DTYPES: Record<DType, DTypeInfo> = {
  float32: { wire: DataType.DATA_TYPE_FLOAT32, bytes: 4, ctor: Float32Array },
  float16: { wire: DataType.DATA_TYPE_FLOAT16, bytes: 2, ctor: Uint16Array },
  int8: { wire: DataType.DATA_TYPE_INT8, bytes: 1, ctor: Int8Array },
  int32: { wire: DataType.DATA_TYPE_INT32, bytes: 4, ctor: Int32Array },
  uint8: { wire: DataType.DATA_TYPE_UINT8, bytes: 1, ctor: Uint8Array },
};

const FROM_WIRE = new Map<DataType, DType>(Object.entries(DTYPES).map(([k, v]) => [v.wire, k as DType]));

function assertLittleEndian(): void {
  if (!HOST_IS_LE)
    throw new TransportError('INTERNAL', 'tensor serialisation requires a little-endian host (os.endianness() is BE)');
}

function elementCount(shape: number[], where: string): number {
  let n = 1;
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 0)
      throw new TransportError('INVALID_ARGUMENT', `${where}: shape must hold non-negative integers, got [${shape.join(', ')}]`);
    n *= d;
  }
  return n;
}

/** Wire form of a tensor; `data` is a view over the typed array's memory (no copy). */
export function tensorToProto(t: Tensor, index = 0): TensorProto {
  assertLittleEndian();
  const where = `tensor #${index} '${t?.name}'`;
  const info = DTYPES[t?.dtype];
  if (!info) throw new TransportError('INVALID_ARGUMENT', `${where}: dtype must be one of ${Object.keys(DTYPES).join('|')}, got '${t?.dtype}'`);
  if (!(t.data instanceof info.ctor))
    throw new TransportError('INVALID_ARGUMENT', `${where}: dtype ${t.dtype} needs data as ${info.ctor.name}, got ${t.data?.constructor?.name}`);
  if (!Array.isArray(t.shape)) throw new TransportError('INVALID_ARGUMENT', `${where}: shape must be an array`);
  const n = elementCount(t.shape, where);
  if (n !== t.data.length)
    throw new TransportError('INVALID_ARGUMENT', `${where}: shape [${t.shape.join(', ')}] holds ${n} elements but data has ${t.data.length}`);
  return {
    name: t.name,
    shape: t.shape.slice(),
    dtype: info.wire,
    data: new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength),
  };
}

/**
 * Domain tensor from its wire form. The result views `p.data`'s memory when it is aligned for the
 * element type; a misaligned slice is copied once.
 */
export function tensorFromProto(p: TensorProto, index = 0): Tensor {
  assertLittleEndian();
  const where = `received tensor #${index} '${p.name}'`;
  const dtype = FROM_WIRE.get(p.dtype);
  if (!dtype) throw new TransportError('INVALID_ARGUMENT', `${where}: unknown wire dtype ${p.dtype}`);
  const info = DTYPES[dtype];
  const shape = p.shape.map(Number);
  const n = elementCount(shape, where);
  if (p.data.byteLength !== n * info.bytes)
    throw new TransportError('INVALID_ARGUMENT', `${where}: shape [${shape.join(', ')}] of ${dtype} needs ${n * info.bytes} bytes, got ${p.data.byteLength}`);
  let bytes = p.data;
  if (bytes.byteOffset % info.bytes !== 0) {
    // Not Buffer#slice: on a Buffer that is a view, and the point here is a fresh aligned copy.
    const copy = new Uint8Array(bytes.byteLength);
    copy.set(bytes);
    bytes = copy;
  }
  const data = new info.ctor(bytes.buffer as ArrayBuffer, bytes.byteOffset, n);
  return { name: p.name, shape, dtype, data };
}

const EMPTY = new Uint8Array(0);

export function bodyToBytes(body: unknown, where: string): Uint8Array {
  if (body === undefined) return EMPTY;
  let json: string | undefined;
  try {
    json = JSON.stringify(body);
  } catch (err) {
    throw new TransportError('INVALID_ARGUMENT', `${where}: body is not JSON-serialisable (${(err as Error).message})`);
  }
  if (json === undefined) throw new TransportError('INVALID_ARGUMENT', `${where}: body is not JSON-serialisable (${typeof body})`);
  return Buffer.from(json, 'utf8');
}

/**
 * What a received JSON body may be, checked on its bytes before JSON.parse: parsing is synchronous,
 * and 24 MB of nested arrays held the event loop (heartbeats, /health) for 21 s.
 */
export interface BodyLimits {
  maxBytes: number;
  maxDepth: number;
}

/** 1 MB and 64 levels: bodies carry round settings and metrics; tensors carry the bulk. */
export const DEFAULT_BODY_LIMITS: BodyLimits = { maxBytes: 1024 * 1024, maxDepth: 64 };

/** True when the JSON text nests arrays/objects deeper than `maxDepth` (brackets inside strings do not count). */
export function jsonNestsDeeperThan(bytes: Uint8Array, maxDepth: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i]!;
    if (inString) {
      if (b === 0x5c) i++;
      else if (b === 0x22) inString = false;
    } else if (b === 0x22) inString = true;
    else if (b === 0x5b || b === 0x7b) {
      if (++depth > maxDepth) return true;
    } else if (b === 0x5d || b === 0x7d) depth--;
  }
  return false;
}

export function bodyFromBytes(bytes: Uint8Array, where: string, limits: BodyLimits = DEFAULT_BODY_LIMITS): unknown {
  if (bytes.byteLength === 0) return undefined;
  if (bytes.byteLength > limits.maxBytes)
    throw new TransportError(
      'PAYLOAD_TOO_LARGE',
      `${where}: JSON body of ${bytes.byteLength} bytes is over the limit of ${limits.maxBytes} (transport.grpc.max_json_body_kb)`,
    );
  if (jsonNestsDeeperThan(bytes, limits.maxDepth))
    throw new TransportError('INVALID_ARGUMENT', `${where}: JSON body nests deeper than ${limits.maxDepth} levels`);
  try {
    return JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8'));
  } catch (err) {
    throw new TransportError('INVALID_ARGUMENT', `${where}: body is not valid JSON (${(err as Error).message})`);
  }
}

/** Fields of an Envelope that carry the payload. */
export function payloadToWire(payload: Payload, where: string): Pick<Envelope, 'body' | 'tensors'> {
  if (payload === null || typeof payload !== 'object')
    throw new TransportError('INVALID_ARGUMENT', `${where}: payload must be an object {body?, tensors?}, got ${payload === null ? 'null' : typeof payload}`);
  if (payload.tensors !== undefined && !Array.isArray(payload.tensors))
    throw new TransportError('INVALID_ARGUMENT', `${where}: payload.tensors must be an array`);
  return {
    body: bodyToBytes(payload.body, where),
    tensors: (payload.tensors ?? []).map((t, i) => tensorToProto(t, i)),
  };
}

export function payloadFromWire(env: Pick<Envelope, 'body' | 'tensors'>, where: string, limits: BodyLimits = DEFAULT_BODY_LIMITS): Payload {
  const out: Payload = {};
  const body = bodyFromBytes(env.body, where, limits);
  if (body !== undefined) out.body = body;
  if (env.tensors.length > 0) out.tensors = env.tensors.map((t, i) => tensorFromProto(t, i));
  return out;
}

/**
 * Encodes an envelope into one Buffer, copying tensor bytes once. `alignBase` is where the
 * receiver holds the envelope's first byte (default: a gRPC unary message, after grpc-js's 5-byte
 * prefix), so tensor data lands 8-byte aligned there and is viewed without a copy.
 */
export function encodeEnvelope(env: Envelope, alignBase = UNARY_ALIGN_BASE): Buffer {
  return encodeEnvelopeBuffer(env, alignBase);
}

export function decodeEnvelope(bytes: Uint8Array): Envelope {
  try {
    return Envelope.decode(bytes);
  } catch (err) {
    throw new TransportError('INVALID_ARGUMENT', `malformed envelope (${(err as Error).message})`);
  }
}

/** The routing fields of an envelope that may not decode as a whole. */
export interface EnvelopeHeader {
  id?: string;
  method?: string;
  correlationId?: string;
  kind?: EnvelopeKind;
}

/**
 * Reads id, method, correlation_id and kind from an envelope's bytes, skipping every other field
 * undecoded: when a RESPONSE does not decode (a tensor shape over 2^53, say), its correlation id
 * still names the call to fail now instead of at its deadline. Returns what could be read.
 */
export function peekEnvelopeHeader(bytes: Uint8Array): EnvelopeHeader {
  const head: EnvelopeHeader = {};
  try {
    const reader = new BinaryReader(bytes);
    while (reader.pos < reader.len) {
      const [field, wireType] = reader.tag();
      if (field === 1 && wireType === 2) head.id = reader.string();
      else if (field === 2 && wireType === 2) head.method = reader.string();
      else if (field === 5 && wireType === 2) head.correlationId = reader.string();
      else if (field === 11 && wireType === 0) head.kind = reader.int32() as EnvelopeKind;
      else reader.skip(wireType);
    }
  } catch {
    // Truncated or garbage: keep what was read before it.
  }
  return head;
}

export function errorToWire(code: string, message: string, fromHandler: boolean, details = ''): ErrorInfo {
  return { code, message, details, fromHandler };
}

let counter = 0;
const prefix = Math.random().toString(36).slice(2, 8);
/** Process-unique message id. */
export function newId(): string {
  counter = (counter + 1) % Number.MAX_SAFE_INTEGER;
  return `${prefix}-${Date.now().toString(36)}-${counter.toString(36)}`;
}
