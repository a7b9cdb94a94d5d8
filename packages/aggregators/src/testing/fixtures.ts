import type { ClientUpdate, RoundContext, WeightLayout } from '../types.js';

/** Deterministic PRNG (mulberry32) so contract failures reproduce. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A layout from `[name, size, isNormalization?]` triples, packed in order. */
export function makeLayout(tensors: readonly (readonly [string, number, boolean?])[]): WeightLayout {
  let offset = 0;
  return tensors.map(([name, size, isNormalization = false]) => {
    const spec = { name, shape: [size], offset, size, trainable: !isNormalization, isNormalization };
    offset += size;
    return spec;
  });
}

/** A round context around `global`; the layout defaults to one trainable tensor. */
export function makeContext(
  global: Float32Array,
  options: { round?: number; layout?: WeightLayout; totalClients?: number; selectedClients?: string[] } = {},
): RoundContext {
  return {
    round: options.round ?? 1,
    global,
    layout: options.layout ?? makeLayout([['w', global.length]]),
    totalClients: options.totalClients ?? options.selectedClients?.length ?? 10,
    selectedClients: options.selectedClients ?? [],
  };
}

/**
 * An update carrying everything any built-in rule reads (sample count, local steps,
 * momentum meta, SCAFFOLD control delta), so one fixture serves every rule.
 */
export function makeUpdate(
  clientId: string,
  weights: Float32Array | readonly number[],
  options: Partial<Omit<ClientUpdate, 'clientId' | 'weights'>> = {},
): ClientUpdate {
  const w = weights instanceof Float32Array ? weights : Float32Array.from(weights);
  return {
    clientId,
    weights: w,
    numSamples: options.numSamples ?? 10,
    localSteps: options.localSteps ?? 5,
    meta: options.meta ?? { momentum: 0 },
    extras: options.extras ?? { control_delta: new Float32Array(w.length) },
    ...(options.metrics ? { metrics: options.metrics } : {}),
  };
}

/** `n` random updates near `global` (uniform noise of `spread`), with random sample counts. */
export function randomUpdates(global: Float32Array, n: number, seed = 1, spread = 0.5): ClientUpdate[] {
  const rand = seededRandom(seed);
  const out: ClientUpdate[] = [];
  for (let k = 0; k < n; k++) {
    const w = new Float32Array(global.length);
    const delta = new Float32Array(global.length);
    for (let i = 0; i < w.length; i++) {
      w[i] = global[i] + (rand() * 2 - 1) * spread;
      delta[i] = (rand() * 2 - 1) * 0.1;
    }
    out.push(
      makeUpdate(`client_${k}`, w, {
        numSamples: 1 + Math.floor(rand() * 100),
        localSteps: 1 + Math.floor(rand() * 10),
        meta: { momentum: 0 },
        extras: { control_delta: delta },
      }),
    );
  }
  return out;
}

/** A random vector of length `n` in [-1, 1). */
export function randomVector(n: number, seed = 7): Float32Array {
  const rand = seededRandom(seed);
  const v = new Float32Array(n);
  for (let i = 0; i < n; i++) v[i] = rand() * 2 - 1;
  return v;
}
