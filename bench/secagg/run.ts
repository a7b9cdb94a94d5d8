/**
 * Cost of secure aggregation (SecAgg+, issue 16 §1): the same round with and without it, in the
 * same run. A real Trainer (fedavg) and scripted learners (real SecAgg+ code, no local training,
 * so the protocol's own cost shows) on the in-process memory transport.
 *
 *   npm run bench:secagg [-- --json] [-- --quick] [-- --learners 10,50] [-- --params 100000] [-- --neighbours 16] [-- --grpc 10]
 *
 * `--grpc N` adds rows with N learner processes over gRPC on 127.0.0.1 (the fault tests' scripted
 * learner, tests/faults/test/secagg-learner.ts), their CPU read from /proc/<pid>/stat; `--grpc-only`
 * skips the in-process rows.
 *
 * Per row: per-round wall time, trainer CPU and learner CPU (per learner, mean) for one round, and
 * bytes the trainer sends to / receives from each learner (bodies as JSON plus tensor bytes).
 * Learner CPU is measured around each learner's handlers, which the bench runs one at a time
 * (a mutex), so it is that learner's own; trainer CPU is the process's CPU minus the learners'.
 * JSON (last stdout line): {"load_average": [...], "rows": [{learners, params, secure, neighbours, round_s, trainer_cpu_s, learner_cpu_s, bytes_to_learner, bytes_from_learner}]}
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { loadavg, cpus } from 'node:os';
import { join } from 'node:path';
import { createAggregator, registerBuiltins as registerBuiltinAggregators } from '@oiafed/aggregators';
import { Mutex, Trainer, type SecureAggregationSettings } from '@oiafed/core';
import { interceptCalls, scriptedLearnerMetadata, serveScriptedLearner } from '@oiafed/core/testing';
import { createModel, registerBuiltinModels, selectBackend } from '@oiafed/models';
import { GrpcTransport, MemoryHub, MemoryTransport, type Payload, type Transport } from '@oiafed/transport';
import { sourceNodeFlags } from '../../tests/source-node.js';
import { COUNT, INTEGER, numberFlag, numberListFlag, readFlags } from '../args.js';

const flags = readFlags(
  process.argv.slice(2),
  {
    json: { type: 'boolean', default: false },
    quick: { type: 'boolean', default: false },
    learners: { type: 'string' },
    params: { type: 'string' },
    neighbours: { type: 'string', default: '16' },
    grpc: { type: 'string', default: '0' },
    'grpc-only': { type: 'boolean', default: false },
  },
  'bench/secagg/run.ts',
);
const { json, quick } = flags;
const LEARNERS = flags.learners === undefined ? (quick ? [5] : [10, 50, 100]) : numberListFlag('--learners', flags.learners, COUNT);
const PARAMS = flags.params === undefined ? (quick ? [10_000] : [100_000, 1_000_000]) : numberListFlag('--params', flags.params, COUNT);
const NEIGHBOURS = numberFlag('--neighbours', flags.neighbours, COUNT);
const GRPC = numberFlag('--grpc', flags.grpc, INTEGER);
const GRPC_ONLY = flags['grpc-only'];

interface Row {
  transport: 'memory' | 'grpc';
  learners: number;
  params: number;
  secure: boolean;
  neighbours: number | null;
  round_s: number;
  trainer_cpu_s: number;
  learner_cpu_s: number;
  bytes_to_learner: number;
  bytes_from_learner: number;
}

function payloadBytes(payload: Payload | undefined): number {
  if (!payload) return 0;
  const body = payload.body === undefined ? 0 : Buffer.byteLength(JSON.stringify(payload.body));
  return body + (payload.tensors ?? []).reduce((sum, t) => sum + t.data.byteLength, 0);
}

/** The trainer's transport, counting the bytes of every request and reply. */
function counting(transport: Transport, bytes: { sent: number; received: number }): Transport {
  return interceptCalls(transport, async (_to, _method, payload, next) => {
    bytes.sent += payloadBytes(payload);
    const reply = await next();
    bytes.received += payloadBytes(reply);
    return reply;
  });
}

