import { connect } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { startDashboard, type DashboardServer } from '@oiafed/dashboard';

let dashboard: DashboardServer | undefined;
afterEach(async () => {
  await dashboard?.close();
  dashboard = undefined;
});

/** Reads Server-Sent Events from a fetch response body, one parsed `{event, data}` at a time. */
function eventReader(body: ReadableStream<Uint8Array>) {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  return {
    async next(): Promise<{ event: string; data: unknown }> {
      for (;;) {
        const end = buffer.indexOf('\n\n');
        if (end >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const event = /^event: (.*)$/m.exec(block)?.[1];
          const data = /^data: (.*)$/m.exec(block)?.[1];
          if (event && data) return { event, data: JSON.parse(data) };
          continue;
        }
        const { value, done } = await reader.read();
        if (done) throw new Error('event stream ended');
        buffer += decoder.decode(value, { stream: true });
      }
    },
    cancel: () => reader.cancel(),
  };
}

const round = (n: number) => ({ round: n, timestamp: new Date().toISOString(), participants: 2, duration_s: 0.5, accuracy: 0.5 + n / 100, failed: [] });

describe('dashboard event stream', () => {
  it('sends a snapshot on connect, then one event per round, learner change and progress', async () => {
    dashboard = await startDashboard({ port: 0, run: { exp_name: 'sse', max_rounds: 3 } });
    dashboard.addRound(round(1));
    dashboard.updateLearner({ id: 'learner_0', state: 'registered', backend: 'wasm', samples: 120 });
    const res = await fetch(`http://127.0.0.1:${dashboard.port}/events`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const events = eventReader(res.body!);
    const first = await events.next();
    expect(first.event).toBe('snapshot');
    expect(first.data).toMatchObject({
      run: { exp_name: 'sse', max_rounds: 3 },
      rounds: [{ round: 1 }],
      learners: [{ id: 'learner_0', state: 'registered', backend: 'wasm', samples: 120 }],
    });

    dashboard.setProgress({ round: 2, selected: 2, done: 1, started_at: new Date().toISOString() });
    dashboard.updateLearner({ id: 'learner_0', state: 'training' });
    dashboard.addRound(round(2));
    expect(await events.next()).toMatchObject({ event: 'progress', data: { round: 2, done: 1 } });
    // A learner event carries the whole merged row, so a page never needs an earlier one.
    expect(await events.next()).toMatchObject({ event: 'learner', data: { id: 'learner_0', state: 'training', backend: 'wasm', samples: 120 } });
    expect(await events.next()).toMatchObject({ event: 'round', data: { round: 2, accuracy: 0.52 } });
    await events.cancel();

    // A new connection (a reload) starts from a snapshot with everything so far.
    const again = eventReader((await fetch(`http://127.0.0.1:${dashboard.port}/events`)).body!);
    const snapshot = (await again.next()).data as { rounds: unknown[]; learners: Array<{ state: string }> };
    expect(snapshot.rounds).toHaveLength(2);
    expect(snapshot.learners[0]!.state).toBe('training');
    await again.cancel();
  });

  it('bounds open streams: one over maxClients gets 503', async () => {
    dashboard = await startDashboard({ port: 0, maxClients: 2 });
    const url = `http://127.0.0.1:${dashboard.port}/events`;
    const open = [await fetch(url), await fetch(url)];
    expect(open.map((r) => r.status)).toEqual([200, 200]);
    const refused = await fetch(url);
    expect(refused.status).toBe(503);
    await refused.body?.cancel();
    for (const r of open) await r.body!.cancel();
  });

  it('drops a client that stops reading once its backlog passes maxBufferedBytes', async () => {
    dashboard = await startDashboard({ port: 0, maxBufferedBytes: 64 * 1024 });
    // A raw socket that sends the request and then never reads: the kernel buffers fill, then node's.
    const socket = connect(dashboard.port, '127.0.0.1');
    socket.write(`GET /events HTTP/1.1\r\nHost: x\r\n\r\n`);
    socket.pause();
    await new Promise((r) => setTimeout(r, 200));
    expect(dashboard.clients).toBe(1);
    const big = 'x'.repeat(32 * 1024);
    for (let i = 0; i < 400 && dashboard.clients > 0; i++) {
      dashboard.addRound({ ...round(i + 1), note: big });
      await new Promise((r) => setImmediate(r));
    }
    expect(dashboard.clients).toBe(0);
    socket.destroy();
  });

  it('keeps a client that is behind by no more than its snapshot (a long run\'s snapshot may exceed the bound)', async () => {
    dashboard = await startDashboard({ port: 0, maxBufferedBytes: 16 * 1024 });
    const note = 'y'.repeat(40 * 1024);
    for (let i = 1; i <= 100; i++) dashboard.addRound({ ...round(i), note });
    const socket = connect(dashboard.port, '127.0.0.1');
    socket.pause();
    socket.write(`GET /events HTTP/1.1\r\nHost: x\r\n\r\n`);
    for (let i = 0; i < 100 && dashboard.clients === 0; i++) await new Promise((r) => setTimeout(r, 20));
    // The 4 MB snapshot is still queued (the socket has not read): one more event must not drop the client.
    dashboard.addRound(round(101));
    expect(dashboard.clients).toBe(1);
    let text = '';
    socket.on('data', (chunk: Buffer) => (text += chunk.toString('latin1')));
    socket.resume();
    for (let i = 0; i < 500 && !text.includes('"round":101'); i++) await new Promise((r) => setTimeout(r, 20));
    expect(text).toContain('event: round\ndata: {"round":101');
    socket.destroy();
  });
});

describe('dashboard auth', () => {
  it('needs the token on every route when auth_token is set (Bearer header or ?token=)', async () => {
    dashboard = await startDashboard({ port: 0, authToken: 's3cret' });
    dashboard.route('/extra', (_req, res) => res.end('extra'));
    const base = `http://127.0.0.1:${dashboard.port}`;
    for (const path of ['/', '/dashboard.js', '/events', '/state', '/report', '/extra', '/nope']) {
      const none = await fetch(`${base}${path}`);
      expect(none.status, path).toBe(401);
      const wrong = await fetch(`${base}${path}?token=s3cre`, { headers: { authorization: 'Bearer nope' } });
      expect(wrong.status, path).toBe(401);
    }
    expect((await fetch(`${base}/state`, { headers: { authorization: 'Bearer s3cret' } })).status).toBe(200);
    expect(await (await fetch(`${base}/extra?token=s3cret`)).text()).toBe('extra');
    // The page carries the token to its script and event stream URLs.
    const page = await (await fetch(`${base}/?token=s3cret`)).text();
    expect(page).toContain('src="dashboard.js?token=s3cret"');
    const events = await fetch(`${base}/events?token=s3cret`);
    expect(events.status).toBe(200);
    await events.body!.cancel();
    expect(dashboard.authorized({ headers: {}, url: '/?token=s3cret' } as never)).toBe(true);
  });

  it('serves without a token when none is configured, read-only (POST is 405)', async () => {
    dashboard = await startDashboard({ port: 0 });
    const base = `http://127.0.0.1:${dashboard.port}`;
    expect((await fetch(`${base}/`)).status).toBe(200);
    expect((await fetch(`${base}/state`, { method: 'POST', body: '{}' })).status).toBe(405);
    expect((await fetch(`${base}/nope`)).status).toBe(404);
  });
});
