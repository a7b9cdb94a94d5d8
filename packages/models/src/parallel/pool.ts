/**
 * The workers of data-parallel training: `size` worker threads, each with its own tfjs engine and
 * wasm backend (patched kernels) and a replica of one model. Weights go out through one shared
 * vector, each worker's shard result comes back through its own shared vector, so a step moves
 * no tensor data through messages; the data set is shared once per training call.
 */
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { blasStatus } from '../blas/openblas.js';
import type { DataSource } from '../types.js';
import type { EvalMessage, StepMessage, TrainMessage, WorkerInit, WorkerMessage } from './protocol.js';
import type { ShardOutcome } from './shard.js';

/** Where the worker entry lives: `worker.js` next to this file in a build, `worker.ts` from sources. */
function workerEntry(): URL {
  const fromSources = import.meta.url.endsWith('.ts');
  const target = new URL(`./worker.${fromSources ? 'ts' : 'js'}`, import.meta.url);
  if (!fromSources) return target;
  // Node cannot load TypeScript in a worker by itself, and `--import tsx` in a worker's execArgv
  // is ignored (loader hooks are per process): register tsx's loader inside the worker first. It
  // is resolved from this file's location, so the cwd does not matter.
  const tsxDir = dirname(createRequire(import.meta.url).resolve('tsx/package.json'));
  const api = pathToFileURL(join(tsxDir, 'dist/esm/api/index.mjs')).href;
  const boot = `import { register } from ${JSON.stringify(api)}; register(); await import(${JSON.stringify(target.href)});`;
  return new URL(`data:text/javascript,${encodeURIComponent(boot)}`);
}

interface Pending {
  resolve: (m: WorkerMessage) => void;
  reject: (e: Error) => void;
}

// One shared copy per data set (keyed by its features array), reused across training calls.
const sharedCopies = new WeakMap<Float32Array, DataSource>();

/** `data` with its arrays in shared memory (copied once per data set unless they already are). */
export function sharedData(data: DataSource): DataSource {
  const isShared = data.features.buffer instanceof SharedArrayBuffer && data.labels.buffer instanceof SharedArrayBuffer;
  const cached = isShared ? undefined : sharedCopies.get(data.features);
  if (cached !== undefined && cached.length === data.length) return cached;
  const copy = <T extends Float32Array | Int32Array>(a: T, make: (b: SharedArrayBuffer) => T): T => {
    if (a.buffer instanceof SharedArrayBuffer) return a;
    const out = make(new SharedArrayBuffer(a.byteLength));
    out.set(a);
    return out;
  };
  const shared: DataSource = {
    features: copy(data.features, (b) => new Float32Array(b)),
    labels: copy(data.labels, (b) => new Int32Array(b)),
    sampleShape: [...data.sampleShape],
    numClasses: data.numClasses,
    length: data.length,
  };
  if (!isShared) sharedCopies.set(data.features, shared);
  return shared;
}

export class TrainWorkerPool {
  /** The flat weights every worker loads before a step (the main thread writes them). */
  readonly weights: Float32Array;
  /** Per worker: its last shard's gradient and statistics, in the flat layout. */
  readonly outs: Float32Array[];
  private readonly workers: Worker[];
  private readonly pending: Array<Pending | undefined>;
  private data?: DataSource;
  private failure?: Error;

  private constructor(workers: Worker[], weights: Float32Array, outs: Float32Array[]) {
    this.workers = workers;
    this.weights = weights;
    this.outs = outs;
    this.pending = workers.map(() => undefined);
    workers.forEach((w, i) => this.listen(w, i));
  }

