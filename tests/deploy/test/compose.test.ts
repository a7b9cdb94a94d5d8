import { existsSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parse } from 'yaml';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { composeDir, composeFile, configMountSource, parseVolume } from './compose.js';
import { repoRoot } from './helpers.js';

const compose = composeFile();
const services: Record<string, any> = compose.services;
/** The raw (pre-interpolation) node config a service mounts. */
const nodeConfig = (name: string) => parse(readFileSync(configMountSource(name, services[name]), 'utf8'));
const healthcheckUrl = (svc: any) => /fetch\('http:\/\/127\.0\.0\.1:(\d+)(\/[a-z]+)'\)/.exec(svc.healthcheck.test.join(' '));

describe('docker-compose.yml', () => {
  it('runs a trainer, two CPU learners and one GPU learner', () => {
    expect(Object.keys(services).sort()).toEqual(['learner-0', 'learner-1', 'learner-gpu', 'trainer']);
  });

  it('builds every image from the repository root with a Dockerfile that exists', () => {
    for (const [name, svc] of Object.entries(services)) {
      expect(svc.image, name).toBeTruthy();
      const context = resolve(composeDir, svc.build.context);
      expect(context, name).toBe(repoRoot);
      expect(statSync(join(context, svc.build.dockerfile)).isFile(), `${name}: ${svc.build.dockerfile}`).toBe(true);
    }
    expect(services['learner-gpu'].build.dockerfile).toBe('deploy/docker/Dockerfile.cuda');
    for (const n of ['trainer', 'learner-0', 'learner-1']) expect(services[n].build.dockerfile).toBe('deploy/docker/Dockerfile');
  });

  it('mounts each node config read-only at /config/node.yaml from a file that exists, and declares its volumes', () => {
    const declared = new Set(Object.keys(compose.volumes ?? {}));
    const configs = new Set<string>();
    for (const [name, svc] of Object.entries(services)) {
      for (const v of (svc.volumes as string[]).map(parseVolume)) {
        if (v.bind) {
          expect(existsSync(resolve(composeDir, v.source)), `${name}: ${v.source}`).toBe(true);
          expect(v.mode, `${name}: ${v.source} must be read-only`).toBe('ro');
        } else {
          expect(declared.has(v.source), `${name}: volume ${v.source} not declared`).toBe(true);
        }
      }
      configs.add(configMountSource(name, svc));
    }
    expect(configs.size, 'one config file per service').toBe(Object.keys(services).length);
  });

  it('publishes the trainer gRPC, metrics and health ports, matching its config', () => {
    const cfg = nodeConfig('trainer');
    const wanted = [cfg.listen.port, cfg.metrics.port, cfg.health.port];
    expect(wanted).toEqual([50051, 9090, 8080]);
    expect(services.trainer.ports.map(String).sort()).toEqual(wanted.map((p: number) => `${p}:${p}`).sort());
    for (const n of ['learner-0', 'learner-1', 'learner-gpu']) expect(services[n].ports, n).toBeUndefined();
  });

  it('reserves one NVIDIA GPU for the GPU learner only', () => {
    expect(services['learner-gpu'].deploy.resources.reservations.devices).toEqual([
      { driver: 'nvidia', count: 1, capabilities: ['gpu'] },
    ]);
    for (const n of ['trainer', 'learner-0', 'learner-1']) {
      expect(services[n].deploy?.resources?.reservations?.devices, n).toBeUndefined();
    }
    expect(nodeConfig('learner-gpu').learner.args.device).toBe('cuda:0');
  });

  it('health-checks every service on its config health port at /health', () => {
    for (const name of Object.keys(services)) {
      const m = healthcheckUrl(services[name]);
      expect(m, name).not.toBeNull();
      const cfg = nodeConfig(name);
      expect(cfg.health.enabled, name).toBe(true);
      expect(Number(m![1]), name).toBe(cfg.health.port);
      expect(m![2], name).toBe('/health');
    }
  });

  it('starts learners once the trainer is healthy, dialling it by service name and port', () => {
    const trainerPort = nodeConfig('trainer').listen.port;
    for (const n of ['learner-0', 'learner-1', 'learner-gpu']) {
      expect(services[n].depends_on, n).toEqual({ trainer: { condition: 'service_healthy' } });
      const [target] = nodeConfig(n).connect_to as string[];
      const m = /^trainer@\$\{TRAINER_HOST:([^}]+)\}:(\d+)$/.exec(target!);
      expect(m, `${n}: ${target}`).not.toBeNull();
      expect(services[n].environment.TRAINER_HOST ?? m![1]).toBe('trainer');
      expect(m![1]).toBe('trainer');
      expect(Number(m![2])).toBe(trainerPort);
    }
  });
});
