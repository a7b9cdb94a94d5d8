/**
 * Wire speed of the federation: a model trainer -> learner over gRPC on 127.0.0.1 (the chunked
 * Connect stream) and learner -> trainer (a call that GrpcTransport sends up the same stream once
 * the payload reaches 1 MB, unary Call below that), each against a raw TCP socket moving the
 * same bytes in the same run; then each update compression option on a 20 MB model (bytes on
 * the wire, encode / send / decode time, reconstruction error).
 *
 *   npm run bench:transport [-- --json] [-- --gb]      (--gb adds one 1 GB model transfer)
 *
 * JSON (last stdout line): {"rows": [{size_mb, mode, mb_per_s, raw_tcp_mb_per_s, ratio}],
 *   "compression": [{compression, size_mb, wire_mb, wire_ratio, encode_s, send_s, decode_s, total_s, max_abs_err}]}
 */
import { createServer, connect, type AddressInfo } from 'node:net';
import { loadavg, cpus, totalmem } from 'node:os';
import { compressUpdate, decodeUpdateWeights, type UpdateCompression } from '@oiafed/core';
import { GrpcTransport, type Tensor } from '@oiafed/transport';
import type { TensorSpec } from '@oiafed/aggregators';
import { readFlags } from '../args.js';

const { json, gb: withGb } = readFlags(process.argv.slice(2), { json: { type: 'boolean', default: false }, gb: { type: 'boolean', default: false } }, 'bench/transport/run.ts');
const MB = 1024 * 1024;

interface Row {
  size_mb: number;
  mode: string;
  mb_per_s: number;
  raw_tcp_mb_per_s: number;
  ratio: number;
}

function log(line: string): void {
  if (!json) process.stdout.write(`${line}\n`);
}

