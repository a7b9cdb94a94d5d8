/**
 * The SecAgg+ communication graph (Bell et al. 2020): each learner masks with and shares its
 * secrets among `k` neighbours instead of all n - 1 others, which brings a learner's cost from
 * O(n) to O(k). Built as a Harary graph over a CSPRNG permutation of the learners (each learner
 * joined to the k/2 nearest on each side of a random ring), the construction Flower's SecAgg+ uses;
 * k >= n - 1 gives the complete graph (the original SecAgg).
 */
import { randomInt } from 'node:crypto';

/** Neighbours (never including the learner itself) of each id; symmetric. */
export type NeighbourGraph = Record<string, string[]>;

export function neighbourGraph(ids: readonly string[], neighbours: number): NeighbourGraph {
  if (new Set(ids).size !== ids.length) throw new Error('secagg: duplicate learner ids');
  const n = ids.length;
  const graph: NeighbourGraph = {};
  if (neighbours >= n - 1) {
    for (const id of ids) graph[id] = ids.filter((other) => other !== id).sort();
    return graph;
  }
  const ring = [...ids];
  for (let i = n - 1; i > 0; i--) {
    const j = randomInt(i + 1);
    [ring[i], ring[j]] = [ring[j]!, ring[i]!];
  }
  const half = Math.ceil(neighbours / 2);
  ring.forEach((id, position) => {
    const set = new Set<string>();
    for (let d = 1; d <= half; d++) {
      set.add(ring[(position + d) % n]!);
      set.add(ring[(position - d + n) % n]!);
    }
    graph[id] = [...set].sort();
  });
  return graph;
}

/**
 * The threshold as a count of the neighbourhood (the learner and its neighbours): a fraction in
 * (0, 1) is rounded up, an integer >= 1 is taken as is. Must be more than half the neighbourhood:
 * two disjoint sets of recipients could otherwise each rebuild a different secret of one learner
 * (its self mask and its mask key), which would unmask its update.
 */
export function thresholdCount(threshold: number, neighbourhoodSize: number): number {
  const t = threshold < 1 ? Math.ceil(threshold * neighbourhoodSize) : threshold;
  if (!Number.isInteger(t) || t < 1) throw new Error(`secagg: threshold must be a fraction in (0, 1) or an integer >= 1, got ${threshold}`);
  if (t > neighbourhoodSize) throw new Error(`secagg: threshold ${t} exceeds the neighbourhood of ${neighbourhoodSize} (neighbours + 1)`);
  if (2 * t <= neighbourhoodSize) {
    throw new Error(`secagg: threshold ${t} of ${neighbourhoodSize} is not more than half the neighbourhood, which SecAgg+ needs for its privacy guarantee`);
  }
  return t;
}
