// Issue 12 item 7: peers that register as learners, heartbeat and never read. The trainer (a
// child process) sends each selected learner the multi-MB global model; before the fix every such
// peer held its own fully encoded copy of it (twice: ours and grpc-js's), for good, since its send
// never finished. Now frames are encoded as they are written, from the one shared model, start
// small and grow only as the peer reads, and a peer that has not read its request by the round
// deadline is dropped; the honest learner completes its rounds.
import { readFileSync, writeFileSync } from 'node:fs';
import { freeLoopbackPort } from '@oiafed/core';
import { afterEach, describe, expect, it } from 'vitest';
import { Federation, killAll, PROCESS_TEST_TIMEOUT_MS, roundLines, summaryLine, waitUntil } from './helpers.js';
import { peakRssMb, rssMb, silentHttp2Peer } from './raw-peer.js';

const FAKE_PEERS = 40;
const CHUNK_MB = 4;
// mlp 60 -> 2048 -> 512 -> 10 on the synthetic data: 1.18 M float32 weights, 4.7 MB.
const HIDDEN = [2048, 512];
const MODEL_MB = ((60 * 2048 + 2048 + 2048 * 512 + 512 + 512 * 10 + 10) * 4) / 2 ** 20;

let fed: Federation | undefined;
const peers: Array<{ stop(): void }> = [];
afterEach(async () => {
  for (const p of peers.splice(0)) p.stop();
  await killAll();
  fed?.cleanup();
  fed = undefined;
});

describe('learners that register, heartbeat and never read', () => {
  it(`cost the trainer two small frames each (not a model copy), are dropped at the round deadline, and the honest learner completes`, async () => {
    fed = new Federation('stalled-readers', {
      numLearners: 1,
      rounds: 100_000,
      minClients: 1,
      port: await freeLoopbackPort(),
      roundTimeoutS: 8,
      heartbeat: { interval: 0.5, timeout: 10 },
      extra: {
        model: { type: 'mlp', args: { hidden: HIDDEN } },
        transport: { mode: 'grpc', grpc: { timeout: 5, chunk_mb: CHUNK_MB } },
      },
    });
    // A few samples per learner: a 4.7 MB model trains in well under a round on a shared CI core.
    for (const file of [fed.trainerConfig, ...fed.learnerConfigs])
      writeFileSync(file, readFileSync(file, 'utf8').replace(/samples_per_client: 200/g, 'samples_per_client: 16'));
    const trainer = fed.startTrainer();
    fed.startLearner(0);
    await waitUntil(() => roundLines(trainer.stdout).find((r) => r.round >= 2), 150_000, () => trainer.tail());
    const baselineMb = rssMb(trainer.pid);

    const { peakMb, result } = await peakRssMb(trainer.pid, async () => {
      const fakes = await Promise.all(Array.from({ length: FAKE_PEERS }, (_, i) => silentHttp2Peer(fed!.o.port, `learner_silent_${i}`)));
      peers.push(...fakes);
      const joinedAfter = roundLines(trainer.stdout).at(-1)!.round;
      // A round that selected the silent learners ends at its deadline with the honest one ...
      const stalled = await waitUntil(() => roundLines(trainer.stdout).find((r) => r.round > joinedAfter && r.selected > 1), 120_000, () => trainer.tail());
      // ... and the next ones run without them: they were dropped.
      const after = await waitUntil(() => roundLines(trainer.stdout).find((r) => r.round > stalled.round + 1 && r.participants >= 1), 120_000, () => trainer.tail());
      const dropped = await Promise.race([Promise.all(fakes.map((f) => f.ended)).then(() => true), new Promise((r) => setTimeout(r, 10_000, false))]);
      return { stalled, after, dropped };
    });
    // Per silent peer: at most two 64 KB first frames queued plus its 64 KB HTTP/2 window (about
    // 10 MB for 40), and room for the garbage collector's slack.
    const boundMb = 64;
    const line = summaryLine('stalled-readers', {
      fakePeers: FAKE_PEERS,
      modelMb: MODEL_MB.toFixed(1),
      chunkMb: CHUNK_MB,
      baselineMb: baselineMb.toFixed(0),
      peakMb: peakMb.toFixed(0),
      growthMb: (peakMb - baselineMb).toFixed(0),
      boundMb: boundMb.toFixed(0),
      stalledRound: `${result.stalled.round}:${result.stalled.participants}/${result.stalled.selected}`,
      afterRound: `${result.after.round}:${result.after.participants}/${result.after.selected}`,
    });
    expect(trainer.alive).toBe(true);
    expect(result.stalled.participants, line).toBe(1);
    expect(result.after.selected, line).toBe(1);
    expect(result.dropped, line).toBe(true);
    expect(peakMb - baselineMb, line).toBeLessThan(boundMb);
  }, PROCESS_TEST_TIMEOUT_MS);
});
