import { closestName } from '@oiafed/component';

/** One problem found in a config. */
export interface ConfigIssue {
  /** File the offending key came from (the parent file when it was inherited through `extend`). */
  file: string;
  /** Dotted key path such as `trainer.args.max_rounds` or `datasets[0].type`; `(root)` for the top level, `''` for YAML syntax errors. */
  path: string;
  /** What is wrong and what was expected. */
  message: string;
  /** 1-based line of the offending node, when known. */
  line?: number;
  /** 1-based column of the offending node, when known. */
  col?: number;
}

/** Formats one issue: `file: path: message`, or `file:line:col: message` when no key path applies. */
export function formatIssue(issue: ConfigIssue): string {
  if (issue.path === '' && issue.line !== undefined) {
    return `${issue.file}:${issue.line}:${issue.col ?? 1}: ${issue.message}`;
  }
  return issue.path === '' ? `${issue.file}: ${issue.message}` : `${issue.file}: ${issue.path}: ${issue.message}`;
}

/** Issues a {@link ConfigError} message lists; the rest are counted. */
const MAX_LISTED = 20;

/**
 * Thrown for any invalid config: YAML syntax, `extend` problems, missing variables, schema
 * violations. `message` holds one line per issue, so a CLI can print it without a stack trace.
 */
export class ConfigError extends Error {
  /** Every problem found (schema validation reports all of them at once). */
  readonly issues: ConfigIssue[];

  constructor(issues: ConfigIssue[]) {
    // The full list stays in `issues`; the message stops at MAX_LISTED so a garbage file cannot flood a terminal.
    const listed = issues.slice(0, MAX_LISTED).map(formatIssue);
    if (issues.length > MAX_LISTED) listed.push(`... and ${issues.length - MAX_LISTED} more problems`);
    super(listed.join('\n'));
    this.name = 'ConfigError';
    this.issues = issues;
  }
}

/** Longest stretch of file content any message quotes. */
export const MAX_QUOTED = 40;

/**
 * Makes text safe to quote in a message: printable ASCII only (anything else becomes `?`), at
 * most {@link MAX_QUOTED} characters. Messages may quote what a file holds, and `extend` can name
 * any file (`/proc/self/environ`): only a short, harmless prefix of it may reach a terminal or log.
 */
export function sanitizeQuoted(text: string, max = MAX_QUOTED): string {
  const clean = text.replace(/[^\x20-\x7e]/g, '?');
  return clean.length > max ? `${clean.slice(0, max - 3)}...` : clean;
}

/**
 * Shows a key found in a file: quoted when it looks like a key name, otherwise only its length.
 * A file that is no config at all (`extend: /etc/shadow`) has whole lines as keys; none is echoed.
 */
export function showKey(key: string): string {
  return /^[A-Za-z0-9_.-]{1,40}$/.test(key) ? `"${key}"` : `of ${key.length} characters that is no key name (not shown)`;
}

/** Shows a value the way it would be written in YAML/JSON, sanitized and shortened for one-line messages. */
export function showValue(value: unknown): string {
  let text: string;
  if (value === undefined) text = 'nothing';
  else {
    try {
      text = JSON.stringify(value) ?? String(value);
    } catch {
      text = String(value);
    }
  }
  return sanitizeQuoted(text);
}

/** The allowed key closest to `key`, if it is close enough to be a likely typo (the registries' measure). */
export function closestKey(key: string, allowed: readonly string[]): string | undefined {
  return closestName(key, allowed);
}
