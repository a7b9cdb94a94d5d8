/**
 * The metrics a node really exports, read from @oiafed/tracker's registry rather than from a
 * list kept here, so the dashboard test fails when a metric is renamed there.
 */
import { createNodeMetrics } from '@oiafed/tracker';

/** Exported metric families and their types, plus every label name they carry. */
export interface ExportedMetrics {
  types: Map<string, string>;
  labels: Set<string>;
}

/** Renders a trainer's and a learner's registries with every labelled series set once. */
export async function exportedMetrics(): Promise<ExportedMetrics> {
  const types = new Map<string, string>();
  const labels = new Set<string>();
  for (const role of ['trainer', 'learner']) {
    const m = createNodeMetrics({ nodeId: `${role}-0`, role });
    m.updatesRejected.inc({ reason: 'timeout' });
    m.localTrainSeconds.observe({ learner: 'learner-0' }, 1);
    m.localSamplesPerSecond.set({ learner: 'learner-0' }, 100);
    m.setComputeBackend('wasm', 'cpu');
    const text = await m.render();
    for (const line of text.split('\n')) {
      const type = /^# TYPE (\S+) (\S+)$/.exec(line);
      if (type) types.set(type[1]!, type[2]!);
      else if (line && !line.startsWith('#')) {
        const body = /^[^{\s]+\{([^}]*)\}/.exec(line)?.[1] ?? '';
        for (const pair of body.matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="/g)) labels.add(pair[1]!);
      }
    }
  }
  return { types, labels };
}

/** Series names PromQL may select: counters and gauges as-is, histograms as _bucket/_sum/_count. */
export function queryable(types: Map<string, string>): Set<string> {
  const out = new Set<string>();
  for (const [name, type] of types) {
    if (type === 'histogram' || type === 'summary') for (const s of ['_bucket', '_sum', '_count']) out.add(name + s);
    else out.add(name);
  }
  return out;
}
