import { parse as parseYaml } from 'yaml';
import type { ConfigIssue } from './errors.js';
import { isPlainObject, joinPath } from './sources.js';
import type { NodeInfo } from './sources.js';

/** Environment variables used for `${VAR}` interpolation. */
export type Env = Record<string, string | undefined>;

const REF_BODY = /^([A-Za-z_][A-Za-z0-9_]*)(?::([\s\S]*))?$/;
/** How deep defaults may nest (`${A:${B:${C}}}` is two levels); deeper is a config error. */
const MAX_NESTING = 4;

/** Index of the `}` that closes the `${` opened just before `from`, counting nested `${`; -1 if none. */
function closingBrace(text: string, from: number): number {
  let depth = 1;
  for (let i = from; i < text.length; i++) {
    if (text.startsWith('$${', i)) {
      depth++;
      i += 2;
    } else if (text.startsWith('${', i)) {
      depth++;
      i += 1;
    } else if (text[i] === '}' && --depth === 0) return i;
  }
  return -1;
}

/**
 * Expands `${VAR}` and `${VAR:default}` in one string (`$${` writes a literal `${`). The default
 * applies when VAR is unset or empty, and may itself hold references (`${A:${B:x}}`), expanded
 * only when it is used. Returns the text and whether the whole string was one reference (then
 * the caller may re-read it as a YAML scalar).
 */
export function expandString(
  text: string,
  env: Env,
  report: (message: string) => void,
  depth = 0,
): { text: string; whole: boolean } {
  let out = '';
  let refs = 0;
  let whole = false;
  let i = 0;
  while (i < text.length) {
    if (text.startsWith('$${', i)) {
      out += '${';
      i += 3;
      continue;
    }
    if (!text.startsWith('${', i)) {
      out += text[i++];
      continue;
    }
    const end = closingBrace(text, i + 2);
    if (end < 0) {
      report(`unclosed "\${" (write "$\${" for a literal "\${")`);
      return { text, whole: false };
    }
    const replacement = resolveReference(text.slice(i + 2, end), env, report, depth);
    if (replacement === undefined) return { text, whole: false };
    whole = i === 0 && end === text.length - 1;
    out += replacement;
    refs++;
    i = end + 1;
  }
  return { text: out, whole: whole && refs === 1 };
}

/** The value of one `${body}`: the variable, else its default (expanded in turn); undefined after a report. */
function resolveReference(body: string, env: Env, report: (message: string) => void, depth: number): string | undefined {
  const match = REF_BODY.exec(body);
  if (!match) {
    report(`malformed variable reference "\${${body}}" (expected \${NAME} or \${NAME:default}; write "$\${" for a literal "\${")`);
    return undefined;
  }
  const [, name, fallback] = match;
  const value = env[name];
  if (value !== undefined && value !== '') return value;
  if (fallback === undefined) {
    if (value === '') return value;
    report(`environment variable ${name} is not set and \${${name}} has no default (write \${${name}:default} to give one)`);
    return undefined;
  }
  if (!fallback.includes('${')) return fallback;
  if (depth + 1 > MAX_NESTING) {
    report(`the default of \${${name}:...} nests references more than ${MAX_NESTING} levels deep`);
    return undefined;
  }
  let failed = false;
  const expanded = expandString(fallback, env, (message) => {
    failed = true;
    report(`in the default of \${${name}:...}: ${message}`);
  }, depth + 1).text;
  return failed ? undefined : expanded;
}

/** Reads substituted text as a YAML scalar: numbers, booleans and null change type, all else stays text. */
function rereadScalar(text: string): unknown {
  if (text.trim() === '') return text;
  try {
    const value: unknown = parseYaml(text);
    if (typeof value === 'number' || typeof value === 'boolean' || value === null) return value;
  } catch {
    // Not valid YAML on its own: it stays the string it is.
  }
  return text;
}

/**
 * Interpolates every string value of `tree` (keys are left alone), collecting problems as issues.
 * A re-read value stays text where the schema expects a string (`exp_name: ${RUN}` with RUN=123).
 */
export function interpolateTree(
  tree: Record<string, unknown>,
  env: Env,
  meta: Map<string, NodeInfo>,
  fallbackFile: string,
  issues: ConfigIssue[],
  expectsString: (path: string) => boolean,
): Record<string, unknown> {
  const visit = (node: unknown, path: string): unknown => {
    if (typeof node === 'string') {
      if (!node.includes('${')) return node;
      const info = meta.get(path) ?? { file: fallbackFile };
      const result = expandString(node, env, (message) =>
        issues.push({ file: info.file, path, message, line: info.line, col: info.col }),
      );
      return result.whole && !expectsString(path) ? rereadScalar(result.text) : result.text;
    }
    if (Array.isArray(node)) return node.map((item, i) => visit(item, joinPath(path, i)));
    if (isPlainObject(node)) {
      const out: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(node)) out[k] = visit(v, joinPath(path, k));
      return out;
    }
    return node;
  };
  return visit(tree, '') as Record<string, unknown>;
}

/**
 * Turns the deployment guide's flat callback form (`{type: early_stopping, patience: 5}`) into
 * `{type, args}`. A key given both flat and under `args` is reported.
 */
export function normaliseCallbacks(
  tree: Record<string, unknown>,
  meta: Map<string, NodeInfo>,
  fallbackFile: string,
  issues: ConfigIssue[],
): void {
  const callbacks = tree.callbacks;
  if (!Array.isArray(callbacks)) return;
  tree.callbacks = callbacks.map((entry, i) => {
    if (!isPlainObject(entry)) return entry;
    const { type, args, ...flat } = entry;
    if (Object.keys(flat).length === 0) return entry;
    const path = joinPath('callbacks', i);
    if (args !== undefined && !isPlainObject(args)) return entry;
    const merged: Record<string, unknown> = { ...(args ?? {}) };
    for (const [key, value] of Object.entries(flat)) {
      if (key in merged) {
        const info = meta.get(joinPath(path, key)) ?? { file: fallbackFile };
        issues.push({
          file: info.file,
          path: joinPath(path, key),
          message: `given both flat and under args; write it once`,
          line: info.line,
          col: info.col,
        });
      }
      merged[key] = value;
    }
    for (const key of Object.keys(flat)) {
      const info = meta.get(joinPath(path, key));
      if (info) meta.set(joinPath(joinPath(path, 'args'), key), info);
    }
    return type === undefined ? { args: merged } : { type, args: merged };
  });
}
