import { describe, expect, it } from 'vitest';
import { readMat5 } from '../src/index.js';
import { encodeLyingMat5, encodeMat5, matHeader, MI, MX, type MatFixtureArray } from './mat5-fixtures.js';

const arrays: MatFixtureArray[] = [
  { name: 'X', dims: [2, 3], type: MI.UINT8, values: [1, 2, 3, 4, 5, 250] },
  { name: 'weights', dims: [3, 1], type: MI.DOUBLE, values: [0.5, -1.25, 1e10] },
  { name: 'counts', classId: 12, dims: [1, 2], type: MI.INT32, values: [-7, 123456] },
];

describe('MAT-file level 5 reader', () => {
  it.each([
    ['plain, little-endian', { compress: false, little: true }],
    ['compressed, little-endian', { compress: true, little: true }],
    ['plain, big-endian', { compress: false, little: false }],
    ['compressed, big-endian', { compress: true, little: false }],
  ])('reads numeric arrays back exactly (%s)', (_, options) => {
    const out = readMat5(encodeMat5(arrays, options), 'a.mat');
    expect([...out.keys()]).toEqual(['X', 'weights', 'counts']);
    expect(out.get('X')).toMatchObject({ className: 'uint8', dims: [2, 3] });
    expect(out.get('X')!.data).toBeInstanceOf(Uint8Array);
    expect(Array.from(out.get('X')!.data)).toEqual([1, 2, 3, 4, 5, 250]);
    expect(out.get('weights')).toMatchObject({ className: 'double', dims: [3, 1] });
    expect(Array.from(out.get('weights')!.data)).toEqual([0.5, -1.25, 1e10]);
    expect(out.get('counts')!.className).toBe('int32');
    expect(Array.from(out.get('counts')!.data)).toEqual([-7, 123456]);
  });

  it('skips unwanted compressed arrays without inflating them', () => {
    const big: MatFixtureArray = { name: 'noise', dims: [4000, 1], type: MI.DOUBLE, values: Array.from({ length: 4000 }, (_, i) => Math.sin(i)) };
    const file = encodeMat5([arrays[0]!, big, arrays[1]!], { compress: true });
    // Damage the noise array's stream well past the part that names it.
    const noiseAt = file.indexOf(Buffer.from([MI.COMPRESSED, 0, 0, 0]), 128 + 8);
    expect(noiseAt).toBeGreaterThan(128);
    file.fill(0xff, noiseAt + 8 + 6000, noiseAt + 8 + 6100);
    const some = readMat5(file, 'b.mat', { names: ['X', 'weights'] });
    expect([...some.keys()]).toEqual(['X', 'weights']);
    expect(() => readMat5(file, 'b.mat')).toThrow(/b.mat \(at byte \d+\): corrupt or truncated miCOMPRESSED element \(expected 32\d{3} bytes inflated\)/);
  });

  it('refuses files that are not level-5 MAT-files, naming the file', () => {
    expect(() => readMat5(Buffer.alloc(40), 'short.mat')).toThrow(/short.mat: truncated: 40 bytes, a MAT-file header alone is 128/);
    expect(() => readMat5(Buffer.alloc(200, 0x41), 'text.mat')).toThrow(/text.mat: not a MATLAB level-5 MAT-file \(expected "MATLAB 5.0 MAT-file" and IM\/MI at byte 126, got "AAAA/);
    expect(() => readMat5(matHeader(true, 'MATLAB 7.3 MAT-file, HDF5'), 'h5.mat')).toThrow(/h5.mat: a MATLAB v7.3 \(HDF5\) MAT-file; only level-5 files/);
  });

  it('reports a truncated file with the offset and what was expected', () => {
    const plain = encodeMat5(arrays.slice(0, 1));
    expect(() => readMat5(plain.subarray(0, plain.length - 9), 'cut.mat')).toThrow(/cut.mat \(at byte 128\): truncated: element of type 14 declares 56 bytes, 47 left/);
    const packed = encodeMat5(arrays.slice(0, 2), { compress: true });
    expect(() => readMat5(packed.subarray(0, packed.length - 3), 'cutz.mat')).toThrow(/cutz.mat \(at byte \d+\): truncated: element of type 15 declares \d+ bytes, \d+ left/);
  });

  it('checks dimensions against the stored bytes', () => {
    const lying = encodeMat5([{ name: 'X', dims: [2, 4], type: MI.UINT8, values: [1, 2, 3, 4, 5, 6] }]);
    expect(() => readMat5(lying, 'dims.mat')).toThrow(/dims.mat \(at byte \d+\): array 'X': dimensions \[2, 4\] need 8 bytes of type 2, the element has 6/);
  });

  it('checks the size a compressed array declares before inflating it', () => {
    // A tag that claims 3 GB in front of a few real bytes: refused from the declaration alone.
    const file = encodeLyingMat5(arrays[0]!, 3_000_000_000);
    expect(() => readMat5(file, 'huge.mat')).toThrow(/huge.mat \(at byte 128\): compressed array declares 3000000008 bytes, more than the 1073741824 allowed/);
    expect(() => readMat5(encodeMat5(arrays, { compress: true }), 'small.mat', { maxBytes: 40 })).toThrow(/small.mat \(at byte 128\): compressed array declares 64 bytes, more than the 40 allowed/);
  });

  it('refuses cell, complex and unknown-storage arrays by name', () => {
    expect(() => readMat5(encodeMat5([{ ...arrays[0]!, classId: MX.CELL }]), 'c.mat')).toThrow(/c.mat \(at byte \d+\): array 'X' is a cell array; only numeric arrays are read/);
    expect(() => readMat5(encodeMat5([{ ...arrays[1]!, complex: true }]), 'z.mat')).toThrow(/z.mat \(at byte \d+\): array 'weights' is complex/);
  });
});
