/**
 * Reading loader arguments with errors that say which dataset, which key and what was expected.
 */
import { homedir } from 'node:os';
import { join } from 'node:path';

/** Typed access to `spec.args` of one dataset type. */
export class ArgReader {
  constructor(
    private readonly type: string,
    private readonly args: Record<string, unknown>,
  ) {}

  private where(key: string): string {
    return `datasets[type=${this.type}].args.${key}`;
  }

  private bad(key: string, expected: string): Error {
    return new TypeError(`${this.where(key)}: expected ${expected}, got ${JSON.stringify(this.args[key])}`);
  }

  /** The value as given, unchecked. */
  raw(key: string): unknown {
    return this.args[key];
  }

  /** An error for `key` (a dotted path below args) naming what was expected. */
  error(key: string, expected: string, value: unknown = this.args[key]): Error {
    return new TypeError(`${this.where(key)}: expected ${expected}, got ${JSON.stringify(value)}`);
  }

  has(key: string): boolean {
    return this.args[key] !== undefined && this.args[key] !== null;
  }

  string(key: string): string | undefined {
    const v = this.args[key];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'string' || v === '') throw this.bad(key, 'a non-empty string');
    return v;
  }

  bool(key: string, fallback: boolean): boolean {
    const v = this.args[key];
    if (v === undefined || v === null) return fallback;
    if (typeof v === 'boolean') return v;
    if (v === 'true' || v === 'false') return v === 'true';
    throw this.bad(key, 'true or false');
  }

  number(key: string, fallback: number, check: { min?: number; exclusiveMin?: number; max?: number } = {}): number {
    const raw = this.args[key];
    if (raw === undefined || raw === null) return fallback;
    const v = typeof raw === 'string' && raw.trim() !== '' ? Number(raw) : raw;
    const ranges: string[] = [];
    if (check.min !== undefined) ranges.push(`>= ${check.min}`);
    if (check.exclusiveMin !== undefined) ranges.push(`> ${check.exclusiveMin}`);
    if (check.max !== undefined) ranges.push(`<= ${check.max}`);
    const expected = `a number${ranges.length ? ` ${ranges.join(' and ')}` : ''}`;
    if (typeof v !== 'number' || !Number.isFinite(v)) throw this.bad(key, expected);
    if (check.min !== undefined && v < check.min) throw this.bad(key, expected);
    if (check.exclusiveMin !== undefined && v <= check.exclusiveMin) throw this.bad(key, expected);
    if (check.max !== undefined && v > check.max) throw this.bad(key, expected);
    return v;
  }

  int(key: string, fallback: number, min = 0): number {
    const v = this.number(key, fallback, { min });
    if (!Number.isInteger(v)) throw this.bad(key, `an integer >= ${min}`);
    return v;
  }
}

/**
 * Where a dataset's files live when `args.data_dir` is not given:
 * `$OIAFED_DATA_DIR/<type>` or `~/.cache/oiafed/datasets/<type>`.
 */
export function defaultCacheDir(type: string): string {
  const base = process.env.OIAFED_DATA_DIR || join(homedir(), '.cache', 'oiafed', 'datasets');
  return join(base, type);
}

/** Env var that overrides a dataset's download base URL, e.g. `OIAFED_CIFAR10_BASE_URL`. */
export function baseUrlEnvVar(type: string): string {
  return `OIAFED_${type.toUpperCase()}_BASE_URL`;
}

/** `args.base_url`, then the env var, then the standard location; always ends with `/`. */
export function resolveBaseUrl(type: string, args: ArgReader, fallback: string): string {
  const url = args.string('base_url') ?? process.env[baseUrlEnvVar(type)] ?? fallback;
  return url.endsWith('/') ? url : `${url}/`;
}

/**
 * The checksum a download of `file` must match: `args.checksums[file]` (32 hex digits = md5,
 * 64 = sha256) when given, none when `args.checksums` is `false`, else the standard md5.
 */
export function checksumFor(args: ArgReader, file: string, standardMd5: string | undefined): { md5?: string; sha256?: string } {
  const raw = args.raw('checksums');
  if (raw === false) return {};
  if (raw !== undefined && raw !== null) {
    if (typeof raw !== 'object' || Array.isArray(raw)) {
      throw args.error('checksums', 'false or a map from file name to md5/sha256 hex');
    }
    const v = (raw as Record<string, unknown>)[file];
    if (v !== undefined) {
      if (typeof v === 'string' && /^[0-9a-fA-F]{32}$/.test(v)) return { md5: v };
      if (typeof v === 'string' && /^[0-9a-fA-F]{64}$/.test(v)) return { sha256: v };
      throw args.error(`checksums[${JSON.stringify(file)}]`, 'an md5 (32 hex digits) or sha256 (64 hex digits)', v);
    }
  }
  return standardMd5 ? { md5: standardMd5 } : {};
}
