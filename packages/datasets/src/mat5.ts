/**
 * A minimal reader of MATLAB level-5 MAT-files (the format of `save -v6` and `-v7`; MathWorks,
 * "MAT-File Format", 2019, ch. 1): numeric, real, full arrays, plain (miMATRIX) or zlib-compressed
 * (miCOMPRESSED). Enough for data sets distributed as .mat (SVHN); cells, structs, sparse,
 * complex and character arrays, and v7.3 files (HDF5), are refused with a message saying so.
 *
 * Every size the file declares is checked against the bytes present and against `maxBytes`
 * before anything is allocated or inflated, so a corrupt or hostile file costs at most that.
 */
import { constants as zlibConstants, inflateSync } from 'node:zlib';

/** One array read from a MAT-file. */
export interface MatArray {
  name: string;
  /** MATLAB class of the array (`double`, `uint8`, ...). */
  className: string;
  /** Dimensions, column-major (MATLAB order): element (i, j, k) is at i + d0*j + d0*d1*k. */
  dims: number[];
  /**
   * The values in column-major order: bytes stay a view into the file's buffer when stored as
   * uint8 (whatever the class); any other storage type is converted to float64.
   */
  data: Uint8Array | Float64Array;
}

/** Options of {@link readMat5}. */
export interface ReadMat5Options {
  /** Only these arrays are decoded (others are skipped, compressed ones without inflating). */
  names?: readonly string[];
  /** Largest array (its element, in bytes, after decompression) the reader accepts. Default 1 GiB. */
  maxBytes?: number;
}

const MI = { INT8: 1, UINT8: 2, INT16: 3, UINT16: 4, INT32: 5, UINT32: 6, SINGLE: 7, DOUBLE: 9, INT64: 12, UINT64: 13, MATRIX: 14, COMPRESSED: 15 } as const;
const NUMERIC_CLASSES: Record<number, string> = {
  6: 'double', 7: 'single', 8: 'int8', 9: 'uint8', 10: 'int16', 11: 'uint16', 12: 'int32', 13: 'uint32', 14: 'int64', 15: 'uint64',
};
const OTHER_CLASSES: Record<number, string> = { 1: 'cell', 2: 'struct', 3: 'object', 4: 'char', 5: 'sparse' };
const STORAGE_SIZE: Record<number, number> = { 1: 1, 2: 1, 3: 2, 4: 2, 5: 4, 6: 4, 7: 4, 9: 8, 12: 8, 13: 8 };
const HEADER = 128;
/** Compressed bytes inflated to find an array's name and dimensions before inflating it whole. */
const PEEK_BYTES = [512, 4096];

/** A data element's tag, as read at some offset. */
interface Tag {
  type: number;
  bytes: number;
  /** Offset of the element's data. */
  data: number;
  /** Offset of the next element. */
  next: number;
}

class Reader {
  readonly view: DataView;
  constructor(
    readonly buf: Uint8Array,
    readonly little: boolean,
    readonly source: string,
  ) {
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }

  fail(offset: number, what: string): Error {
    return new Error(`${this.source} (at byte ${offset}): ${what}`);
  }

  /** The tag at `off` (small-element format included), its data within `end`. */
  tag(off: number, end: number, padded = true): Tag {
    if (off + 8 > end) throw this.fail(off, `truncated: a data element tag needs 8 bytes, ${Math.max(0, end - off)} left`);
    const first = this.view.getUint32(off, this.little);
    if (first >>> 16 !== 0) {
      const bytes = first >>> 16;
      if (bytes > 4) throw this.fail(off, `small data element declares ${bytes} bytes, at most 4 fit`);
      return { type: first & 0xffff, bytes, data: off + 4, next: off + 8 };
    }
    const bytes = this.view.getUint32(off + 4, this.little);
    if (bytes > end - off - 8) throw this.fail(off, `truncated: element of type ${first} declares ${bytes} bytes, ${end - off - 8} left`);
    const next = off + 8 + (padded ? Math.ceil(bytes / 8) * 8 : bytes);
    return { type: first, bytes, data: off + 8, next: Math.min(next, end) };
  }
}

