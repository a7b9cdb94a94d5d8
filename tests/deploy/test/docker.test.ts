import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { declaredBins, deployDir, finalStage, parseDockerfile, repoRoot, type DockerInstruction } from './helpers.js';

const dockerDir = join(deployDir, 'docker');
const dockerfiles = ['Dockerfile', 'Dockerfile.cuda'] as const;
const read = (name: string) => parseDockerfile(readFileSync(join(dockerDir, name), 'utf8'));
const one = (list: DockerInstruction[], keyword: string) => {
  const found = list.filter((i) => i.keyword === keyword);
  if (found.length !== 1) throw new Error(`expected one ${keyword} in the final stage, found ${found.length}`);
  return found[0]!;
};
/** Ports every node config under deploy/ serves on (gRPC listen of the trainer, metrics, health). */
const configPorts = () => {
  const trainer = parse(readFileSync(join(deployDir, 'compose/configs/trainer.yaml'), 'utf8'));
  const cm = parse(readFileSync(join(deployDir, 'k8s/configmap.yaml'), 'utf8'));
  const k8sTrainer = parse(cm.data['trainer.yaml']);
  expect(k8sTrainer.listen.port).toBe(trainer.listen.port);
  return { grpc: trainer.listen.port as number, metrics: trainer.metrics.port as number, health: trainer.health.port as number };
};
/** Maps an in-image path under /app to the repository path it was built from. */
const repoPath = (imagePath: string) => {
  expect(imagePath.startsWith('/app/'), imagePath).toBe(true);
  return join(repoRoot, imagePath.slice('/app/'.length));
};

describe.each(dockerfiles)('%s', (name) => {
  const all = read(name);
  const final = finalStage(all);

  it('parses into stages, the last one being the runtime', () => {
    expect(all.filter((i) => i.keyword === 'FROM').length).toBeGreaterThanOrEqual(2);
    expect(all.find((i) => i.keyword === 'FROM' && i.stage === final[0]!.stage)!.raw).toMatch(/ AS runtime$/);
  });

  it('installs with npm ci, builds, and prunes dev dependencies', () => {
    const runs = all.filter((i) => i.keyword === 'RUN').map((i) => i.raw);
    expect(runs.some((r) => /\bnpm ci\b/.test(r))).toBe(true);
    expect(runs.some((r) => /\bnpm run build\b/.test(r))).toBe(true);
    expect(runs.some((r) => /\bnpm prune --omit=dev\b/.test(r))).toBe(true);
  });

  it('runs as a non-root user', () => {
    const user = one(final, 'USER').raw;
    expect(['root', '0']).not.toContain(user.split(':')[0]);
  });

  it('EXPOSEs exactly the gRPC, metrics and health ports of the configs', () => {
    const ports = one(final, 'EXPOSE').raw.split(/\s+/).map((p) => Number(p.replace(/\/tcp$/, '')));
    const c = configPorts();
    expect(ports.sort()).toEqual([c.grpc, c.metrics, c.health].sort());
  });

  it('ENTRYPOINT runs a bin declared in apps/*/package.json, CMD runs the mounted config', () => {
    const entry = one(final, 'ENTRYPOINT').exec!;
    expect(entry, 'exec form').toBeDefined();
    // tini as PID 1 in front of the program.
    const program = entry[0] === '/usr/bin/tini' ? entry.slice(entry.indexOf('--') + 1) : entry;
    const bins = declaredBins();
    if (program[0] === 'node') {
      expect([...bins.values()]).toContain(repoPath(program[1]!));
      expect(program[1]).toBe('/app/apps/cli/dist/main.js');
    } else {
      expect([...bins.keys()]).toContain(program[0]);
    }
    expect(one(final, 'CMD').exec).toEqual(['run', '--config', '/config/node.yaml']);
  });

  it('puts oiafed, oiafed-trainer and oiafed-learner on PATH, each pointing at its declared bin', () => {
    const wrapper = final.find((i) => i.keyword === 'RUN' && i.raw.includes('/usr/local/bin/'))!;
    const pairs = [...wrapper.raw.matchAll(/\b(oiafed[a-z-]*):([a-z]+)\b/g)].map((m) => [m[1]!, m[2]!] as const);
    const bins = declaredBins();
    expect(pairs.map(([bin]) => bin).sort()).toEqual([...bins.keys()].sort());
    for (const [bin, app] of pairs) expect(bins.get(bin)).toBe(join(repoRoot, 'apps', app, 'dist/main.js'));
  });

  it('HEALTHCHECK fetches /health on the config health port', () => {
    const hc = one(final, 'HEALTHCHECK');
    const script = hc.exec!.join(' ');
    expect(script).toContain("+'/health'");
    const fallback = /OIAFED_HEALTH_PORT\|\|(\d+)/.exec(script);
    expect(Number(fallback![1])).toBe(configPorts().health);
    const env = final.filter((i) => i.keyword === 'ENV').map((i) => i.raw).join(' ');
    expect(env).toMatch(new RegExp(`OIAFED_HEALTH_PORT=${configPorts().health}\\b`));
  });

  it('copies into the runtime only repository paths that exist and the .dockerignore keeps', () => {
    const rules = readFileSync(join(dockerDir, `${name}.dockerignore`), 'utf8').split('\n').map((l) => l.trim());
    const copies = final.filter((i) => i.keyword === 'COPY' && /--from=(build|gpu-deps)\b/.test(i.raw));
    expect(copies.length).toBeGreaterThan(0);
    for (const c of copies) {
      const sources = c.raw.split(/\s+/).filter((t) => !t.startsWith('--')).slice(0, -1);
      for (const src of sources) {
        const top = src.replace(/^\/app\/?/, '').split('/')[0]!;
        if (top === '' || top === 'node_modules') continue;
        expect(existsSync(join(repoRoot, top)), `${name} line ${c.line}: ${src}`).toBe(true);
        expect(rules, `${name} line ${c.line}: ${top} is dockerignored`).not.toContain(top);
      }
    }
  });

  it('has a Dockerfile-specific .dockerignore that keeps what npm ci and the build need', () => {
    const file = join(dockerDir, `${name}.dockerignore`);
    expect(existsSync(file)).toBe(true);
    const rules = readFileSync(file, 'utf8').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
    expect(rules).toContain('**/node_modules');
    expect(rules).toContain('**/dist');
    const rootPkg = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8'));
    const needed = ['package.json', 'package-lock.json', 'tsconfig.base.json', 'nx.json', ...rootPkg.workspaces.map((w: string) => w.split('/')[0])];
    for (const n of needed) expect(rules, `${n} must stay in the build context`).not.toContain(n);
  });
});

