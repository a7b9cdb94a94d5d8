import { MemoryTransport, type MemoryHub, type Payload } from '@oiafed/transport';
import { DEFAULT_LEARNER_CAPABILITIES, LearnerMethods, RegistrationKeys } from '../src/protocol.js';

const metadata = { [RegistrationKeys.capabilities]: DEFAULT_LEARNER_CAPABILITIES.join(','), [RegistrationKeys.numSamples]: '100' };

/**
 * A scripted learner on the memory transport: it sends the global weights back unchanged (after
 * `delayMs`), or fails with `fail`, so a round's outcome is known without training.
 */
export function echoLearner(hub: MemoryHub, nodeId: string, options: { fail?: string; delayMs?: number } = {}): MemoryTransport {
  const transport = new MemoryTransport({ hub, nodeId, role: 'learner', connectTo: ['trainer'], metadata });
  transport.handle(LearnerMethods.train, async (request: Payload) => {
    if (options.delayMs) await new Promise((resolve) => setTimeout(resolve, options.delayMs));
    if (options.fail) throw new Error(options.fail);
    return {
      body: {
        round: (request.body as { round: number }).round,
        num_samples: 100,
        local_steps: 4,
        metrics: { loss: 1, accuracy: 0.5, seconds: 0.1, samples_per_second: 1000 },
        meta: {},
      },
      tensors: request.tensors!.filter((t) => t.name.startsWith('weights/')),
    };
  });
  return transport;
}
