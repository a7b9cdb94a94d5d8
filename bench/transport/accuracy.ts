/**
 * Accuracy cost of update compression on a real task: Fashion-MNIST (the real IDX files from
 * /usr/share/datasets/fashion-mnist), an MLP, 10 in-process parties (IID, 3 sampled per round),
 * FedAvg, the same seed for every option (so the same parties train each round); final test accuracy and bytes received by the trainer per round.
 *
 *   npx tsx --conditions=@oiafed/source bench/transport/accuracy.ts [--json] [--rounds N]
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolveConfig } from '@oiafed/config';
import { runSerial } from '@oiafed/core';

const argv = process.argv.slice(2);
const json = argv.includes('--json');
const roundsAt = argv.indexOf('--rounds');
const rounds = roundsAt >= 0 ? Number(argv[roundsAt + 1]) : 4;
const options = [
  { type: 'none' },
  { type: 'float16' },
  { type: 'int8' },
  { type: 'topk', topk_ratio: 0.1 },
  { type: 'topk', topk_ratio: 0.01 },
] as const;
const rows: Array<{ compression: string; rounds: number; final_accuracy: number; accuracy_cost_pts: number; mb_received_per_round: number }> = [];
let baseline = 0;
for (const c of options) {
  const config = resolveConfig(
    {
      exp_name: 'bench-compression',
      node_id: 'trainer',
      role: 'trainer',
      seed: 3,
      transport: { mode: 'memory', update_compression: c },
      // 10 parties, 3 sampled per round (6,000 images each): the real task at a cost this machine can pay per option.
      trainer: { args: { max_rounds: rounds, local_epochs: 1, client_fraction: 0.3, min_clients: 3, eval_every: rounds, registration_timeout: 120, round_timeout: 600 } },
      learner: { args: { batch_size: 64, lr: 0.05, momentum: 0.9, device: 'cpu' } },
      aggregator: { type: 'fedavg' },
      model: { type: 'mlp', args: { hidden: [128], num_classes: 10 } },
      datasets: [{ type: 'fashion_mnist', partition: { strategy: 'iid', num_partitions: 10 } }],
      tracker: { backends: [{ type: 'console', level: 'error' }], run_dir: mkdtempSync(join(tmpdir(), 'oiafed-bench-acc-')) },
    },
    { file: 'bench-compression.yaml', env: {} },
  );
  const summary = await runSerial(config, { numClients: 10 });
  const label = c.type === 'topk' ? `topk ${c.topk_ratio}` : c.type;
  const acc = summary.finalAccuracy ?? NaN;
  if (c.type === 'none') baseline = acc;
  const mb = summary.rounds.reduce((s, r) => s + r.bytes_received, 0) / summary.rounds.length / 2 ** 20;
  const row = { compression: label, rounds, final_accuracy: +acc.toFixed(4), accuracy_cost_pts: +((baseline - acc) * 100).toFixed(2), mb_received_per_round: +mb.toFixed(3) };
  rows.push(row);
  if (json) process.stderr.write(`${JSON.stringify(row)}\n`);
  if (!json) process.stdout.write(`${label.padEnd(10)} accuracy ${(acc * 100).toFixed(2)}%  cost ${row.accuracy_cost_pts} pts  received ${row.mb_received_per_round} MB/round\n`);
}
if (json) {
  process.stdout.write('| compression | rounds | final accuracy | cost (points) | MB received / round |\n|---|---|---|---|---|\n');
  for (const r of rows) process.stdout.write(`| ${r.compression} | ${r.rounds} | ${(r.final_accuracy * 100).toFixed(2)}% | ${r.accuracy_cost_pts} | ${r.mb_received_per_round} |\n`);
  process.stdout.write(`${JSON.stringify({ rows })}\n`);
}
