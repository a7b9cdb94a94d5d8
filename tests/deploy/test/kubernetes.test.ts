import { ConfigMap } from 'kubernetes-models/v1/ConfigMap';
import { Service } from 'kubernetes-models/v1/Service';
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { StatefulSet } from 'kubernetes-models/apps/v1/StatefulSet';
import { existsSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { describe, expect, it } from 'vitest';
import { deployDir, listFiles, readYaml, readYamlDocs, rel } from './helpers.js';
import { K8S_DIRS, k8s, strategicMerge, type Container, type Manifest } from './k8s.js';

/** Schema-checked models by `apiVersion/kind`; a manifest of another kind fails until added here. */
const MODELS: Record<string, new (data: any) => { validate(): void }> = {
  'v1/ConfigMap': ConfigMap,
  'v1/Service': Service,
  'apps/v1/Deployment': Deployment,
  'apps/v1/StatefulSet': StatefulSet,
};

function validate(m: Manifest, where: string): void {
  const Model = MODELS[`${m.apiVersion}/${m.kind}`];
  if (!Model) throw new Error(`${where}: no schema model for apiVersion ${m.apiVersion} kind ${m.kind}`);
  try {
    new Model(m).validate();
  } catch (err) {
    throw new Error(`${where}: ${m.kind} ${m.metadata?.name}: ${(err as Error).message}`);
  }
}

const podSpec = (m: Manifest) => m.spec.template.spec;
const containerPort = (c: Container, port: number | string): number => {
  if (typeof port === 'number') return port;
  const found = c.ports?.find((p) => p.name === port);
  if (!found) throw new Error(`container ${c.name} has no port named ${port}`);
  return found.containerPort;
};

describe('Kubernetes manifests', () => {
  const { manifests, kustomizations, patchFiles } = k8s();

  it.each(manifests.map((m) => [`${rel(m.file)} ${m.doc.kind}`, m]))('%s validates against the Kubernetes schema', (_n, m) => {
    validate(m.doc, rel(m.file));
  });

  it('are namespace-less and labelled app.kubernetes.io/name=oiafed', () => {
    for (const { doc, file } of manifests) {
      expect(doc.metadata.namespace, rel(file)).toBeUndefined();
      expect(doc.metadata.labels?.['app.kubernetes.io/name'], rel(file)).toBe('oiafed');
    }
  });

  it('every kustomization lists exactly the manifests of its folder, and its bases and patches exist', () => {
    expect(kustomizations.map((k) => rel(k.file)).sort()).toEqual(['deploy/k8s-gpu/kustomization.yaml', 'deploy/k8s/kustomization.yaml']);
    for (const { file, doc } of kustomizations) {
      const dir = dirname(file);
      expect(doc.apiVersion).toBe('kustomize.config.k8s.io/v1beta1');
      expect(doc.kind).toBe('Kustomization');
      const resources: string[] = doc.resources ?? [];
      for (const r of resources) {
        const target = resolve(dir, r);
        expect(existsSync(target), `${rel(file)}: resource ${r}`).toBe(true);
        if (!r.endsWith('.yaml')) {
          expect(existsSync(join(target, 'kustomization.yaml')), `${rel(file)}: base ${r}`).toBe(true);
          // kustomize refuses a base folder that contains the overlay ("cycle detected").
          const up = relative(target, dir);
          expect(up === '..' || up.startsWith(`..${sep}`), `${rel(file)}: base ${r} contains the overlay`).toBe(true);
        } else {
          // Plain files must sit inside the kustomization root (LoadRestrictionsRootOnly).
          expect(relative(dir, target).startsWith('..'), `${rel(file)}: ${r} is outside its root`).toBe(false);
        }
      }
      const local = manifests.filter((m) => dirname(m.file) === dir).map((m) => m.file.slice(dir.length + 1));
      expect(resources.filter((r) => r.endsWith('.yaml')).sort(), rel(file)).toEqual([...new Set(local)].sort());
      for (const p of doc.patches ?? []) expect(existsSync(resolve(dir, p.path)), `${rel(file)}: patch ${p.path}`).toBe(true);
    }
  });

  it('workload selectors match their pod templates, and each Service selects one workload', () => {
    const workloads = manifests.filter((m) => m.doc.kind === 'Deployment' || m.doc.kind === 'StatefulSet');
    expect(workloads.map((w) => `${w.doc.kind}/${w.doc.metadata.name}`).sort()).toEqual([
      'Deployment/oiafed-trainer',
      'StatefulSet/oiafed-learner',
    ]);
    for (const w of workloads) {
      const labels = w.doc.spec.template.metadata.labels;
      for (const [k, v] of Object.entries(w.doc.spec.selector.matchLabels)) expect(labels[k], `${w.doc.metadata.name} ${k}`).toBe(v);
    }
    for (const s of manifests.filter((m) => m.doc.kind === 'Service')) {
      const selected = workloads.filter((w) =>
        Object.entries(s.doc.spec.selector).every(([k, v]) => w.doc.spec.template.metadata.labels[k] === v),
      );
      expect(selected.length, `Service ${s.doc.metadata.name}`).toBe(1);
      const container = podSpec(selected[0]!.doc).containers[0]!;
      for (const port of s.doc.spec.ports) {
        expect(() => containerPort(container, port.targetPort), `Service ${s.doc.metadata.name} port ${port.name}`).not.toThrow();
        expect(containerPort(container, port.targetPort), `Service ${s.doc.metadata.name} port ${port.name}`).toBe(port.port);
      }
    }
  });

  it('the trainer is one replica behind a Service exposing grpc 50051, metrics 9090 and health 8080', () => {
    const trainer = manifests.find((m) => m.doc.kind === 'Deployment')!.doc;
    expect(trainer.spec.replicas).toBe(1);
    expect(trainer.spec.strategy.type).toBe('Recreate');
    const svc = manifests.find((m) => m.doc.kind === 'Service' && m.doc.metadata.name === 'oiafed-trainer')!.doc;
    expect(Object.fromEntries(svc.spec.ports.map((p: any) => [p.name, p.port]))).toEqual({ grpc: 50051, metrics: 9090, health: 8080 });
    // Learners must reach a trainer that is not "ready" yet in order to register at all.
    expect(svc.spec.publishNotReadyAddresses).toBe(true);
  });

  it('the learner StatefulSet is governed by a headless Service and takes NODE_ID/PARTITION_ID from the downward API', () => {
    const sts = manifests.find((m) => m.doc.kind === 'StatefulSet')!.doc;
    expect(sts.spec.replicas).toBe(4);
    const headless = manifests.find((m) => m.doc.kind === 'Service' && m.doc.metadata.name === sts.spec.serviceName);
    expect(headless, `Service ${sts.spec.serviceName}`).toBeDefined();
    expect(headless!.doc.spec.clusterIP).toBe('None');
    const env = new Map<string, any>(podSpec(sts).containers[0].env.map((e: any) => [e.name, e]));
    expect(env.get('NODE_ID').valueFrom.fieldRef.fieldPath).toBe('metadata.name');
    expect(env.get('PARTITION_ID').valueFrom.fieldRef.fieldPath).toBe("metadata.labels['apps.kubernetes.io/pod-index']");
    expect(Number(env.get('NUM_PARTITIONS').value)).toBe(sts.spec.replicas);
    expect(env.get('TRAINER_HOST').value).toBe('oiafed-trainer');
    const trainer = manifests.find((m) => m.doc.kind === 'Deployment')!.doc;
    const minClients = podSpec(trainer).containers[0].env.find((e: any) => e.name === 'MIN_CLIENTS');
    expect(Number(minClients.value)).toBeLessThanOrEqual(sts.spec.replicas);
  });

  it('both node configs take the bearer token from the Secret oiafed-auth, never from a literal', () => {
    const cm = manifests.find((m) => m.doc.kind === 'ConfigMap')!.doc;
    for (const key of ['trainer.yaml', 'learner.yaml']) expect(cm.data[key], key).toMatch(/^ +auth_token: \$\{OIAFED_AUTH_TOKEN\}$/m);
    for (const kind of ['Deployment', 'StatefulSet']) {
      const w = manifests.find((m) => m.doc.kind === kind)!.doc;
      const token = podSpec(w).containers[0].env.find((e: any) => e.name === 'OIAFED_AUTH_TOKEN');
      expect(token?.valueFrom?.secretKeyRef, kind).toEqual({ name: 'oiafed-auth', key: 'token' });
    }
  });

  it('containers mount the ConfigMap at /config and run a file it holds', () => {
    const cm = manifests.find((m) => m.doc.kind === 'ConfigMap')!.doc;
    expect(Object.keys(cm.data).sort()).toEqual(['learner.yaml', 'trainer.yaml']);
    const expected: Record<string, string> = { Deployment: 'trainer.yaml', StatefulSet: 'learner.yaml' };
    for (const w of manifests.filter((m) => m.doc.kind in expected)) {
      const spec = podSpec(w.doc);
      const c = spec.containers[0]!;
      const vol = spec.volumes.find((v: any) => v.configMap?.name === cm.metadata.name);
      expect(vol, w.doc.metadata.name).toBeDefined();
      const mount = c.volumeMounts.find((m: any) => m.name === vol.name);
      expect(mount.mountPath).toBe('/config');
      expect(mount.readOnly).toBe(true);
      const args: string[] = c.args;
      expect(args[0]).toBe('run');
      expect(args[args.indexOf('--config') + 1]).toBe(`/config/${expected[w.doc.kind]}`);
    }
  });

  it('every container has resource requests and limits, and runs as non-root', () => {
    for (const w of manifests.filter((m) => m.doc.spec?.template)) {
      const spec = podSpec(w.doc);
      expect(spec.securityContext.runAsNonRoot, w.doc.metadata.name).toBe(true);
      for (const c of spec.containers) {
        expect(Object.keys(c.resources.requests).sort()).toEqual(['cpu', 'memory']);
        expect(Object.keys(c.resources.limits).sort()).toEqual(['cpu', 'memory']);
        expect(c.securityContext.allowPrivilegeEscalation).toBe(false);
      }
    }
  });

  it('the GPU overlay patch turns the learners into CUDA pods with one nvidia.com/gpu each', () => {
    expect(patchFiles.map(rel)).toEqual(['deploy/k8s-gpu/learner-gpu-patch.yaml']);
    const base = manifests.find((m) => m.doc.kind === 'StatefulSet')!.doc;
    const patch = readYaml(patchFiles[0]!);
    const gpu = strategicMerge(base, patch) as Manifest;
    validate(gpu, rel(patchFiles[0]!));
    const c = podSpec(gpu).containers[0]!;
    expect(c.image).toMatch(/^oiafed-ts-cuda:/);
    expect(c.resources.limits['nvidia.com/gpu']).toBe(1);
    expect(c.resources.requests['nvidia.com/gpu']).toBe(1);
    const env = Object.fromEntries(c.env.map((e: any) => [e.name, e.value ?? e.valueFrom.fieldRef?.fieldPath ?? e.valueFrom.secretKeyRef?.name]));
    expect(env.OIAFED_DEVICE).toBe('cuda:0');
    expect(env.NODE_ID).toBe('metadata.name');
    expect(env.PARTITION_ID).toBe("metadata.labels['apps.kubernetes.io/pod-index']");
    expect(c.ports, 'ports survive the merge').toHaveLength(3);
    // The base stays untouched.
    expect(podSpec(base).containers[0].image).toMatch(/^oiafed-ts:/);
  });

  it('every YAML file under the kustomize roots is a manifest, a kustomization or a patch', () => {
    const all = K8S_DIRS.flatMap((d) => listFiles(join(deployDir, d))).filter((f) => /\.ya?ml$/.test(f));
    const seen = new Set([...manifests.map((m) => m.file), ...kustomizations.map((k) => k.file), ...patchFiles]);
    expect(all.filter((f) => !seen.has(f)).map(rel)).toEqual([]);
    for (const f of all) expect(readYamlDocs(f).length).toBeGreaterThan(0);
  });
});
