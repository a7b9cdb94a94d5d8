/**
 * The benches' command-line flags, read one way: node:util parseArgs, strict, so an unknown flag
 * or a flag without its value is an error that points at the bench's header (its usage), and
 * number values are checked with the words their errors print. A bare `--` is skipped: npm passes
 * the second one of `npm run bench:x -- --json -- --quick` through.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';

type FlagOptions = NonNullable<ParseArgsConfig['options']>;
type FlagValues<T extends FlagOptions> = ReturnType<typeof parseArgs<{ args: string[]; options: T; strict: true; allowPositionals: false }>>['values'];

/** The values of `argv`'s flags as `options` declares them (names without `--`); `usage` names the bench file. */
export function readFlags<const T extends FlagOptions>(argv: readonly string[], options: T, usage: string): FlagValues<T> {
  try {
    return parseArgs({ args: argv.filter((arg) => arg !== '--'), options, strict: true, allowPositionals: false }).values;
  } catch (error) {
    throw new Error(`${(error as Error).message}; see the header of ${usage}`);
  }
}

/** What a number flag accepts, and how its error says so. */
export interface NumberCheck {
  test: (n: number) => boolean;
  expected: string;
}

export const INTEGER: NumberCheck = { test: Number.isInteger, expected: 'an integer' };
export const COUNT: NumberCheck = { test: (n) => Number.isInteger(n) && n >= 1, expected: 'an integer >= 1' };
export const POSITIVE: NumberCheck = { test: (n) => n > 0, expected: 'a positive number' };
export const FRACTION: NumberCheck = { test: (n) => n > 0 && n <= 1, expected: 'a number in (0, 1]' };

/** `text`, the value of `flag`, as a number that passes `check`. */
export function numberFlag(flag: string, text: string, check: NumberCheck): number {
  const n = Number(text);
  if (text.trim() === '' || !Number.isFinite(n) || !check.test(n)) throw new Error(`${flag}: expected ${check.expected}, got "${text}"`);
  return n;
}

/** A comma-separated value as its non-empty trimmed items. */
export function listFlag(text: string): string[] {
  return text
    .split(',')
    .map((item) => item.trim())
    .filter(Boolean);
}

/** A comma-separated value of numbers, each passing `check`. */
export function numberListFlag(flag: string, text: string, check: NumberCheck): number[] {
  return listFlag(text).map((item) => numberFlag(flag, item, check));
}
