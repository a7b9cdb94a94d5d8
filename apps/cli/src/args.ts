/**
 * Flag parsing for the `oiafed` verbs: node's parseArgs underneath, with messages of our own
 * (the command's usage line and the closest flag) instead of parseArgs' text, and the version.
 */
import { readFileSync } from 'node:fs';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { closestKey } from '@oiafed/config';

/** A user mistake: printed without a stack trace, exit status 2. */
export class UsageError extends Error {}

export type OptionsConfig = NonNullable<ParseArgsConfig['options']>;

/** The verb being parsed and its usage line, for messages. */
export interface FlagContext {
  command: string;
  usage: string;
}

type Token = { kind: string; name?: string; rawName?: string; value?: string; inlineValue?: boolean };

/** The version in this CLI's package.json (one folder above both src/ and dist/), read at run time. */
export function cliVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version?: string };
  return pkg.version ?? 'unknown';
}

/**
 * Turns parseArgs' strict-mode failure into a {@link UsageError} in our words: the flag at fault
 * (with the closest known flag when it is unknown), the verb's usage line and where to look.
 */
export function flagError(args: string[], options: OptionsConfig, context: FlagContext, error: Error): UsageError {
  const { tokens } = parseArgs({ args, options, allowPositionals: true, strict: false, tokens: true });
  const problem = (tokens as Token[]).map((token) => tokenProblem(token, options)).find((p) => p !== undefined);
  const head = `oiafed ${context.command}: ${problem ?? error.message}`;
  return new UsageError(`${head}\nusage: ${context.usage}\n(oiafed ${context.command} --help lists every option)`);
}

function tokenProblem(token: Token, options: OptionsConfig): string | undefined {
  if (token.kind !== 'option' || token.name === undefined) return undefined;
  const spec = options[token.name];
  if (!spec) {
    const guess = closestKey(token.name, Object.keys(options));
    return `unknown option ${token.rawName}${guess ? `; did you mean --${guess}?` : ''}`;
  }
  if (spec.type === 'string' && typeof token.value !== 'string') return `${token.rawName} needs a value`;
  if (spec.type === 'boolean' && token.inlineValue) return `${token.rawName} takes no value`;
  return undefined;
}