/** Reads the 128-byte header; returns whether the file is little-endian. */
function readHeader(buf: Uint8Array, source: string): boolean {
  if (buf.length < HEADER) throw new Error(`${source}: truncated: ${buf.length} bytes, a MAT-file header alone is ${HEADER}`);
  const text = Buffer.from(buf.subarray(0, 116)).toString('latin1');
  if (text.startsWith('MATLAB 7.3')) throw new Error(`${source}: a MATLAB v7.3 (HDF5) MAT-file; only level-5 files (save -v7 or -v6) are read`);
  const endian = String.fromCharCode(buf[126], buf[127]);
  if (!text.startsWith('MATLAB 5.0 MAT-file') || (endian !== 'IM' && endian !== 'MI')) {
    throw new Error(`${source}: not a MATLAB level-5 MAT-file (expected "MATLAB 5.0 MAT-file" and IM/MI at byte 126, got ${JSON.stringify(text.slice(0, 19))} and ${JSON.stringify(endian)})`);
  }
  return endian === 'IM';
}

/** What precedes an array's values: flags, dimensions, name. */
interface MatrixHead {
  name: string;
  className: string;
  classId: number;
  complex: boolean;
  dims: number[];
  /** Offset of the real part's tag. */
  valuesAt: number;
}

function readMatrixHead(r: Reader, start: number, end: number): MatrixHead {
  const flags = r.tag(start, end);
  if (flags.type !== MI.UINT32 || flags.bytes !== 8) throw r.fail(start, 'array flags must be 8 bytes of miUINT32');
  const word = r.view.getUint32(flags.data, r.little);
  const classId = word & 0xff;
  const dimsTag = r.tag(flags.next, end);
  if (dimsTag.type !== MI.INT32 || dimsTag.bytes % 4 !== 0 || dimsTag.bytes < 8) throw r.fail(flags.next, 'dimensions must be two or more miINT32 values');
  const dims: number[] = [];
  for (let i = 0; i < dimsTag.bytes / 4; i++) {
    const d = r.view.getInt32(dimsTag.data + 4 * i, r.little);
    if (d < 0) throw r.fail(dimsTag.data, `negative dimension ${d}`);
    dims.push(d);
  }
  const nameTag = r.tag(dimsTag.next, end);
  if (nameTag.type !== MI.INT8) throw r.fail(dimsTag.next, `array name must be miINT8, got type ${nameTag.type}`);
  const name = Buffer.from(r.buf.subarray(nameTag.data, nameTag.data + nameTag.bytes)).toString('latin1');
  const className = NUMERIC_CLASSES[classId] ?? OTHER_CLASSES[classId] ?? `class ${classId}`;
  return { name, className, classId, complex: (word & 0x800) !== 0, dims, valuesAt: nameTag.next };
}

/** The real part of a numeric array, checked against its dimensions. */
function readValues(r: Reader, head: MatrixHead, end: number): MatArray {
  const where = `array '${head.name}'`;
  if (NUMERIC_CLASSES[head.classId] === undefined) throw r.fail(head.valuesAt, `${where} is a ${head.className} array; only numeric arrays are read`);
  if (head.complex) throw r.fail(head.valuesAt, `${where} is complex; only real arrays are read`);
  const values = r.tag(head.valuesAt, end);
  const size = STORAGE_SIZE[values.type];
  if (size === undefined) throw r.fail(head.valuesAt, `${where}: unsupported storage type ${values.type}`);
  const count = head.dims.reduce((a, b) => a * b, 1);
  if (values.bytes !== count * size) {
    throw r.fail(head.valuesAt, `${where}: dimensions [${head.dims.join(', ')}] need ${count * size} bytes of type ${values.type}, the element has ${values.bytes}`);
  }
  const bytes = r.buf.subarray(values.data, values.data + values.bytes);
  const data = values.type === MI.UINT8 ? bytes : toFloat64(r, values, count);
  return { name: head.name, className: head.className, dims: head.dims, data };
}

function toFloat64(r: Reader, t: Tag, count: number): Float64Array {
  const out = new Float64Array(count);
  const v = r.view;
  const at = t.data;
  const le = r.little;
  const read: Record<number, (i: number) => number> = {
    [MI.INT8]: (i) => v.getInt8(at + i),
    [MI.INT16]: (i) => v.getInt16(at + 2 * i, le),
    [MI.UINT16]: (i) => v.getUint16(at + 2 * i, le),
    [MI.INT32]: (i) => v.getInt32(at + 4 * i, le),
    [MI.UINT32]: (i) => v.getUint32(at + 4 * i, le),
    [MI.SINGLE]: (i) => v.getFloat32(at + 4 * i, le),
    [MI.DOUBLE]: (i) => v.getFloat64(at + 8 * i, le),
    [MI.INT64]: (i) => Number(v.getBigInt64(at + 8 * i, le)),
    [MI.UINT64]: (i) => Number(v.getBigUint64(at + 8 * i, le)),
  };
  const get = read[t.type]!;
  for (let i = 0; i < count; i++) out[i] = get(i);
  return out;
}

