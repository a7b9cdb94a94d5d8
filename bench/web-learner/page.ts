// Browser side of bench:web (bundled by run.ts): the page picks a backend and runs the workload.
import { pickBackend, type WebBackend } from '@oiafed/web-learner';
import { runWorkload, type Workload } from './workload.js';

(globalThis as { benchTrain?: unknown }).benchTrain = async (backend: WebBackend, w: Workload) => {
  const picked = await pickBackend({ order: [backend], wasmPath: '/assets/' });
  return { backend: picked.backend, ...(await runWorkload(w)) };
};
