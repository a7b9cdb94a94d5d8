import { deflateSync } from 'node:zlib';

/**
 * A writer of MATLAB level-5 MAT-files for tests, following the format spec (MathWorks,
 * "MAT-File Format", ch. 1) the way MATLAB itself writes them: names of up to 4 bytes in the
 * small-element format, each array optionally wrapped in a zlib miCOMPRESSED element.
 */

/** Storage types (miXXX) the writer can emit. */
export const MI = { INT8: 1, UINT8: 2, INT32: 5, UINT32: 6, DOUBLE: 9, MATRIX: 14, COMPRESSED: 15 } as const;
/** Array classes (mxXXX_CLASS). */
export const MX = { CELL: 1, DOUBLE: 6, UINT8: 9 } as const;

export interface MatFixtureArray {
  name: string;
  /** mxXXX_CLASS (default: from the storage type). */
  classId?: number;
  dims: number[];
  /** Storage type of the real part. */
  type: typeof MI.UINT8 | typeof MI.DOUBLE | typeof MI.INT32;
  values: ArrayLike<number>;
  complex?: boolean;
}

const SIZES = { [MI.UINT8]: 1, [MI.INT32]: 4, [MI.DOUBLE]: 8 } as const;

function pad8(n: number): number {
  return Math.ceil(n / 8) * 8;
}

function element(type: number, data: Buffer, little: boolean): Buffer {
  if (data.length <= 4 && type !== MI.MATRIX && type !== MI.COMPRESSED) {
    const out = Buffer.alloc(8);
    if (little) out.writeUInt32LE(((data.length << 16) | type) >>> 0, 0);
    else out.writeUInt32BE(((data.length << 16) | type) >>> 0, 0);
    data.copy(out, 4);
    return out;
  }
  const padded = type === MI.COMPRESSED ? data.length : pad8(data.length);
  const out = Buffer.alloc(8 + padded);
  if (little) {
    out.writeUInt32LE(type, 0);
    out.writeUInt32LE(data.length, 4);
  } else {
    out.writeUInt32BE(type, 0);
    out.writeUInt32BE(data.length, 4);
  }
  data.copy(out, 8);
  return out;
}

function numbers(type: number, values: ArrayLike<number>, little: boolean): Buffer {
  const size = SIZES[type as keyof typeof SIZES];
  const out = Buffer.alloc(values.length * size);
  for (let i = 0; i < values.length; i++) {
    if (type === MI.UINT8) out[i] = values[i];
    else if (type === MI.INT32) little ? out.writeInt32LE(values[i], 4 * i) : out.writeInt32BE(values[i], 4 * i);
    else little ? out.writeDoubleLE(values[i], 8 * i) : out.writeDoubleBE(values[i], 8 * i);
  }
  return out;
}

/** One miMATRIX element (tag included). */
export function matrixElement(a: MatFixtureArray, little = true): Buffer {
  const classId = a.classId ?? (a.type === MI.UINT8 ? MX.UINT8 : MX.DOUBLE);
  const flags = Buffer.alloc(8);
  const word = classId | (a.complex ? 0x800 : 0);
  if (little) flags.writeUInt32LE(word, 0);
  else flags.writeUInt32BE(word, 0);
  const parts = [
    element(MI.UINT32, flags, little),
    element(MI.INT32, numbers(MI.INT32, a.dims, little), little),
    element(MI.INT8, Buffer.from(a.name, 'latin1'), little),
    element(a.type, numbers(a.type, a.values, little), little),
  ];
  return element(MI.MATRIX, Buffer.concat(parts), little);
}

/** The 128-byte header. */
export function matHeader(little = true, text = 'MATLAB 5.0 MAT-file, Platform: GLNXA64, Created on: Sun Nov 29 2026'): Buffer {
  const h = Buffer.alloc(128, 0x20);
  h.write(text, 0, 116, 'latin1');
  h.fill(0, 116, 124);
  if (little) h.writeUInt16LE(0x0100, 124);
  else h.writeUInt16BE(0x0100, 124);
  h.write(little ? 'IM' : 'MI', 126, 'latin1');
  return h;
}

/** A whole MAT-file: header then each array, compressed (as MATLAB's -v7 default) or not. */
export function encodeMat5(arrays: MatFixtureArray[], options: { compress?: boolean; little?: boolean } = {}): Buffer {
  const little = options.little ?? true;
  const body = arrays.map((a) => {
    const m = matrixElement(a, little);
    return options.compress ? element(MI.COMPRESSED, deflateSync(m), little) : m;
  });
  return Buffer.concat([matHeader(little), ...body]);
}

/**
 * SVHN-like arrays of `n` digits: X uint8 [32, 32, 3, n] column-major with pixel (row r, col c,
 * channel ch) of sample s = (s + 3r + 5c + 80ch) % 256, y double [n, 1] = (s % 10) + 1.
 */
export function svhnArrays(n: number): MatFixtureArray[] {
  const x = new Uint8Array(32 * 32 * 3 * n);
  for (let s = 0; s < n; s++)
    for (let ch = 0; ch < 3; ch++)
      for (let c = 0; c < 32; c++) for (let r = 0; r < 32; r++) x[r + 32 * c + 1024 * ch + 3072 * s] = (s + 3 * r + 5 * c + 80 * ch) % 256;
  const y = Array.from({ length: n }, (_, s) => (s % 10) + 1);
  return [
    { name: 'X', dims: [32, 32, 3, n], type: MI.UINT8, values: x },
    // MATLAB stores a double array of small integers as uint8 to save space; the class stays double.
    { name: 'y', classId: MX.DOUBLE, dims: [n, 1], type: MI.UINT8, values: y },
  ];
}

/**
 * A MAT-file with one compressed array whose inner tag declares `declaredBytes` though the
 * stream holds only the small array: what a hostile or corrupt file looks like to the reader.
 */
export function encodeLyingMat5(a: MatFixtureArray, declaredBytes: number): Buffer {
  const inner = matrixElement(a);
  inner.writeUInt32LE(declaredBytes, 4);
  const z = deflateSync(inner);
  const tag = Buffer.alloc(8);
  tag.writeUInt32LE(MI.COMPRESSED, 0);
  tag.writeUInt32LE(z.length, 4);
  return Buffer.concat([matHeader(), tag, z]);
}
