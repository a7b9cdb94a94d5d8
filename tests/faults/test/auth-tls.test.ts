import { join } from 'node:path';
import { resolveConfig, type NodeConfig } from '@oiafed/config';
import { buildTransport } from '@oiafed/core';
import type { Transport } from '@oiafed/transport';
import { createTestPki } from '@oiafed/transport/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { summaryLine, tempDir } from './helpers.js';

/**
 * A CA, a server and a client certificate signed by it, and a rogue CA with its own client. The
 * client certificate's CN is the node id it may register as (the trainer binds them).
 */
function makeCertificates(dir: string) {
  const ca = createTestPki(dir, 'ca');
  const rogueCa = createTestPki(dir, 'rogue-ca');
  ca.issue('server');
  ca.issue('learner_ok');
  rogueCa.issue('rogue-client');
  const f = (name: string) => join(dir, name);
  return { ca: f('ca.pem'), rogueCa: f('rogue-ca.pem'), server: [f('server.pem'), f('server.key')], client: [f('learner_ok.pem'), f('learner_ok.key')], rogueClient: [f('rogue-client.pem'), f('rogue-client.key')] };
}

const ENV = { FED_TOKEN: 'correct horse battery staple' };

function config(raw: Record<string, unknown>): NodeConfig {
  return resolveConfig(
    {
      exp_name: 'auth',
      heartbeat: { enabled: true, interval: 0.3, timeout: 1.5 },
      retry: { max_attempts: 2, backoff_strategy: 'constant', initial_delay: 0.05, max_delay: 0.05 },
      tracker: { backends: [{ type: 'console', level: 'error' }] },
      ...raw,
    },
    { file: 'auth.yaml', env: ENV },
  );
}

describe('authentication and TLS at the federation level', () => {
  let dir: string;
  let certs: ReturnType<typeof makeCertificates>;
  let trainer: Transport;
  const started: Transport[] = [];

  beforeAll(async () => {
    dir = tempDir('tls');
    certs = makeCertificates(dir);
    trainer = buildTransport(
      config({
        node_id: 'trainer',
        role: 'trainer',
        listen: { host: '127.0.0.1', port: 0 },
        transport: {
          mode: 'grpc',
          grpc: { timeout: 3, auth_token: '${FED_TOKEN}', tls: { ca: certs.ca, cert: certs.server[0], key: certs.server[1], require_client_cert: true } },
        },
      }),
    );
    await trainer.start();
  });

  afterAll(async () => {
    await Promise.all(started.map((t) => t.stop()));
    await trainer?.stop();
  });

  function learner(id: string, grpc: Record<string, unknown>): Transport {
    const t = buildTransport(
      config({ node_id: id, role: 'learner', connect_to: [`trainer@127.0.0.1:${trainer.boundPort}`], transport: { mode: 'grpc', grpc: { timeout: 3, ...grpc } } }),
      { metadata: { purpose: 'auth-test' } },
    );
    started.push(t);
    return t;
  }
  const goodTls = () => ({ ca: certs.ca, cert: certs.client[0], key: certs.client[1] });

  it('admits a learner with the token and a client certificate from the trusted CA, and calls it over the stream', async () => {
    const good = learner('learner_ok', { auth_token: '${FED_TOKEN}', tls: goodTls() });
    good.handle('ping', (payload) => ({ body: { pong: payload.body } }));
    await good.start();
    expect(trainer.peers().map((p) => p.nodeId)).toEqual(['learner_ok']);
    const reply = await trainer.call('learner_ok', 'ping', { body: 42 });
    expect(reply.body).toEqual({ pong: 42 });
  });

  it.each([
    ['no token', () => ({ tls: goodTls() }), /UNAUTHENTICATED|missing or wrong bearer token/],
    ['a wrong token', () => ({ auth_token: 'guess', tls: goodTls() }), /missing or wrong bearer token/],
    ["the trusted certificate of another node id (learner_ok's)", () => ({ auth_token: '${FED_TOKEN}', tls: goodTls() }), /client certificate names neither this node id/],
    ['no client certificate', () => ({ auth_token: '${FED_TOKEN}', tls: { ca: certs.ca } }), /TLS is on: the trainer must present a certificate signed by tls.ca/],
    ['a client certificate from an untrusted CA', () => ({ auth_token: '${FED_TOKEN}', tls: { ca: certs.ca, cert: certs.rogueClient[0], key: certs.rogueClient[1] } }), /TLS is on: the trainer must present a certificate signed by tls.ca/],
    ['a CA that did not sign the trainer (server untrusted)', () => ({ auth_token: '${FED_TOKEN}', tls: { ca: certs.rogueCa, cert: certs.client[0], key: certs.client[1] } }), /TLS is on/],
    ['plaintext against a TLS trainer', () => ({ auth_token: '${FED_TOKEN}' }), /No connection established/],
  ])('refuses a learner with %s, and keeps serving the admitted one', async (what, grpcSection, expected) => {
    const started = Date.now();
    const intruder = learner(`intruder_${what.replace(/\W+/g, '_')}`, grpcSection());
    const error = await intruder.start().then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    expect(error, `learner with ${what} was admitted`).toBeInstanceOf(Error);
    expect(error!.message).toMatch(expected);
    expect(trainer.peers().map((p) => p.nodeId)).toEqual(['learner_ok']);
    expect((await trainer.call('learner_ok', 'ping', { body: what })).body).toEqual({ pong: what });
    summaryLine('auth-refused', { case: JSON.stringify(what).replace(/ /g, '_'), refused_in_ms: Date.now() - started, error: JSON.stringify(error!.message.slice(0, 100)).replace(/ /g, '_') });
  });
});