describe('Dockerfile (CPU)', () => {
  it('builds on node:20-bookworm-slim', () => {
    const froms = read('Dockerfile').filter((i) => i.keyword === 'FROM' || i.keyword === 'ARG').map((i) => i.raw);
    expect(froms).toContain('NODE_IMAGE=node:20-bookworm-slim');
  });
});

describe('Dockerfile.cuda', () => {
  const all = read('Dockerfile.cuda');
  const final = finalStage(all);

  it('runs on the CUDA 11.2 + cuDNN 8 runtime base with Node copied from a node:20 stage', () => {
    const args = all.filter((i) => i.keyword === 'ARG').map((i) => i.raw);
    expect(args).toContain('CUDA_IMAGE=nvidia/cuda:11.2.2-cudnn8-runtime-ubuntu20.04');
    expect(args).toContain('NODE_IMAGE=node:20-bookworm-slim');
    expect(final[0]!.raw).toBe('${CUDA_IMAGE} AS runtime');
    expect(final.some((i) => i.keyword === 'COPY' && i.raw.startsWith('--from=node '))).toBe(true);
  });

  it('installs @tensorflow/tfjs-node-gpu at the exact tfjs version of the workspace', () => {
    const rootPkg = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8'));
    const tfjs = rootPkg.devDependencies['@tensorflow/tfjs-core'];
    expect(tfjs).toBe('4.22.0');
    const install = all.find((i) => i.keyword === 'RUN' && /npm install .*@tensorflow\/tfjs-node-gpu@/.test(i.raw))!;
    expect(install.raw).toContain(`@tensorflow/tfjs-node-gpu@${tfjs}`);
    expect(install.raw).toContain('--no-save');
  });

  it('defaults learners to cuda:0', () => {
    const env = final.filter((i) => i.keyword === 'ENV').map((i) => i.raw).join(' ');
    expect(env).toMatch(/OIAFED_DEVICE=cuda:0\b/);
  });
});
