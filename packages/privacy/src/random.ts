import { randomBytes } from 'node:crypto';

/** A source of standard normal samples. */
export type NormalSource = () => number;

/** A source of uniform samples in [0, 1). */
export type UniformSource = () => number;

/** Box–Muller: two uniforms to two independent standard normals; the second is kept for the next call. */
export function boxMuller(uniform: UniformSource): NormalSource {
  let spare: number | undefined;
  return () => {
    if (spare !== undefined) {
      const s = spare;
      spare = undefined;
      return s;
    }
    const u1 = 1 - uniform(); // (0, 1]: log(u1) is finite
    const u2 = uniform();
    const r = Math.sqrt(-2 * Math.log(u1));
    spare = r * Math.sin(2 * Math.PI * u2);
    return r * Math.cos(2 * Math.PI * u2);
  };
}

/** Uniforms with 53 random bits each from node:crypto's CSPRNG, read 4 KiB at a time. */
export function cryptoUniform(): UniformSource {
  let buffer = randomBytes(4096);
  let offset = 0;
  return () => {
    if (offset + 8 > buffer.length) {
      buffer = randomBytes(4096);
      offset = 0;
    }
    const hi = buffer.readUInt32BE(offset) >>> 5; // 27 bits
    const lo = buffer.readUInt32BE(offset + 4) >>> 6; // 26 bits
    offset += 8;
    return (hi * 67108864 + lo) / 9007199254740992;
  };
}

/** Normals for production noise: Box–Muller over the CSPRNG. */
export function cryptoNormal(): NormalSource {
  return boxMuller(cryptoUniform());
}

/**
 * Reproducible uniforms (xoshiro128**, seeded through splitmix32) for tests and simulations only:
 * noise from a known seed protects nothing.
 */
export function seededUniform(seed: number): UniformSource {
  let x = seed >>> 0;
  const next = () => {
    x = (x + 0x9e3779b9) >>> 0;
    let z = x;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return (z ^ (z >>> 16)) >>> 0;
  };
  const s = [next(), next(), next(), next()];
  return () => {
    const result = Math.imul(rotl(Math.imul(s[1], 5) >>> 0, 7), 9) >>> 0;
    const t = (s[1] << 9) >>> 0;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 11);
    return result / 4294967296;
  };
}

function rotl(v: number, k: number): number {
  return ((v << k) | (v >>> (32 - k))) >>> 0;
}

/** Reproducible normals for tests: Box–Muller over {@link seededUniform}. */
export function seededNormal(seed: number): NormalSource {
  return boxMuller(seededUniform(seed));
}