/** One raw TCP transfer of `bytes` (sender writes, receiver acks after the last byte): seconds. */
async function rawTcp(bytes: Uint8Array): Promise<number> {
  let received = 0;
  const server = createServer((sock) => {
    sock.on('data', (d: Buffer) => {
      received += d.length;
      if (received >= bytes.byteLength) sock.end(Buffer.from([1]));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  const t0 = performance.now();
  await new Promise<void>((resolve, reject) => {
    const sock = connect(port, '127.0.0.1', () => {
      sock.write(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
    });
    sock.on('data', () => {
      sock.destroy();
      resolve();
    });
    sock.on('error', reject);
  });
  const s = (performance.now() - t0) / 1000;
  await new Promise<void>((r) => server.close(() => r()));
  return s;
}

async function startPair(): Promise<{ trainer: GrpcTransport; learner: GrpcTransport }> {
  const trainer = new GrpcTransport({ nodeId: 'trainer', role: 'trainer', listen: { host: '127.0.0.1', port: 0 }, timeoutMs: 600_000 });
  await trainer.start();
  const learner = new GrpcTransport({
    nodeId: 'learner_0',
    role: 'learner',
    connectTo: [{ nodeId: 'trainer', host: '127.0.0.1', port: trainer.boundPort! }],
    timeoutMs: 600_000,
    maxMessageBytes: 2047 * MB,
  });
  const joined = new Promise<void>((r) => {
    const off = trainer.on('peer-joined', () => {
      off();
      r();
    });
  });
  await learner.start();
  await joined;
  return { trainer, learner };
}

function model(sizeMb: number): Float32Array {
  const w = new Float32Array((sizeMb * MB) / 4);
  for (let i = 0; i < w.length; i += 97) w[i] = i * 1e-6;
  return w;
}

function best(times: number[]): number {
  return Math.min(...times);
}

const rows: Row[] = [];
const { trainer, learner } = await startPair();
learner.handle('recv', (p) => ({ body: { n: p.tensors?.[0]?.data.length ?? 0 } }));
trainer.handle('upload', (p) => ({ body: { n: p.tensors?.[0]?.data.length ?? 0 } }));

const sizes = withGb ? [20, 100, 1024] : [20, 100];
for (const sizeMb of sizes) {
  const w = model(sizeMb);
  const tensors: Tensor[] = [{ name: 'weights/w', shape: [w.length], dtype: 'float32', data: w }];
  const reps = sizeMb >= 1024 ? 1 : 3;
  const raw: number[] = [];
  const down: number[] = [];
  const up: number[] = [];
  for (let r = 0; r < reps; r++) {
    raw.push(await rawTcp(new Uint8Array(w.buffer)));
    let t0 = performance.now();
    const reply = await trainer.call('learner_0', 'recv', { tensors });
    down.push((performance.now() - t0) / 1000);
    if ((reply.body as { n: number }).n !== w.length) throw new Error('trainer -> learner transfer lost data');
    if (sizeMb < 1024) {
      // Learner calls are capped by maxMessageBytes (2 GB in grpc-js); the 1 GB row covers trainer -> learner.
      t0 = performance.now();
      await learner.call('trainer', 'upload', { tensors });
      up.push((performance.now() - t0) / 1000);
    }
  }
  const rawRate = sizeMb / best(raw);
  const add = (mode: string, times: number[]) => {
    if (times.length === 0) return;
    const rate = sizeMb / best(times);
    const row = { size_mb: sizeMb, mode, mb_per_s: +rate.toFixed(1), raw_tcp_mb_per_s: +rawRate.toFixed(1), ratio: +(rate / rawRate).toFixed(3) };
    rows.push(row);
    log(`${String(sizeMb).padStart(5)} MB  ${mode.padEnd(28)} ${row.mb_per_s.toFixed(0).padStart(6)} MB/s  raw TCP ${row.raw_tcp_mb_per_s.toFixed(0).padStart(6)} MB/s  ratio ${row.ratio.toFixed(2)}`);
  };
  add('trainer->learner (stream)', down);
  add('learner->trainer (call)', up);
}

// ---------------------------------------------------------------------------------------------
// Update compression on a 20 MB model split into tensors like a CNN's.

interface CompressionRow {
  compression: string;
  size_mb: number;
  wire_mb: number;
  wire_ratio: number;
  encode_s: number;
  send_s: number;
  decode_s: number;
  total_s: number;
  max_abs_err: number;
}

const P = (20 * MB) / 4;
const sizesOfTensors = [P * 0.6, P * 0.3, P * 0.0999, P * 0.0001].map(Math.floor);
sizesOfTensors[3] = P - sizesOfTensors[0]! - sizesOfTensors[1]! - sizesOfTensors[2]!;
let offset = 0;
const layout: TensorSpec[] = sizesOfTensors.map((size, i) => {
  const spec = { name: `layer${i}/kernel`, shape: [size], offset, size, trainable: true, isNormalization: false };
  offset += size;
  return spec;
});
const global = new Float32Array(P);
const local = new Float32Array(P);
let s = 12345;
for (let i = 0; i < P; i++) {
  s = (s * 1103515245 + 12345) >>> 0;
  const u = s / 2 ** 32;
  global[i] = u * 0.2 - 0.1;
  // A training delta: mostly tiny, a heavy tail of larger moves.
  local[i] = global[i]! + (u - 0.5) * 1e-3 * (i % 101 === 0 ? 50 : 1);
}
let received: readonly Tensor[] = [];
trainer.handle('update', (p) => {
  received = p.tensors ?? [];
  return {};
});
const compressionRows: CompressionRow[] = [];
const options: UpdateCompression[] = [{ type: 'none' }, { type: 'float16' }, { type: 'int8' }, { type: 'topk', topk_ratio: 0.01 }, { type: 'topk', topk_ratio: 0.1 }];
for (const c of options) {
  const label = c.type === 'topk' ? `topk ${c.topk_ratio}` : c.type;
  let bestTotal = Infinity;
  let row: CompressionRow | undefined;
  for (let r = 0; r < 3; r++) {
    const t0 = performance.now();
    const tensors = compressUpdate(local, global, layout, c);
    const t1 = performance.now();
    await learner.call('trainer', 'update', { tensors });
    const t2 = performance.now();
    const decoded = decodeUpdateWeights(received, layout, global);
    const t3 = performance.now();
    const total = (t3 - t0) / 1000;
    if (total >= bestTotal) continue;
    bestTotal = total;
    let err = 0;
    for (let i = 0; i < P; i++) err = Math.max(err, Math.abs(decoded[i]! - local[i]!));
    const wire = tensors.reduce((sum, t) => sum + t.data.byteLength, 0) / MB;
    row = {
      compression: label,
      size_mb: 20,
      wire_mb: +wire.toFixed(3),
      wire_ratio: +(wire / 20).toFixed(4),
      encode_s: +((t1 - t0) / 1000).toFixed(4),
      send_s: +((t2 - t1) / 1000).toFixed(4),
      decode_s: +((t3 - t2) / 1000).toFixed(4),
      total_s: +total.toFixed(4),
      max_abs_err: +err.toExponential(2),
    };
  }
  compressionRows.push(row!);
  log(
    `compression ${row!.compression.padEnd(9)} wire ${row!.wire_mb.toFixed(2).padStart(6)} MB (${(row!.wire_ratio * 100).toFixed(1)}%)  ` +
      `encode ${row!.encode_s.toFixed(3)}s  send ${row!.send_s.toFixed(3)}s  decode ${row!.decode_s.toFixed(3)}s  total ${row!.total_s.toFixed(3)}s  max|err| ${row!.max_abs_err}`,
  );
}

await learner.stop();
await trainer.stop();

const machine = `${cpus().length} cores (${cpus()[0]?.model ?? '?'}), ${(totalmem() / 2 ** 30).toFixed(0)} GiB, load ${loadavg().map((l) => l.toFixed(1)).join(' ')}`;
if (json) {
  process.stdout.write(`machine: ${machine}\n| size MB | mode | MB/s | raw TCP MB/s | ratio |\n|---|---|---|---|---|\n`);
  for (const r of rows) process.stdout.write(`| ${r.size_mb} | ${r.mode} | ${r.mb_per_s} | ${r.raw_tcp_mb_per_s} | ${r.ratio} |\n`);
  process.stdout.write('\n| compression | wire MB | wire ratio | encode s | send s | decode s | total s | max abs err |\n|---|---|---|---|---|---|---|---|\n');
  for (const r of compressionRows) {
    process.stdout.write(`| ${r.compression} | ${r.wire_mb} | ${r.wire_ratio} | ${r.encode_s} | ${r.send_s} | ${r.decode_s} | ${r.total_s} | ${r.max_abs_err} |\n`);
  }
  process.stdout.write(`${JSON.stringify({ machine, rows, compression: compressionRows })}\n`);
} else {
  log(`machine: ${machine}`);
}