/** A learner transport whose handlers run one at a time, their CPU time added to `cpu.learners`. */
function timedHandlers(transport: Transport, lock: Mutex, cpu: { learners: number }): Transport {
  return new Proxy(transport, {
    get(target, prop) {
      if (prop === 'handle') {
        return (method: string, handler: (p: Payload, c: never) => Payload | Promise<Payload>) =>
          target.handle(method, (payload, ctx) =>
            lock.runExclusive(async () => {
              const start = process.cpuUsage();
              try {
                return await handler(payload, ctx as never);
              } finally {
                const used = process.cpuUsage(start);
                cpu.learners += (used.user + used.system) / 1e6;
              }
            }),
          );
      }
      const value = Reflect.get(target, prop, target) as unknown;
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
}

/** An mlp of about `params` parameters (784 inputs, one hidden layer, 10 classes). */
function modelOf(params: number) {
  const hidden = Math.max(1, Math.round((params - 10) / (784 + 1 + 10)));
  return createModel({ type: 'mlp', args: { hidden: [hidden], seed: 1 } }, { inputShape: [784], numClasses: 10 });
}

async function measure(n: number, params: number, secure: SecureAggregationSettings | undefined): Promise<Row> {
  const hub = new MemoryHub();
  const model = modelOf(params);
  const bytes = { sent: 0, received: 0 };
  const cpu = { learners: 0 };
  const trainerTransport = new MemoryTransport({ hub, nodeId: 'trainer', role: 'trainer' });
  const lock = new Mutex();
  const learners = Array.from({ length: n }, (_, i) => {
    const nodeId = `learner_${String(i).padStart(3, '0')}`;
    const transport = new MemoryTransport({ hub, nodeId, role: 'learner', connectTo: ['trainer'], metadata: scriptedLearnerMetadata(100 + i) });
    const delta = Float32Array.from({ length: model.numParams }, (_, j) => Math.sin(j + i) * 0.01);
    serveScriptedLearner(timedHandlers(transport, lock, cpu), {
      nodeId,
      numSamples: 100 + i,
      layout: model.layout,
      update: (_round, global) => global.map((g, j) => g + delta[j]!),
    });
    return transport;
  });
  await trainerTransport.start();
  const trainer = new Trainer({
    nodeId: 'trainer',
    transport: counting(trainerTransport, bytes),
    model,
    modelSpec: { type: 'mlp', args: {} },
    aggregator: createAggregator({ type: 'fedavg' }),
    settings: { maxRounds: 1, localEpochs: 1, clientFraction: 1, minClients: n, evalEvery: 0, roundTimeoutS: 3600, registrationTimeoutS: 600, secureAggregation: secure },
    seed: 1,
  });
  const run = trainer.run();
  await Promise.all(learners.map((l) => l.start()));
  const cpuBefore = process.cpuUsage();
  const learnerCpuBefore = cpu.learners;
  const summary = await run;
  const used = process.cpuUsage(cpuBefore);
  const [record] = summary.rounds;
  if (!record?.aggregated) throw new Error(`round did not aggregate: ${JSON.stringify(record)}`);
  const learnerCpu = cpu.learners - learnerCpuBefore;
  await Promise.all([...learners, trainerTransport].map((t) => t.stop()));
  model.dispose();
  return {
    transport: 'memory',
    learners: n,
    params: model.numParams,
    secure: secure !== undefined,
    neighbours: secure ? Math.min(secure.neighbours, n - 1) : null,
    round_s: record.duration_s,
    trainer_cpu_s: (used.user + used.system) / 1e6 - learnerCpu,
    learner_cpu_s: learnerCpu / n,
    bytes_to_learner: Math.round(bytes.sent / n),
    bytes_from_learner: Math.round(bytes.received / n),
  };
}

/** utime + stime of a process, in seconds (Linux /proc). */
function processCpu(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** The same round with learner processes over gRPC (scripted updates, real SecAgg+ learner side). */
async function measureGrpc(n: number, params: number, secure: SecureAggregationSettings | undefined): Promise<Row> {
  const model = modelOf(params);
  const bytes = { sent: 0, received: 0 };
  const server = new GrpcTransport({ nodeId: 'trainer', role: 'trainer', listen: { host: '127.0.0.1', port: 0 } });
  await server.start();
  const trainer = new Trainer({
    nodeId: 'trainer',
    transport: counting(server, bytes),
    model,
    modelSpec: { type: 'mlp', args: {} },
    aggregator: createAggregator({ type: 'fedavg' }),
    settings: { maxRounds: 1, localEpochs: 1, clientFraction: 1, minClients: n, evalEvery: 0, roundTimeoutS: 3600, registrationTimeoutS: 600, secureAggregation: secure },
    seed: 1,
  });
  const script = join(import.meta.dirname, '../../tests/faults/test/secagg-learner.ts');
  const children: ChildProcess[] = Array.from({ length: n }, (_, i) =>
    spawn(process.execPath, [...sourceNodeFlags(), script, String(server.boundPort), `learner_${i}`, String(i)], { stdio: 'ignore' }),
  );
  const registered = new Promise<void>((resolve) => {
    const check = () => (server.peers().length >= n ? resolve() : setTimeout(check, 100));
    check();
  });
  await registered;
  const cpuBefore = process.cpuUsage();
  const learnerCpuBefore = children.map((c) => processCpu(c.pid!));
  const summary = await trainer.run();
  const used = process.cpuUsage(cpuBefore);
  const learnerCpu = children.reduce((sum, c, i) => sum + processCpu(c.pid!) - learnerCpuBefore[i]!, 0);
  const [record] = summary.rounds;
  if (!record?.aggregated) throw new Error(`round did not aggregate: ${JSON.stringify(record)}`);
  for (const child of children) child.kill('SIGKILL');
  await server.stop();
  model.dispose();
  return {
    transport: 'grpc',
    learners: n,
    params: model.numParams,
    secure: secure !== undefined,
    neighbours: secure ? Math.min(secure.neighbours, n - 1) : null,
    round_s: record.duration_s,
    trainer_cpu_s: (used.user + used.system) / 1e6,
    learner_cpu_s: learnerCpu / n,
    bytes_to_learner: Math.round(bytes.sent / n),
    bytes_from_learner: Math.round(bytes.received / n),
  };
}

function format(row: Row): string {
  const mb = (b: number) => `${(b / 1e6).toFixed(2)} MB`;
  return (
    `${row.transport.padEnd(6)} ${String(row.learners).padStart(4)} learners  ${String(row.params).padStart(8)} params  ${row.secure ? `secagg k=${row.neighbours}` : 'plain      '}` +
    `  round ${row.round_s.toFixed(2).padStart(7)} s  trainer cpu ${row.trainer_cpu_s.toFixed(2).padStart(7)} s  learner cpu ${row.learner_cpu_s.toFixed(3).padStart(7)} s` +
    `  to learner ${mb(row.bytes_to_learner)}  from learner ${mb(row.bytes_from_learner)}`
  );
}

async function main(): Promise<void> {
  registerBuiltinModels();
  registerBuiltinAggregators();
  await selectBackend('cpu');
  const rows: Row[] = [];
  const loadBefore = loadavg();
  const secure: SecureAggregationSettings = { threshold: 0.7, neighbours: NEIGHBOURS, clipRange: 8, quantizationBits: 32, weighted: true };
  const record = (row: Row) => {
    rows.push(row);
    // With --json the rows also go to stderr as they finish, so a long run that is stopped keeps them.
    if (json) process.stderr.write(`${JSON.stringify(row)}\n`);
    else process.stdout.write(`${format(row)}\n`);
  };
  for (const params of PARAMS) {
    for (const n of GRPC_ONLY ? [] : LEARNERS) for (const settings of [undefined, secure]) record(await measure(n, params, settings));
    if (GRPC > 0) for (const settings of [undefined, secure]) record(await measureGrpc(GRPC, params, settings));
  }
  const result = { load_average_before: loadBefore, load_average_after: loadavg(), cpus: cpus().length, rows };
  if (json) process.stdout.write(`${JSON.stringify(result)}\n`);
  else process.stdout.write(`load average before ${loadBefore.map((l) => l.toFixed(2)).join(' ')}, after ${result.load_average_after.map((l) => l.toFixed(2)).join(' ')}\n`);
}

await main();
