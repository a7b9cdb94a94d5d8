import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { composeDir, composeFile, configMountSource, parseVolume } from './compose.js';
import { deployDir, readYaml } from './helpers.js';
import { k8s } from './k8s.js';

const overlay = readYaml(join(composeDir, 'docker-compose.monitoring.yml'));
const prometheus = readYaml(join(deployDir, 'prometheus/prometheus.yml'));

describe('Prometheus scraping', () => {
  it('the compose scrape config targets every compose node on its config metrics port', () => {
    const services = composeFile().services as Record<string, any>;
    const job = prometheus.scrape_configs.find((j: any) => j.job_name === 'oiafed');
    expect(job.metrics_path).toBe('/metrics');
    const targets: string[] = job.static_configs.flatMap((s: any) => s.targets);
    const expected = Object.entries(services).map(([name, svc]) => {
      const cfg = parse(readFileSync(configMountSource(name, svc), 'utf8'));
      expect(cfg.metrics.enabled, name).toBe(true);
      return `${name}:${cfg.metrics.port}`;
    });
    expect(targets.sort()).toEqual(expected.sort());
  });

  it('pod annotations point Prometheus at the config metrics port and path', () => {
    const { manifests } = k8s();
    const cm = manifests.find((m) => m.doc.kind === 'ConfigMap')!.doc;
    const file: Record<string, string> = { Deployment: 'trainer.yaml', StatefulSet: 'learner.yaml' };
    for (const w of manifests.filter((m) => m.doc.kind in file)) {
      const cfg = parse(cm.data[file[w.doc.kind]!]);
      const a = w.doc.spec.template.metadata.annotations;
      expect(a['prometheus.io/scrape']).toBe('true');
      expect(a['prometheus.io/path']).toBe('/metrics');
      expect(Number(a['prometheus.io/port'])).toBe(cfg.metrics.port);
      const c = w.doc.spec.template.spec.containers[0];
      expect(c.ports.find((p: any) => p.name === 'metrics').containerPort).toBe(cfg.metrics.port);
    }
  });

  it('probes hit /health (liveness, startup) and /ready (readiness) on the config health port', () => {
    const { manifests } = k8s();
    const cm = manifests.find((m) => m.doc.kind === 'ConfigMap')!.doc;
    const file: Record<string, string> = { Deployment: 'trainer.yaml', StatefulSet: 'learner.yaml' };
    for (const w of manifests.filter((m) => m.doc.kind in file)) {
      const cfg = parse(cm.data[file[w.doc.kind]!]);
      expect(cfg.health.enabled).toBe(true);
      const c = w.doc.spec.template.spec.containers[0];
      const port = (p: number | string) => (typeof p === 'number' ? p : c.ports.find((x: any) => x.name === p).containerPort);
      for (const [probe, path] of [['livenessProbe', '/health'], ['startupProbe', '/health'], ['readinessProbe', '/ready']] as const) {
        expect(c[probe].httpGet.path, `${w.doc.metadata.name} ${probe}`).toBe(path);
        expect(port(c[probe].httpGet.port), `${w.doc.metadata.name} ${probe}`).toBe(cfg.health.port);
      }
      const grpc = c.ports.find((p: any) => p.name === 'grpc').containerPort;
      expect(grpc).toBe(cfg.listen.port);
    }
  });
});

describe('docker-compose.monitoring.yml', () => {
  it('adds prometheus and grafana whose mounted files exist', () => {
    expect(Object.keys(overlay.services).sort()).toEqual(['grafana', 'prometheus']);
    for (const [name, svc] of Object.entries<any>(overlay.services)) {
      for (const v of (svc.volumes as string[]).map(parseVolume)) {
        if (v.bind) expect(existsSync(resolve(composeDir, v.source)), `${name}: ${v.source}`).toBe(true);
        else expect(Object.keys(overlay.volumes)).toContain(v.source);
      }
    }
  });

  it('does not collide with the trainer ports on the host', () => {
    const base = composeFile().services.trainer.ports.map((p: string) => p.split(':')[0]);
    const extra = Object.values<any>(overlay.services).flatMap((s) => s.ports.map((p: string) => p.split(':')[0]));
    for (const p of extra) expect(base).not.toContain(p);
  });

  it('provisions the dashboard folder Grafana reads and the Prometheus datasource', () => {
    const grafana = overlay.services.grafana;
    const mounts = (grafana.volumes as string[]).map(parseVolume);
    const dash = mounts.find((m) => m.source.endsWith('oiafed-dashboard.json'))!;
    const provider = readYaml(join(deployDir, 'grafana/provisioning/dashboards/oiafed.yaml')).providers[0];
    expect(dash.target.startsWith(`${provider.options.path}/`)).toBe(true);
    const ds = readYaml(join(deployDir, 'grafana/provisioning/datasources/prometheus.yaml')).datasources[0];
    expect(ds.type).toBe('prometheus');
    expect(ds.url).toBe('http://prometheus:9090');
  });
});
