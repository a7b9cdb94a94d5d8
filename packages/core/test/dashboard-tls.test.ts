import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { get as httpGet } from 'node:http';
import { get as httpsGet } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createNoopLogger, type Logger } from '@oiafed/tracker';
import { createTestPki } from '@oiafed/transport/testing';
import { runSerial } from '../src/runner.js';
import { syntheticTrainerConfig } from './helpers.js';

// A trainer with TLS serves its dashboard over HTTPS with the same certificate, so the page, its
// token and the browser learners' WebSocket path (wss://) never cross the network in clear.
let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'oiafed-dash-tls-'));
  createTestPki(dir).issue('server', { cn: '127.0.0.1' });
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** GET over HTTPS trusting only the test CA; resolves with status and body. */
function httpsText(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    httpsGet(url, { ca: readFileSync(join(dir, 'ca.pem')) }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (c: string) => (body += c)).on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    }).on('error', reject);
  });
}

/** Whether a plain-HTTP request to the port gets an HTTP answer (it must not). */
function plainHttpAnswers(url: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = httpGet(url, (res) => {
      res.resume();
      resolve(true);
    });
    req.on('error', () => resolve(false));
    req.setTimeout(5_000, () => req.destroy());
  });
}

describe('dashboard over HTTPS when the trainer has TLS', () => {
  it('serves /state over https with the transport certificate; plain http gets no answer', async () => {
    const config = syntheticTrainerConfig({
      trainer: { args: { max_rounds: 2, min_clients: 2, registration_timeout: 20, round_timeout: 60 } },
      dashboard: { enabled: true, host: '127.0.0.1', port: 0 },
    });
    config.transport.grpc.tls = { cert: join(dir, 'server.pem'), key: join(dir, 'server.key'), require_client_cert: false };
    let probe: Promise<[{ status: number; body: string }, boolean]> | undefined;
    const logger: Logger = {
      ...createNoopLogger(),
      info: (msg: string) => {
        const url = /^dashboard on (https:\/\/127\.0\.0\.1:\d+\/)/.exec(msg)?.[1];
        if (url) probe = Promise.all([httpsText(`${url}state`), plainHttpAnswers(url.replace('https:', 'http:'))]);
      },
      child: () => logger,
    };
    await runSerial(config, { numClients: 2, logger });
    expect(probe, 'the trainer logged no https:// dashboard URL').toBeDefined();
    const [state, plainAnswered] = await probe!;
    expect(state.status).toBe(200);
    expect(JSON.parse(state.body).run).toMatchObject({ model: 'mlp' });
    expect(plainAnswered).toBe(false);
  });
});