  /** Starts `size` workers with replicas of the model whose topology is `modelJson`. */
  static async start(modelJson: string, numParams: number, size: number): Promise<TrainWorkerPool> {
    const weightsBuf = new SharedArrayBuffer(numParams * 4);
    const outBufs = Array.from({ length: size }, () => new SharedArrayBuffer(numParams * 4));
    const entry = workerEntry();
    // The workers take this thread's kernel path (learner.args.blas may have turned OpenBLAS off here).
    const blas = blasStatus().active;
    const workers = outBufs.map((out) => new Worker(entry, { workerData: { modelJson, weights: weightsBuf, out, blas } satisfies WorkerInit }));
    const cleanups: Array<() => void> = [];
    const ready = workers.map(
      (w) =>
        new Promise<void>((resolve, reject) => {
          const onMessage = (m: WorkerMessage): void => (m.type === 'ready' ? resolve() : reject(new Error(m.type === 'error' ? m.message : 'unexpected message')));
          const onExit = (code: number): void => reject(new Error(`training worker exited with code ${code} while starting`));
          w.once('message', onMessage).once('error', reject).once('exit', onExit);
          // Only our own listeners: Worker keeps internal ones (removeAllListeners would stop its messages).
          cleanups.push(() => w.off('message', onMessage).off('error', reject).off('exit', onExit));
        }),
    );
    try {
      await Promise.all(ready);
    } catch (err) {
      await Promise.all(workers.map((w) => w.terminate()));
      throw new Error(`data-parallel training: a worker failed to start (${err instanceof Error ? err.message : String(err)})`, { cause: err });
    }
    for (const cleanup of cleanups) cleanup();
    return new TrainWorkerPool(workers, new Float32Array(weightsBuf), outBufs.map((b) => new Float32Array(b)));
  }

  get size(): number {
    return this.workers.length;
  }

  /** Hands the workers `data` (in shared memory) unless they already hold it. */
  setData(data: DataSource): void {
    const shared = sharedData(data);
    if (shared === this.data) return;
    this.data = shared;
    for (const w of this.workers) w.postMessage({ type: 'data', data: shared });
  }

  /** Runs `steps[i]` on worker i (they start at once); resolves with each shard's outcome, in order. */
  async run(steps: StepMessage[]): Promise<ShardOutcome[]> {
    const replies = await Promise.all(steps.map((step, i) => this.send(i, step)));
    return replies.map((m) => (m.type === 'done' ? { loss: m.loss, correct: m.correct } : { loss: NaN, correct: 0 }));
  }

  /** A whole training run on worker `i` (which must be idle); resolves with its weights and result. */
  async train(i: number, msg: TrainMessage): Promise<Extract<WorkerMessage, { type: 'trained' }>> {
    const reply = await this.send(i, msg);
    if (reply.type !== 'trained') throw new Error(`training worker ${i}: unexpected reply ${reply.type}`);
    return reply;
  }

  /** Evaluations of ranges, `ranges[i]` on worker i; resolves with each range's loss sum and correct count, in order. */
  async evaluate(ranges: EvalMessage[]): Promise<Array<{ lossSum: number; correct: number }>> {
    const replies = await Promise.all(ranges.map((msg, i) => this.send(i, msg)));
    return replies.map((m) => (m.type === 'evaluated' ? { lossSum: m.lossSum, correct: m.correct } : { lossSum: NaN, correct: 0 }));
  }

  private send(i: number, msg: StepMessage | TrainMessage | EvalMessage): Promise<WorkerMessage> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise<WorkerMessage>((resolve, reject) => {
      this.pending[i] = { resolve, reject };
      this.workers[i].postMessage(msg);
    });
  }

  /** While training runs the workers keep the process alive; between calls they must not. */
  hold(held: boolean): void {
    for (const w of this.workers) {
      if (held) w.ref();
      else w.unref();
    }
  }

  async close(): Promise<void> {
    this.failure ??= new Error('data-parallel training: the worker pool is closed');
    await Promise.all(this.workers.map((w) => w.terminate()));
  }

  private listen(w: Worker, i: number): void {
    const settle = (fn: (p: Pending) => void): void => {
      const p = this.pending[i];
      this.pending[i] = undefined;
      if (p) fn(p);
    };
    w.on('message', (m: WorkerMessage) => {
      if (m.type === 'done' || m.type === 'trained' || m.type === 'evaluated') settle((p) => p.resolve(m));
      else if (m.type === 'error') settle((p) => p.reject(new Error(`training worker ${i}: ${m.message}`)));
    });
    const fail = (err: Error): void => {
      this.failure ??= err;
      this.pending.forEach((_, j) => {
        const p = this.pending[j];
        this.pending[j] = undefined;
        p?.reject(err);
      });
    };
    w.on('error', (err) => fail(new Error(`training worker ${i} failed: ${err.message}`, { cause: err })));
    w.on('exit', (code) => fail(new Error(`training worker ${i} exited (code ${code})`)));
  }
}
