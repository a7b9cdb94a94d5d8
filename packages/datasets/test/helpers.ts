import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { encodeCifarRecords, encodeIdxUint8 } from '../src/index.js';

/** A fresh temp dir, removed by the returned cleanup. */
export async function tempDir(): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'oiafed-datasets-'));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

/** Image i has pixel (r, c) = (i * 7 + r * 28 + c) % 256 and label i % 10. */
export function mnistLike(n: number): { images: Uint8Array; labels: Uint8Array } {
  const images = new Uint8Array(n * 784);
  for (let i = 0; i < n; i++) for (let p = 0; p < 784; p++) images[i * 784 + p] = (i * 7 + p) % 256;
  const labels = Uint8Array.from({ length: n }, (_, i) => i % 10);
  return { images, labels };
}

/** Writes the four MNIST IDX files of `train`/`test` samples, gzipped or raw. */
export async function writeMnistFiles(dir: string, nTrain: number, nTest: number, gz: boolean): Promise<void> {
  const files: Array<[string, Buffer]> = [];
  for (const [prefix, n] of [
    ['train', nTrain],
    ['t10k', nTest],
  ] as const) {
    const { images, labels } = mnistLike(n);
    files.push([`${prefix}-images-idx3-ubyte`, encodeIdxUint8([n, 28, 28], images)]);
    files.push([`${prefix}-labels-idx1-ubyte`, encodeIdxUint8([n], labels)]);
  }
  for (const [name, data] of files) {
    await writeFile(join(dir, gz ? `${name}.gz` : name), gz ? gzipSync(data) : data);
  }
}

/** HWC pixels where sample i, row y, col x, channel c = (i + 3y + 5x + 80c) % 256. */
export function cifarPixels(n: number): Uint8Array {
  const px = new Uint8Array(n * 3072);
  for (let i = 0; i < n; i++)
    for (let y = 0; y < 32; y++)
      for (let x = 0; x < 32; x++) for (let c = 0; c < 3; c++) px[((i * 32 + y) * 32 + x) * 3 + c] = (i + 3 * y + 5 * x + 80 * c) % 256;
  return px;
}

/** Writes data_batch_1..5.bin (`perBatch` records each) and test_batch.bin (`nTest`). */
export async function writeCifarFiles(dir: string, perBatch: number, nTest: number): Promise<Record<string, Buffer>> {
  const out: Record<string, Buffer> = {};
  for (let b = 1; b <= 5; b++) {
    const labels = Array.from({ length: perBatch }, (_, i) => (i + b) % 10);
    out[`data_batch_${b}.bin`] = encodeCifarRecords(cifarPixels(perBatch), labels);
  }
  out['test_batch.bin'] = encodeCifarRecords(cifarPixels(nTest), Array.from({ length: nTest }, (_, i) => (9 * i) % 10));
  for (const [name, data] of Object.entries(out)) await writeFile(join(dir, name), data);
  return out;
}

/** A minimal ustar archive of the given files (for the tar reader and CIFAR download). */
export function makeTar(files: Record<string, Buffer>): Buffer {
  return makeTarEntries(Object.entries(files).map(([name, data]) => ({ name, data })));
}

/** One entry of {@link makeTarEntries}: type '0' file (default), '2' symlink, '5' directory. */
export interface TarEntry {
  name: string;
  data?: Buffer;
  type?: '0' | '2' | '5';
  linkname?: string;
}

/** A minimal ustar archive of any entries, links included (for hostile-archive tests). */
export function makeTarEntries(entries: TarEntry[]): Buffer {
  const blocks: Buffer[] = [];
  for (const { name, data = Buffer.alloc(0), type = '0', linkname } of entries) {
    const h = Buffer.alloc(512);
    h.write(name, 0, 100, 'utf8');
    h.write('0000644\0', 100);
    h.write('0000000\0', 108);
    h.write('0000000\0', 116);
    h.write(data.length.toString(8).padStart(11, '0') + '\0', 124);
    h.write('00000000000\0', 136);
    h.write('        ', 148);
    h.write(type, 156);
    if (linkname) h.write(linkname, 157, 100, 'utf8');
    h.write('ustar\0', 257);
    h.write('00', 263);
    let sum = 0;
    for (const b of h) sum += b;
    h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148);
    blocks.push(h, data, Buffer.alloc((512 - (data.length % 512)) % 512));
  }
  blocks.push(Buffer.alloc(1024));
  return Buffer.concat(blocks);
}

/** Byte equality of two typed arrays (vitest's deep equality is slow on large arrays). */
export function sameBytes(a: ArrayBufferView, b: ArrayBufferView): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
}
