/**
 * A learner-local test split carved from a learner's own partition (`partition.test_fraction`),
 * for personalized evaluation: personalized FL papers (FedPer, FedRep, Ditto, FedRoD) test each
 * client's model on held-out data drawn from that client's distribution, not on the global test
 * set. The split is stratified per label so the test set has the train set's label mix.
 */
import { roundSizes } from './partition.js';
import { createRng, deriveSeed, shuffleInPlace } from './rng.js';

/** Largest `partition.test_fraction` accepted: a learner keeps at least half its data to train on. */
export const MAX_TEST_FRACTION = 0.5;

/** A partition cut into the samples a learner trains on and those it holds out. */
export interface LocalTestSplit {
  train: Int32Array;
  test: Int32Array;
}

/**
 * Splits `part` (indices into `labels`) into train and a held-out test part of
 * `round(part.length * fraction)` samples, apportioned over the labels in proportion to their
 * counts (largest remainders first, ties to the lower label). A label with a single sample keeps
 * it for training (its share goes to the other labels), and no label gives up all its samples,
 * so only a tiny partition gets fewer test samples than asked. Which samples of a label are held
 * out is drawn with `seed`; both parts keep the order they had in `part`.
 *
 * @throws RangeError when `fraction` is outside [0, 0.5].
 */
export function splitLocalTest(labels: Int32Array, part: Int32Array, numClasses: number, fraction: number, seed: number): LocalTestSplit {
  if (!(fraction >= 0 && fraction <= MAX_TEST_FRACTION)) {
    throw new RangeError(`partition: test_fraction must be a number in 0..${MAX_TEST_FRACTION}, got ${String(fraction)}`);
  }
  const quotas = testQuotas(labels, part, numClasses, fraction);
  const rng = createRng(seed);
  const held = new Uint8Array(part.length);
  for (let c = 0; c < numClasses; c++) {
    if (quotas[c] === 0) continue;
    const positions: number[] = [];
    for (let i = 0; i < part.length; i++) if (labels[part[i]] === c) positions.push(i);
    shuffleInPlace(positions, rng);
    for (let k = 0; k < quotas[c]; k++) held[positions[k]] = 1;
  }
  const test = new Int32Array(quotas.reduce((a, b) => a + b, 0));
  const train = new Int32Array(part.length - test.length);
  let t = 0;
  let r = 0;
  for (let i = 0; i < part.length; i++) {
    if (held[i]) test[t++] = part[i];
    else train[r++] = part[i];
  }
  return { train, test };
}

/** Per label, how many samples the test part takes (see {@link splitLocalTest}). */
export function testQuotas(labels: Int32Array, part: Int32Array, numClasses: number, fraction: number): number[] {
  const counts = new Array<number>(numClasses).fill(0);
  for (let i = 0; i < part.length; i++) counts[labels[part[i]]]++;
  const eligible = counts.map((c) => (c >= 2 ? c : 0));
  const total = Math.round(part.length * fraction);
  if (total === 0 || eligible.every((c) => c === 0)) return counts.map(() => 0);
  return roundSizes(eligible, total).map((q, c) => Math.min(q, Math.max(0, counts[c] - 1)));
}

/** The seed of partition `partitionId`'s test split: distinct per partition, fixed by the partition seed. */
export function localTestSeed(partitionSeed: number, partitionId: number): number {
  return deriveSeed(partitionSeed, 0x7e57, partitionId);
}
