// Hand-written encoders for the two messages that carry model bytes: Envelope (tensors) and the
// Chunk frames that slice it on the Connect stream. The generated BinaryWriter grows one buffer by
// doubling, shifts nested messages in join() and copies again in finish(): five or more passes over
// a 100 MB model. Here the small parts (ids, metadata, tensor headers) still go through the
// generated code, and tensor bytes are referenced as views, copied once into the final buffer.
// The output is plain protobuf wire format that any protobuf decoder reads.
import { Envelope, TensorProto, type Frame } from './generated/oiafed/v1/node.js';

/** An encoded Envelope as a list of segments; their concatenation is the protobuf encoding. */
export interface EncodedParts {
  parts: Uint8Array[];
  byteLength: number;
}

const EMPTY = new Uint8Array(0);
// Field numbers / wire types, pre-shifted: (field << 3) | wiretype.
const TAG_ENVELOPE_TENSORS = (10 << 3) | 2;
const TAG_TENSOR_DATA = (4 << 3) | 2;
// TensorProto field 15 is reserved for alignment padding (see proto/oiafed/v1/node.proto); readers
// skip it as an unknown field.
const TAG_TENSOR_PAD = (15 << 3) | 2;
const TAG_FRAME_CHUNK = (3 << 3) | 2;
const TAG_CHUNK_ID = (1 << 3) | 2;
const TAG_CHUNK_SEQ = 2 << 3;
const TAG_CHUNK_LAST = 3 << 3;
const TAG_CHUNK_DATA = (4 << 3) | 2;
const TAG_CHUNK_TOTAL = 5 << 3;

/** Bytes a varint takes (non-negative integers up to 2^53). */
export function varintSize(n: number): number {
  let size = 1;
  while (n >= 128) {
    n = Math.floor(n / 128);
    size++;
  }
  return size;
}

function writeVarint(buf: Uint8Array, pos: number, n: number): number {
  while (n >= 128) {
    buf[pos++] = (n % 128) | 0x80;
    n = Math.floor(n / 128);
  }
  buf[pos++] = n;
  return pos;
}

function encodeTensorHeader(t: TensorProto): Uint8Array {
  return TensorProto.encode({ name: t.name, shape: t.shape, dtype: t.dtype, data: EMPTY }).finish();
}

/**
 * Segments of an Envelope's encoding, with tensor data as views (no copy). Each tensor's data is
 * placed at an offset o with (alignBase + o) % 8 === 0, by inserting a padding field, so that the
 * receiver can view float32/int32 data in place: alignBase is where the receiver will hold the
 * envelope's first byte (0 for a reassembled stream envelope, 5 for a gRPC unary message, which
 * grpc-js delivers after its 5-byte frame prefix). A wrong guess only costs the receiver a copy.
 */
export function encodeEnvelopeParts(env: Envelope, alignBase: number): EncodedParts {
  const head = Envelope.encode({ ...env, tensors: [] }).finish();
  const parts: Uint8Array[] = [head];
  let pos = head.byteLength;
  for (const t of env.tensors) {
    const hdr = encodeTensorHeader(t);
    const dataLen = t.data.byteLength;
    const dataPrefix = 1 + varintSize(dataLen);
    let pad = 0;
    let tensorLen = 0;
    for (const candidate of [0, 2, 3, 4, 5, 6, 7, 8, 9]) {
      tensorLen = hdr.byteLength + candidate + dataPrefix + dataLen;
      const dataOff = pos + 1 + varintSize(tensorLen) + hdr.byteLength + candidate + dataPrefix;
      pad = candidate;
      if ((alignBase + dataOff) % 8 === 0 || dataLen === 0) break;
    }
    tensorLen = hdr.byteLength + pad + dataPrefix + dataLen;
    const pre = new Uint8Array(1 + varintSize(tensorLen) + hdr.byteLength + pad + dataPrefix);
    let p = 0;
    pre[p++] = TAG_ENVELOPE_TENSORS;
    p = writeVarint(pre, p, tensorLen);
    pre.set(hdr, p);
    p += hdr.byteLength;
    if (pad > 0) {
      pre[p++] = TAG_TENSOR_PAD;
      pre[p++] = pad - 2;
      pre.fill(0, p, p + pad - 2);
      p += pad - 2;
    }
    pre[p++] = TAG_TENSOR_DATA;
    p = writeVarint(pre, p, dataLen);
    parts.push(pre);
    if (dataLen > 0) parts.push(t.data);
    pos += pre.byteLength + dataLen;
  }
  return { parts, byteLength: pos };
}

/** Copies `[from, from + length)` of the concatenation of `parts` into `dst` at `at`. */
function copyRange(parts: Uint8Array[], from: number, length: number, dst: Uint8Array, at: number): void {
  let skip = from;
  for (const part of parts) {
    if (length === 0) return;
    if (skip >= part.byteLength) {
      skip -= part.byteLength;
      continue;
    }
    const n = Math.min(part.byteLength - skip, length);
    dst.set(skip === 0 && n === part.byteLength ? part : part.subarray(skip, skip + n), at);
    at += n;
    length -= n;
    skip = 0;
  }
}

/** One contiguous encoding of `env` (one copy of the tensor bytes), as a Buffer. */
export function encodeEnvelopeBuffer(env: Envelope, alignBase: number): Buffer {
  const { parts, byteLength } = encodeEnvelopeParts(env, alignBase);
  const out = Buffer.allocUnsafe(byteLength);
  copyRange(parts, 0, byteLength, out, 0);
  return out;
}

/**
 * Encodes Frame{chunk{envelope_id, seq, last, data, total_bytes}} whose data is bytes
 * `[from, from + length)` of the encoded envelope, straight from its segments (one copy).
 */
export function encodeChunkFrame(
  env: EncodedParts,
  c: { envelopeId: string; seq: number; last: boolean; from: number; length: number },
): Buffer {
  const id = Buffer.from(c.envelopeId, 'utf8');
  const total = c.seq === 0 ? env.byteLength : 0;
  const chunkLen =
    (id.byteLength > 0 ? 1 + varintSize(id.byteLength) + id.byteLength : 0) +
    (c.seq !== 0 ? 1 + varintSize(c.seq) : 0) +
    (c.last ? 2 : 0) +
    (c.length > 0 ? 1 + varintSize(c.length) + c.length : 0) +
    (total !== 0 ? 1 + varintSize(total) : 0);
  const out = Buffer.allocUnsafe(1 + varintSize(chunkLen) + chunkLen);
  let p = 0;
  out[p++] = TAG_FRAME_CHUNK;
  p = writeVarint(out, p, chunkLen);
  if (id.byteLength > 0) {
    out[p++] = TAG_CHUNK_ID;
    p = writeVarint(out, p, id.byteLength);
    out.set(id, p);
    p += id.byteLength;
  }
  if (c.seq !== 0) {
    out[p++] = TAG_CHUNK_SEQ;
    p = writeVarint(out, p, c.seq);
  }
  if (c.last) {
    out[p++] = TAG_CHUNK_LAST;
    out[p++] = 1;
  }
  if (c.length > 0) {
    out[p++] = TAG_CHUNK_DATA;
    p = writeVarint(out, p, c.length);
    copyRange(env.parts, c.from, c.length, out, p);
    p += c.length;
  }
  if (total !== 0) {
    out[p++] = TAG_CHUNK_TOTAL;
    p = writeVarint(out, p, total);
  }
  return out;
}

/** A frame for the Connect stream: a generated message, or bytes already encoded as a Frame. */
export type FrameOrBytes = Frame | Buffer;
