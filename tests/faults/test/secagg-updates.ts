/** The scripted updates of the secure-aggregation fault tests, shared by the test and its learner processes. */

/** Learner i's delta: a constant block and a wave, inside the clip range. */
export function secaggDelta(i: number, length: number): Float32Array {
  return Float32Array.from({ length }, (_, j) => (j < length / 2 ? 0.01 * (i + 1) : Math.sin(j * 0.1 * (i + 1)) * 0.2));
}

/** Learner i's sample count (its weight in the mean). */
export function secaggSamples(i: number): number {
  return 40 + 20 * i;
}
