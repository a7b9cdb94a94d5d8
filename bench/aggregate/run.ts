/**
 * Aggregation throughput: GB/s of client-update data consumed by each rule, against a plain
 * Float32Array.set of the same bytes measured in the same run (the memcpy ceiling).
 *
 *   npx tsx --conditions=@oiafed/source bench/aggregate/run.ts [--json] [--quick]
 *
 * Update buffers come from a pool capped at ~400 MB and are reused cyclically when N * P is
 * larger, so a 100 x 10M round does not need 4 GB; bytes consumed are still N * P * 4.
 * Batch-only rules (median, trimmed_mean, krum) hold references to the pool, so their RSS
 * shows the rule's own working memory, not n copies.
 */
import { createAggregator, registerBuiltins } from '@oiafed/aggregators';
import type { Aggregator, ClientUpdate, RoundContext } from '@oiafed/aggregators';
import { readFlags } from '../args.js';

interface Row {
  rule: string;
  n: number;
  params: number;
  gb_per_s: number;
  memcpy_gb_per_s: number;
  ratio: number;
  rss_mb: number;
}

const { json, quick } = readFlags(process.argv.slice(2), { json: { type: 'boolean', default: false }, quick: { type: 'boolean', default: false } }, 'bench/aggregate/run.ts');
const POOL_BYTES = 400 * 2 ** 20;

registerBuiltins();

function fillRandom(v: Float32Array, seed: number): void {
  let s = seed >>> 0 || 1;
  for (let i = 0; i < v.length; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    v[i] = ((s >>> 0) / 4294967296) * 2 - 1;
  }
}

function makePool(n: number, params: number): { updates: ClientUpdate[]; global: Float32Array } {
  const distinct = Math.max(2, Math.min(n, Math.floor(POOL_BYTES / (params * 4 * 2))));
  const pool: ClientUpdate[] = [];
  for (let k = 0; k < distinct; k++) {
    const w = new Float32Array(params);
    fillRandom(w, k + 1);
    const delta = new Float32Array(params);
    fillRandom(delta, 1000 + k);
    pool.push({
      clientId: `c${k}`,
      weights: w,
      numSamples: 10 + k,
      localSteps: 5 + (k % 3),
      meta: { momentum: 0 },
      extras: { control_delta: delta },
    });
  }
  const updates = Array.from({ length: n }, (_, k) => ({ ...pool[k % distinct], clientId: `c${k}` }));
  const global = new Float32Array(params);
  fillRandom(global, 999);
  return { updates, global };
}

function rssMb(): number {
  return process.memoryUsage.rss() / 2 ** 20;
}

/** Best of `reps` timings (seconds) and the peak RSS sampled while running. */
function time(reps: number, fn: (sample: () => void) => void): { seconds: number; peakRss: number } {
  let best = Infinity;
  let peak = 0;
  const sample = () => {
    const r = rssMb();
    if (r > peak) peak = r;
  };
  for (let r = 0; r < reps; r++) {
    const t0 = process.hrtime.bigint();
    fn(sample);
    const dt = Number(process.hrtime.bigint() - t0) / 1e9;
    sample();
    if (dt < best) best = dt;
  }
  return { seconds: best, peakRss: peak };
}

function memcpyGbps(updates: readonly ClientUpdate[], params: number, reps: number): number {
  const dst = new Float32Array(params);
  const { seconds } = time(reps, () => {
    for (const u of updates) dst.set(u.weights);
  });
  return (updates.length * params * 4) / seconds / 1e9;
}

function runRule(agg: Aggregator, ctx: RoundContext, updates: readonly ClientUpdate[], stream: boolean, sample: () => void): void {
  if (stream && agg.createAccumulator) {
    const acc = agg.createAccumulator(ctx);
    for (const u of updates) {
      acc.add(u);
      sample();
    }
    acc.finish();
  } else {
    agg.aggregate(ctx, updates);
  }
}

