/**
 * Reads deploy/k8s and deploy/k8s-gpu: manifests (by kustomization), kustomizations, patch files, and a small
 * strategic-merge for the GPU overlay's patch.
 */
import { basename, dirname, join, resolve } from 'node:path';
import { deployDir, listFiles, readYamlDocs } from './helpers.js';

/** A Kubernetes object as parsed from YAML; loosely typed on purpose. */
export type Manifest = { apiVersion: string; kind: string; metadata: any; spec?: any; data?: any; [k: string]: any };
/** A container of a pod template. */
export type Container = { name: string; ports?: { name?: string; containerPort: number }[]; [k: string]: any };

/** Kustomize roots under deploy/: the base and the GPU overlay. */
export const K8S_DIRS = ['k8s', 'k8s-gpu'] as const;

/** Everything under deploy/k8s and deploy/k8s-gpu, sorted into manifests, kustomizations and patches. */
export function k8s(): {
  manifests: { file: string; doc: Manifest }[];
  kustomizations: { file: string; doc: any }[];
  patchFiles: string[];
} {
  const files = K8S_DIRS.flatMap((d) => listFiles(join(deployDir, d))).filter((f) => f.endsWith('.yaml'));
  const kustomizations = files
    .filter((f) => basename(f) === 'kustomization.yaml')
    .map((file) => ({ file, doc: readYamlDocs(file)[0] as any }));
  const patchFiles = kustomizations.flatMap(({ file, doc }) =>
    ((doc.patches ?? []) as { path?: string }[]).filter((p) => p.path).map((p) => resolve(dirname(file), p.path!)),
  );
  const manifests = files
    .filter((f) => basename(f) !== 'kustomization.yaml' && !patchFiles.includes(f))
    .flatMap((file) => readYamlDocs(file).map((doc) => ({ file, doc: doc as Manifest })));
  return { manifests, kustomizations, patchFiles };
}

/** Lists Kubernetes merges by `name` in a strategic-merge patch (containers, env, ports, volumes...). */
const isNamedList = (v: unknown): v is { name: string }[] =>
  Array.isArray(v) && v.length > 0 && v.every((x) => x !== null && typeof x === 'object' && typeof (x as any).name === 'string');

/**
 * The subset of strategic-merge-patch semantics kustomize applies to these files: maps merge
 * recursively, lists of named objects merge by `name`, other lists and scalars replace.
 * Returns a new object; `base` is not modified.
 */
export function strategicMerge(base: unknown, patch: unknown): unknown {
  if (isNamedList(base) && isNamedList(patch)) {
    const out = base.map((x) => structuredClone(x));
    for (const item of patch) {
      const i = out.findIndex((x) => x.name === item.name);
      if (i >= 0) out[i] = strategicMerge(out[i], item) as { name: string };
      else out.push(structuredClone(item));
    }
    return out;
  }
  if (base && patch && typeof base === 'object' && typeof patch === 'object' && !Array.isArray(base) && !Array.isArray(patch)) {
    const out: Record<string, unknown> = structuredClone(base as Record<string, unknown>);
    for (const [k, v] of Object.entries(patch)) out[k] = k in out ? strategicMerge(out[k], v) : structuredClone(v);
    return out;
  }
  return structuredClone(patch);
}

/**
 * The environment the kubelet gives `container` in pod `podName` with ordinal `podIndex`:
 * literal values, the downward-API fields the manifests use, and Secret keys (as stand-ins).
 */
export function downwardEnv(container: Container, podName: string, podIndex: number): Record<string, string> {
  const env: Record<string, string> = {};
  for (const e of (container.env ?? []) as any[]) {
    if (typeof e.value === 'string') env[e.name] = e.value;
    else if (e.valueFrom?.fieldRef) {
      const path: string = e.valueFrom.fieldRef.fieldPath;
      if (path === 'metadata.name') env[e.name] = podName;
      else if (path === "metadata.labels['apps.kubernetes.io/pod-index']") env[e.name] = String(podIndex);
      else throw new Error(`env ${e.name}: downward API field ${path} is not simulated by this test`);
    } else if (e.valueFrom?.secretKeyRef) {
      // The Secret is created by the operator, not shipped: a stand-in value of the same shape.
      const ref = e.valueFrom.secretKeyRef;
      env[e.name] = `secret-${ref.name}-${ref.key}`;
    } else throw new Error(`env ${e.name}: neither value nor fieldRef`);
  }
  return env;
}
