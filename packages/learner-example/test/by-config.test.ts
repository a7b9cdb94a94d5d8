/**
 * The plugin chosen by configuration alone: this file never imports it; the config's `plugins`
 * entry makes the trainer import it, and `learner.type` selects it for every serial learner.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '@oiafed/config';
import { listLearnerAlgorithms, runSerial } from '@oiafed/core';
import { describe, expect, it } from 'vitest';

describe('selected purely by config (plugins + learner.type, aggregator fedavg)', () => {
  const federation = fileURLToPath(new URL('./fixtures/federation.yaml', import.meta.url));
  const config = (rounds: number) => {
    const loaded = loadConfig(federation, { env: { RUN_DIR: mkdtempSync(join(tmpdir(), 'learner-example-')) } });
    return { ...loaded, trainer: { ...loaded.trainer, args: { ...loaded.trainer.args, max_rounds: rounds } } };
  };
  /** The same federation with plain local SGD: learner.type default, without the plugin's args. */
  const plain = (rounds: number) => {
    const { layers: _layers, ...settings } = config(rounds).learner.args;
    return { ...config(rounds), learner: { type: 'default', args: settings } };
  };

  it('trains like fedavg in round 1 and from its own heads after that', async () => {
    expect(listLearnerAlgorithms()).not.toContain('my_local_head');
    expect(config(1).learner).toMatchObject({ type: 'my_local_head', args: { layers: ['fc2'] } });
    const headOne = await runSerial(config(1), { numClients: 3 });
    const headTwo = await runSerial(config(2), { numClients: 3 });
    expect(headTwo.rounds.every((r) => r.participants === 3 && r.aggregated)).toBe(true);
    expect(headTwo.weights.every(Number.isFinite)).toBe(true);
    const fedavgOne = await runSerial(plain(1), { numClients: 3 });
    const fedavgTwo = await runSerial(plain(2), { numClients: 3 });
    // Round 1 starts from the global model everywhere: nothing is kept yet.
    expect(headOne.weights).toEqual(fedavgOne.weights);
    // From round 2 each learner trains from its own fc2, so the average moves differently.
    expect(headTwo.weights).not.toEqual(fedavgTwo.weights);
  });
});

