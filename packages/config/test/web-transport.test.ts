import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '@oiafed/config';
import { configError, writeTree } from './helpers.js';

const TRAINER = 'node_id: trainer\nrole: trainer\n';

function load(body: string) {
  const dir = writeTree({ 'trainer.yaml': `${TRAINER}${body}` });
  return { file: join(dir, 'trainer.yaml'), load: () => loadConfig(join(dir, 'trainer.yaml'), { env: {} }) };
}

describe('transport.web and dashboard.serve_partitions (browser learners)', () => {
  it('is off when absent; present, takes defaults', () => {
    const off = load('').load();
    expect(off.transport.web).toBeUndefined();
    const on = load('dashboard: {enabled: true}\ntransport: {web: {enabled: true}}\n').load();
    expect(on.transport.web).toEqual({ enabled: true, path: '/learn' });
    expect(on.dashboard?.serve_partitions).toBe(false);
    expect(load('dashboard: {enabled: true, serve_partitions: true}\n').load().dashboard?.serve_partitions).toBe(true);
  });

  it('refuses bad values, naming the key path', () => {
    const path = load('dashboard: {enabled: true}\ntransport: {web: {enabled: true, path: "no-slash"}}\n');
    expect(configError(path.load).message).toContain(`${path.file}: transport.web.path`);
    const enabled = load('dashboard: {enabled: true}\ntransport: {web: {enabled: "yes"}}\n');
    expect(configError(enabled.load).message).toContain(`${enabled.file}: transport.web.enabled`);
    const serve = load('dashboard: {enabled: true, serve_partitions: 3}\n');
    expect(configError(serve.load).message).toContain(`${serve.file}: dashboard.serve_partitions`);
    const unknown = load('transport: {web: {enabled: true, port: 80}}\n');
    expect(configError(unknown.load).message).toContain('transport.web');
  });

  it('needs the dashboard (its HTTP server) and the gRPC transport', () => {
    const noDashboard = load('transport: {web: {enabled: true}}\n');
    expect(configError(noDashboard.load).message).toMatch(/transport\.web\.enabled.*needs dashboard\.enabled/);
    const memory = load('dashboard: {enabled: true}\ntransport: {mode: memory, web: {enabled: true}}\n');
    expect(configError(memory.load).message).toMatch(/transport\.web\.enabled.*gRPC transport/);
  });
});
