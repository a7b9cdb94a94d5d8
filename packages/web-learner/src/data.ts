// Where a browser learner's data comes from: a CSV the user picks, a folder of labelled images,
// or a partition the trainer serves (dashboard.serve_partitions) for demos and tests.
import type { DataSource } from '@oiafed/models';

/** A labelled data set in memory (what FedModel.train takes). */
export interface WebDataset extends DataSource {
  /** Class names by index, when the source had names (image folders, CSV labels that are not numbers). */
  readonly classNames?: string[];
}

function dataset(features: Float32Array, labels: Int32Array, sampleShape: number[], numClasses: number, classNames?: string[]): WebDataset {
  return { features, labels, sampleShape, numClasses, length: labels.length, classNames };
}

/**
 * Parses a CSV with a header row: the `label` column (else the last one) is the class, every other
 * column a numeric feature. Labels that are all integers are used as class indices, others are
 * numbered in order of first appearance. `numClasses` defaults to what the file shows.
 */
export function parseCsv(text: string, numClasses?: number): WebDataset {
  const rows = text.split(/\r?\n/).filter((l) => l.trim() !== '');
  if (rows.length < 2) throw new Error('CSV: expected a header row and at least one data row');
  const header = rows[0]!.split(',').map((h) => h.trim());
  const labelCol = header.indexOf('label') >= 0 ? header.indexOf('label') : header.length - 1;
  const width = header.length - 1;
  const features = new Float32Array((rows.length - 1) * width);
  const rawLabels: string[] = [];
  rows.slice(1).forEach((row, r) => {
    const cells = row.split(',');
    if (cells.length !== header.length) throw new Error(`CSV line ${r + 2}: ${cells.length} cells, header has ${header.length}`);
    let k = 0;
    cells.forEach((cell, c) => {
      if (c === labelCol) return void rawLabels.push(cell.trim());
      const v = Number(cell);
      if (!Number.isFinite(v)) throw new Error(`CSV line ${r + 2}, column '${header[c]}': '${cell}' is not a number`);
      features[r * width + k++] = v;
    });
  });
  const numeric = rawLabels.every((l) => /^\d+$/.test(l));
  const names = numeric ? undefined : [...new Set(rawLabels)];
  const labels = Int32Array.from(rawLabels, (l) => (numeric ? Number(l) : names!.indexOf(l)));
  const classes = numClasses ?? (names ? names.length : Math.max(...labels) + 1);
  if (labels.some((l) => l >= classes)) throw new Error(`CSV: a label is >= num_classes ${classes}`);
  return dataset(features, labels, [width], classes, names);
}

/**
 * Reads a folder of images laid out as `<root>/<class name>/<file>` (an <input webkitdirectory>
 * FileList), resized to `height x width` with `channels` 1 (grey) or 3, values in [0, 1].
 */
export async function readImageFolder(files: ArrayLike<File>, shape: { height: number; width: number; channels: 1 | 3 }): Promise<WebDataset> {
  const images = Array.from(files).filter((f) => f.type.startsWith('image/'));
  const classOf = (f: File) => (f.webkitRelativePath || f.name).split('/').slice(-2, -1)[0] ?? '';
  const names = [...new Set(images.map(classOf))].sort();
  const { height, width, channels } = shape;
  const size = height * width * channels;
  const features = new Float32Array(images.length * size);
  const canvas = new OffscreenCanvas(width, height);
  const ctx = canvas.getContext('2d', { willReadFrequently: true })!;
  for (const [i, file] of images.entries()) {
    const bitmap = await createImageBitmap(file);
    ctx.drawImage(bitmap, 0, 0, width, height);
    bitmap.close();
    const rgba = ctx.getImageData(0, 0, width, height).data;
    for (let p = 0; p < height * width; p++) {
      if (channels === 1) features[i * size + p] = (rgba[p * 4]! * 0.299 + rgba[p * 4 + 1]! * 0.587 + rgba[p * 4 + 2]! * 0.114) / 255;
      else for (let c = 0; c < 3; c++) features[i * size + p * 3 + c] = rgba[p * 4 + c]! / 255;
    }
  }
  const labels = Int32Array.from(images, (f) => names.indexOf(classOf(f)));
  return dataset(features, labels, [height, width, channels], names.length, names);
}

/** Header of the trainer's partition format (see decodePartition). */
export interface PartitionHeader {
  length: number;
  sampleShape: number[];
  numClasses: number;
  partition: number;
  numPartitions: number;
}

/**
 * Decodes a served partition: u32 LE header length, the JSON header, zero padding to a multiple
 * of 4, `length * prod(sampleShape)` float32 features, then `length` int32 labels.
 */
export function decodePartition(buf: ArrayBuffer): WebDataset & { header: PartitionHeader } {
  const headerLength = new DataView(buf).getUint32(0, true);
  const header = JSON.parse(new TextDecoder().decode(new Uint8Array(buf, 4, headerLength))) as PartitionHeader;
  const start = Math.ceil((4 + headerLength) / 4) * 4;
  const size = header.sampleShape.reduce((a, b) => a * b, 1);
  const features = new Float32Array(buf.slice(start, start + header.length * size * 4));
  const labels = new Int32Array(buf.slice(start + header.length * size * 4, start + header.length * size * 4 + header.length * 4));
  return { ...dataset(features, labels, header.sampleShape, header.numClasses), header };
}