/** Inflates a prefix of a compressed element: enough for its tag, flags, dimensions and name. */
function peekCompressed(r: Reader, t: Tag): Uint8Array {
  let out: Uint8Array = new Uint8Array(0);
  for (const n of PEEK_BYTES) {
    const prefix = r.buf.subarray(t.data, t.data + Math.min(n, t.bytes));
    try {
      out = inflateSync(prefix, { finishFlush: zlibConstants.Z_SYNC_FLUSH });
    } catch (err) {
      throw r.fail(t.data, `corrupt miCOMPRESSED element: ${(err as Error).message}`);
    }
    if (out.length >= 256 || n >= t.bytes) break;
  }
  return out;
}

/** The declared size of a compressed array and its head, read from an inflated prefix. */
function compressedHead(r: Reader, t: Tag): { total: number; head?: MatrixHead } {
  const peek = new Reader(peekCompressed(r, t), r.little, `${r.source} (miCOMPRESSED element at byte ${t.data - 8})`);
  const inner = peek.view.byteLength >= 8 ? peek.view.getUint32(4, r.little) : -1;
  if (inner < 0 || peek.view.getUint32(0, r.little) !== MI.MATRIX) return { total: inner + 8 };
  try {
    // A prefix ends early: bound the head's reads by the prefix, not by the declared size.
    return { total: inner + 8, head: readMatrixHead(peek, 8, peek.buf.length) };
  } catch {
    return { total: inner + 8 };
  }
}

/** Inflates a compressed element whole, after checking its declared size against `maxBytes`. */
function inflateElement(r: Reader, t: Tag, total: number, maxBytes: number): Reader {
  const at = t.data - 8;
  if (total > maxBytes) throw r.fail(at, `compressed array declares ${total} bytes, more than the ${maxBytes} allowed`);
  let out: Buffer;
  try {
    out = inflateSync(r.buf.subarray(t.data, t.data + t.bytes), { maxOutputLength: Math.max(total, 1) });
  } catch (err) {
    throw r.fail(at, `corrupt or truncated miCOMPRESSED element (expected ${total} bytes inflated): ${(err as Error).message}`);
  }
  if (out.length !== total) throw r.fail(at, `miCOMPRESSED element inflates to ${out.length} bytes, its tag declares ${total}`);
  return new Reader(out, r.little, `${r.source} (miCOMPRESSED element at byte ${at})`);
}

/** Reads one miMATRIX element (its tag at `off` of `r`), or undefined when its name is not wanted. */
function readMatrix(r: Reader, off: number, wanted: Set<string> | undefined, maxBytes: number): MatArray | undefined {
  const t = r.tag(off, r.buf.length);
  if (t.bytes > maxBytes) throw r.fail(off, `array declares ${t.bytes} bytes, more than the ${maxBytes} allowed`);
  const head = readMatrixHead(r, t.data, t.data + t.bytes);
  if (wanted && !wanted.has(head.name)) return undefined;
  return readValues(r, head, t.data + t.bytes);
}

/**
 * Reads the numeric arrays of a level-5 MAT-file (`options.names` limits which). `source` names
 * the file in errors, which also give the byte offset of the fault.
 */
export function readMat5(buf: Uint8Array, source: string, options: ReadMat5Options = {}): Map<string, MatArray> {
  const maxBytes = options.maxBytes ?? 2 ** 30;
  const wanted = options.names ? new Set(options.names) : undefined;
  const r = new Reader(buf, readHeader(buf, source), source);
  const out = new Map<string, MatArray>();
  for (let off = HEADER; off < buf.length; ) {
    const t = r.tag(off, buf.length, false);
    if (t.type === MI.COMPRESSED) {
      const { total, head } = compressedHead(r, t);
      if (!head || !wanted || wanted.has(head.name)) {
        const array = readMatrix(inflateElement(r, t, total, maxBytes), 0, wanted, maxBytes);
        if (array) out.set(array.name, array);
      }
      off = t.data + t.bytes;
    } else {
      if (t.type === MI.MATRIX) {
        const array = readMatrix(r, off, wanted, maxBytes);
        if (array) out.set(array.name, array);
      }
      off = r.tag(off, buf.length).next;
    }
  }
  return out;
}
