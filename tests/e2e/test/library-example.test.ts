import { describe, expect, it } from 'vitest';
import { main } from '../../../examples/library/in-process-federation.js';

describe('examples/library: a federation assembled from the packages by hand', () => {
  it('trains FedProx over the memory transport with accuracy well above chance', async () => {
    const accuracies = await main(3, 4);
    expect(accuracies).toHaveLength(4);
    expect(accuracies.at(-1)!).toBeGreaterThan(0.5);
  });
});