const RULES: { label: string; type: string; args?: Record<string, unknown>; stream: boolean; maxNP?: number }[] = [
  { label: 'fedavg (stream)', type: 'fedavg', stream: true },
  { label: 'fedavg (batch)', type: 'fedavg', stream: false },
  { label: 'fedavgm', type: 'fedavgm', stream: true },
  { label: 'fedprox', type: 'fedprox', stream: true },
  { label: 'fedbn', type: 'fedbn', stream: true },
  { label: 'scaffold', type: 'scaffold', stream: true },
  { label: 'fednova', type: 'fednova', stream: true },
  { label: 'fedadam', type: 'fedadam', stream: true },
  { label: 'fedyogi', type: 'fedyogi', stream: true },
  { label: 'fedadagrad', type: 'fedadagrad', stream: true },
  // a quickselect per coordinate (~1-2 us at n = 100): capped to keep the whole run under 10 min
  { label: 'median', type: 'median', stream: false, maxNP: 100 * 1_000_000 },
  { label: 'trimmed_mean', type: 'trimmed_mean', args: { beta: 0.2 }, stream: false, maxNP: 100 * 1_000_000 },
  // O(n^2 P): capped so a row stays within seconds
  { label: 'krum', type: 'krum', args: { f: 2 }, stream: false, maxNP: 100 * 1_000_000 },
  { label: 'multi-krum m=5', type: 'krum', args: { f: 2, m: 5 }, stream: false, maxNP: 100 * 1_000_000 },
];

const sizes = quick ? [100_000, 1_000_000] : [1_000_000, 10_000_000];
const counts = [10, 100];
const rows: Row[] = [];

for (const params of sizes) {
  for (const n of counts) {
    const { updates, global } = makePool(n, params);
    const reps = n * params <= 10 * 1_000_000 ? 3 : 1;
    const ctx: RoundContext = {
      round: 1,
      global,
      layout: [{ name: 'w', shape: [params], offset: 0, size: params, trainable: true, isNormalization: false }],
      totalClients: n,
      selectedClients: updates.map((u) => u.clientId),
    };
    for (const rule of RULES) {
      if (rule.maxNP !== undefined && n * params > rule.maxNP) continue;
      const memcpy = memcpyGbps(updates, params, reps);
      const { seconds, peakRss } = time(reps, (sample) =>
        runRule(createAggregator({ type: rule.type, args: rule.args }), ctx, updates, rule.stream, sample),
      );
      const gbps = (n * params * 4) / seconds / 1e9;
      const row: Row = {
        rule: rule.label,
        n,
        params,
        gb_per_s: +gbps.toFixed(3),
        memcpy_gb_per_s: +memcpy.toFixed(3),
        ratio: +(gbps / memcpy).toFixed(3),
        rss_mb: Math.round(peakRss),
      };
      rows.push(row);
      if (!json) {
        process.stdout.write(
          `${row.rule.padEnd(18)} n=${String(n).padStart(3)} P=${String(params).padStart(9)}  ` +
            `${row.gb_per_s.toFixed(2).padStart(6)} GB/s  memcpy ${row.memcpy_gb_per_s.toFixed(2).padStart(6)} GB/s  ` +
            `ratio ${row.ratio.toFixed(3)}  rss ${row.rss_mb} MB\n`,
        );
      }
    }
  }
}

if (json) {
  const header = '| rule | n | params | GB/s | memcpy GB/s | ratio | peak RSS MB |';
  process.stdout.write(`${header}\n|---|---|---|---|---|---|---|\n`);
  for (const r of rows) {
    process.stdout.write(`| ${r.rule} | ${r.n} | ${r.params} | ${r.gb_per_s} | ${r.memcpy_gb_per_s} | ${r.ratio} | ${r.rss_mb} |\n`);
  }
  process.stdout.write(`${JSON.stringify({ rows })}\n`);
}
