import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { createNodeMetrics, startObservability } from '@oiafed/tracker';

async function get(port: number, path: string, method = 'GET'): Promise<{ status: number; type: string; body: string }> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`, { method });
  return { status: res.status, type: res.headers.get('content-type') ?? '', body: await res.text() };
}

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

describe('startObservability', () => {
  it('serves metrics, health and readiness on separate ephemeral ports', async () => {
    const nodeMetrics = createNodeMetrics({ nodeId: 'trainer', role: 'trainer' });
    nodeMetrics.roundsCompleted.inc(3);
    let ready = false;
    const obs = await startObservability({
      metrics: { enabled: true, host: '127.0.0.1', port: 0 },
      health: { enabled: true, host: '127.0.0.1', port: await freePort() },
      nodeMetrics,
      status: () => ({ live: true, ready, detail: { learners: ready ? 2 : 0, needed: 2 } }),
    });
    try {
      expect(obs.metricsPort).toBeGreaterThan(0);
      expect(obs.healthPort).not.toBe(obs.metricsPort);
      const metrics = await get(obs.metricsPort!, '/metrics');
      expect(metrics.status).toBe(200);
      expect(metrics.type).toBe('text/plain; version=0.0.4; charset=utf-8');
      expect(metrics.body).toContain('oiafed_rounds_completed_total{node="trainer",role="trainer"} 3');

      const health = await get(obs.healthPort!, '/health');
      expect(health.status).toBe(200);
      expect(JSON.parse(health.body)).toMatchObject({ status: 'ok', live: true });

      const notReady = await get(obs.healthPort!, '/ready');
      expect(notReady.status).toBe(503);
      expect(JSON.parse(notReady.body)).toEqual({ status: 'not_ready', ready: false, detail: { learners: 0, needed: 2 } });
      ready = true;
      const nowReady = await get(obs.healthPort!, '/ready?verbose=1');
      expect(nowReady.status).toBe(200);
      expect(JSON.parse(nowReady.body)).toEqual({ status: 'ready', ready: true, detail: { learners: 2, needed: 2 } });

      expect((await get(obs.healthPort!, '/metrics')).status).toBe(404);
      expect((await get(obs.metricsPort!, '/health')).status).toBe(404);
      expect((await get(obs.healthPort!, '/nope')).status).toBe(404);
      expect((await get(obs.healthPort!, '/health', 'POST')).status).toBe(405);
    } finally {
      await obs.close();
    }
  });

  it('shares one server when ports match, reports liveness failure, and frees the port on close', async () => {
    const nodeMetrics = createNodeMetrics({ nodeId: 'learner_0', role: 'learner' });
    let live = true;
    const port = await freePort();
    const obs = await startObservability({
      metrics: { enabled: true, host: '127.0.0.1', port },
      health: { enabled: true, host: '127.0.0.1', port },
      nodeMetrics,
      status: () => ({ live, ready: live, detail: { reason: live ? undefined : 'transport closed' } }),
    });
    expect(obs.metricsPort).toBe(port);
    expect(obs.healthPort).toBe(port);
    expect((await get(port, '/metrics')).body).toContain('oiafed_learners_alive');
    expect((await get(port, '/health')).status).toBe(200);
    live = false;
    const down = await get(port, '/health');
    expect(down.status).toBe(503);
    expect(JSON.parse(down.body)).toMatchObject({ status: 'unhealthy', detail: { reason: 'transport closed' } });
    expect((await get(port, '/other')).status).toBe(404);
    await obs.close();
    await expect(fetch(`http://127.0.0.1:${port}/health`)).rejects.toThrow();
    // The port is free again: a new server can bind it.
    const again = await startObservability({ health: { enabled: true, host: '127.0.0.1', port }, status: () => ({ live: true, ready: true }) });
    expect(again.healthPort).toBe(port);
    await again.close();
  });

  it('names the endpoint and address when the port is taken', async () => {
    const first = await startObservability({ health: { enabled: true, host: '127.0.0.1', port: 0 }, status: () => ({ live: true, ready: true }) });
    try {
      await expect(
        startObservability({
          metrics: { enabled: true, host: '127.0.0.1', port: 0 },
          health: { enabled: true, host: '127.0.0.1', port: first.healthPort! },
          nodeMetrics: createNodeMetrics({ nodeId: 'x', role: 'trainer' }),
          status: () => ({ live: true, ready: true }),
        }),
      ).rejects.toThrow(`health endpoint cannot listen on 127.0.0.1:${first.healthPort}: EADDRINUSE`);
    } finally {
      await first.close();
    }
  });

  it('says in the startup log when an endpoint listens on all interfaces (the default host)', async () => {
    const lines: string[] = [];
    const logger = { debug: () => undefined, info: (m: string) => lines.push(m), warn: () => undefined, error: () => undefined };
    const nodeMetrics = createNodeMetrics({ nodeId: 'trainer', role: 'trainer' });
    const obs = await startObservability({
      metrics: { enabled: true, port: 0 },
      health: { enabled: true, host: '127.0.0.1', port: 0 },
      nodeMetrics,
      status: () => ({ live: true, ready: true }),
      logger,
    });
    await obs.close();
    expect(lines).toContain(`metrics endpoint listening on all interfaces (0.0.0.0:${obs.metricsPort}); set metrics.host: 127.0.0.1 to keep it on this machine`);
    expect(lines).toContain('health endpoint listening');
  });

  it('starts nothing when both endpoints are disabled', async () => {
    const obs = await startObservability({ metrics: { enabled: false, port: 9090 }, health: { enabled: false, port: 8080 }, status: () => ({ live: true, ready: true }) });
    expect(obs.metricsPort).toBeUndefined();
    expect(obs.healthPort).toBeUndefined();
    await obs.close();
  });
});
