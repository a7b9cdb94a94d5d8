/**
 * Deterministic pseudo-random numbers. Every learner computes its own shard from the same seed,
 * so these must give the same sequence on every machine: no Math.random, integer-only state.
 */

/** A seeded generator. */
export interface Rng {
  /** Uniform in [0, 1). */
  next(): number;
  /** Uniform integer in [0, n). */
  nextInt(n: number): number;
  /** Standard normal N(0, 1). */
  normal(): number;
  /** Gamma(shape, 1). */
  gamma(shape: number): number;
}

/** splitmix32: spreads a 32-bit seed over the state words so nearby seeds give unrelated streams. */
function splitmix32(state: number): () => number {
  let s = state >>> 0;
  return () => {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return (z ^ (z >>> 16)) >>> 0;
  };
}

/** Folds any finite number (negative, fractional, > 2^32) into a 32-bit seed. */
function seedToUint32(seed: number): number {
  if (!Number.isFinite(seed)) {
    throw new TypeError(`createRng: seed must be a finite number, got ${String(seed)}`);
  }
  if (Number.isInteger(seed) && seed >= 0 && seed <= 0xffffffff) return seed >>> 0;
  const view = new DataView(new ArrayBuffer(8));
  view.setFloat64(0, seed);
  return (view.getUint32(0) ^ Math.imul(view.getUint32(4), 0x9e3779b1)) >>> 0;
}

/**
 * Derives an independent seed from a base seed and a path of integers (e.g. device id), so one
 * device's stream can be generated without generating the others.
 */
export function deriveSeed(seed: number, ...path: number[]): number {
  let h = seedToUint32(seed);
  for (const p of path) {
    const mix = splitmix32((h ^ Math.imul(seedToUint32(p) + 1, 0x27d4eb2d)) >>> 0);
    mix();
    h = mix();
  }
  return h;
}

/**
 * Creates a deterministic generator (xoshiro128** seeded through splitmix32; normals by
 * Box-Muller; gamma by Marsaglia-Tsang, with the `U^(1/a)` boost for shape < 1).
 * Also used by @oiafed/core for client sampling.
 */
export function createRng(seed: number): Rng {
  const init = splitmix32(seedToUint32(seed));
  let a = init();
  let b = init();
  let c = init();
  let d = init();
  if ((a | b | c | d) === 0) a = 1;

  const nextUint32 = (): number => {
    const result = Math.imul(rotl(Math.imul(b, 5), 7), 9) >>> 0;
    const t = b << 9;
    c ^= a;
    d ^= b;
    b ^= c;
    a ^= d;
    c ^= t;
    d = rotl(d, 11);
    return result;
  };

  const next = (): number => nextUint32() / 4294967296;

  const nextInt = (n: number): number => {
    if (!Number.isInteger(n) || n <= 0) {
      throw new RangeError(`Rng.nextInt: n must be a positive integer, got ${String(n)}`);
    }
    return Math.floor(next() * n);
  };

  const normal = (): number => {
    // 1 - next() is in (0, 1], so the log is finite.
    const u = 1 - next();
    const v = next();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  };

  const gamma = (shape: number): number => {
    if (!(shape > 0) || !Number.isFinite(shape)) {
      throw new RangeError(`Rng.gamma: shape must be a positive finite number, got ${String(shape)}`);
    }
    if (shape < 1) {
      const u = 1 - next();
      return gamma(shape + 1) * Math.pow(u, 1 / shape);
    }
    const dd = shape - 1 / 3;
    const cc = 1 / Math.sqrt(9 * dd);
    for (;;) {
      let x: number;
      let v: number;
      do {
        x = normal();
        v = 1 + cc * x;
      } while (v <= 0);
      v = v * v * v;
      const u = 1 - next();
      if (u < 1 - 0.0331 * x * x * x * x) return dd * v;
      if (Math.log(u) < 0.5 * x * x + dd * (1 - v + Math.log(v))) return dd * v;
    }
  };

  return { next, nextInt, normal, gamma };
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

/** Fisher-Yates shuffle in place. */
export function shuffleInPlace(array: Int32Array | number[], rng: Rng): void {
  for (let i = array.length - 1; i > 0; i--) {
    const j = rng.nextInt(i + 1);
    const tmp = array[i];
    array[i] = array[j];
    array[j] = tmp;
  }
}

/** A draw from Dirichlet(alpha, ..., alpha) of dimension n. */
export function dirichlet(rng: Rng, alpha: number, n: number): Float64Array {
  const out = new Float64Array(n);
  let sum = 0;
  for (let i = 0; i < n; i++) {
    out[i] = rng.gamma(alpha);
    sum += out[i];
  }
  if (sum > 0 && Number.isFinite(sum)) {
    for (let i = 0; i < n; i++) out[i] /= sum;
  } else {
    // Every gamma draw underflowed (alpha tiny): the limit of Dir(alpha) is a random vertex.
    out.fill(0);
    out[rng.nextInt(n)] = 1;
  }
  return out;
}
