import { closeSync, fstatSync, openSync, readSync, realpathSync, statSync } from 'node:fs';
import { dirname, isAbsolute, join, normalize, resolve } from 'node:path';
import { isMap, isPair, isScalar, isSeq, LineCounter, parseDocument } from 'yaml';
import type { Node as YamlNode } from 'yaml';
import { ConfigError, sanitizeQuoted, showValue } from './errors.js';
import type { ConfigIssue } from './errors.js';

/** Where one value of the merged config came from. */
export interface NodeInfo {
  file: string;
  line?: number;
  col?: number;
}

/** A config tree plus, per key path, where each value came from. */
export interface Layer {
  value: Record<string, unknown>;
  meta: Map<string, NodeInfo>;
  /** Display name of the file the tree was read from (the including file for a merged chain). */
  file: string;
}

/** Resolves `${VAR}` in the `extend` value itself; supplied by the loader. */
export type ExpandString = (text: string, info: NodeInfo, path: string) => string;

/** Appends a key or index to a dotted key path (`''` is the root). */
export function joinPath(parent: string, key: string | number): string {
  if (typeof key === 'number') return `${parent}[${key}]`;
  return parent === '' ? key : `${parent}.${key}`;
}

/** Shows a key path in messages. */
export function showPath(path: string): string {
  return path === '' ? '(root)' : path;
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value) as unknown;
  return proto === Object.prototype || proto === null;
}

/** Deep merge for `extend`: maps merge, lists and scalars of `over` replace those of `base`. */
export function deepMerge(base: unknown, over: unknown): unknown {
  if (!isPlainObject(base) || !isPlainObject(over)) return over;
  const out: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(over)) {
    out[key] = key in base ? deepMerge(base[key], value) : value;
  }
  return out;
}

/** Config files are small; anything bigger is not one (and `extend: /dev/zero` must not eat memory). */
const MAX_CONFIG_BYTES = 4 * 1024 * 1024;
/** YAML syntax errors listed per file; garbage yields thousands, each quoting a piece of it. */
const MAX_SYNTAX_ERRORS = 5;

/** Reads a config file's text, or says in a few words why it is not a readable config file. */
function readConfigText(absPath: string): { text: string } | { why: string } {
  let fd: number | undefined;
  try {
    // stat before open: opening a FIFO would block until someone writes to it.
    if (!statSync(absPath).isFile()) return { why: statSync(absPath).isDirectory() ? 'is a directory' : 'not a regular file' };
    fd = openSync(absPath, 'r');
    if (!fstatSync(fd).isFile()) return { why: 'not a regular file' };
    const buf = Buffer.alloc(MAX_CONFIG_BYTES + 1);
    let size = 0;
    for (let n = 1; n > 0 && size < buf.length; size += n) n = readSync(fd, buf, size, buf.length - size, null);
    if (size > MAX_CONFIG_BYTES) return { why: `larger than ${MAX_CONFIG_BYTES / (1024 * 1024)} MB, not a config file` };
    // Binary content (NUL bytes, e.g. /proc/self/environ) is reported without quoting any of it.
    if (buf.subarray(0, size).includes(0)) return { why: 'holds binary data (NUL bytes), not YAML text' };
    return { text: buf.toString('utf8', 0, size) };
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return { why: code === 'ENOENT' ? 'file not found' : code === 'EISDIR' ? 'is a directory' : code === 'EACCES' ? 'permission denied' : `cannot read (${code ?? 'error'})` };
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/** Reads one YAML file into a tree with per-path positions. Throws ConfigError on syntax errors. */
export function readYamlFile(absPath: string, display: string, readIssue?: ConfigIssue): Layer {
  const read = readConfigText(absPath);
  if ('why' in read) throw new ConfigError([readIssue ?? { file: display, path: '', message: `cannot read config: ${read.why}` }]);
  return parseYamlText(read.text, display);
}

/** A YAML parser message with every quoted piece of the file cut to a short, sanitized prefix. */
function yamlMessage(message: string): string {
  const first = message.split('\n')[0].replace(/ at line \d+, column \d+:?$/, '');
  const quoted = first.replace(/"((?:[^"\\]|\\.)*)"/g, (_all, inner: string) => `"${sanitizeQuoted(inner)}"`);
  return sanitizeQuoted(quoted, 160);
}

/** Parses YAML text into a tree with per-path positions. Throws ConfigError on syntax errors. */
export function parseYamlText(text: string, display: string): Layer {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: true });
  if (doc.errors.length > 0) {
    const issues: ConfigIssue[] = doc.errors.slice(0, MAX_SYNTAX_ERRORS).map((e) => ({
      file: display,
      path: '',
      message: yamlMessage(e.message),
      line: e.linePos?.[0].line ?? 1,
      col: e.linePos?.[0].col ?? 1,
    }));
    const more = doc.errors.length - issues.length;
    if (more > 0) issues.push({ file: display, path: '', message: `... and ${more} more YAML syntax errors` });
    throw new ConfigError(issues);
  }
  let value: unknown;
  try {
    value = doc.toJS({ maxAliasCount: 1000 });
  } catch (err) {
    throw new ConfigError([{ file: display, path: '', message: yamlMessage((err as Error).message) }]);
  }
  if (value === null || value === undefined) value = {};
  if (!isPlainObject(value)) {
    throw new ConfigError([
      { file: display, path: '(root)', message: `a config must be a mapping of keys to values (got ${showValue(value)})`, line: 1, col: 1 },
    ]);
  }
  const meta = new Map<string, NodeInfo>();
  const place = (node: YamlNode | null | undefined, fallback?: YamlNode | null): NodeInfo => {
    const at = node?.range ?? fallback?.range;
    const info: NodeInfo = { file: display };
    if (at) Object.assign(info, lineCounter.linePos(at[0]));
    return info;
  };
  const walk = (node: unknown, path: string): void => {
    if (isMap(node)) {
      for (const pair of node.items) {
        if (!isPair(pair)) continue;
        const key = isScalar(pair.key) ? String(pair.key.value) : String(pair.key);
        const child = joinPath(path, key);
        meta.set(child, place(pair.key as YamlNode | null, pair.value as YamlNode | null));
        walk(pair.value, child);
      }
    } else if (isSeq(node)) {
      node.items.forEach((item, i) => {
        const child = joinPath(path, i);
        meta.set(child, place(item as YamlNode | null));
        walk(item, child);
      });
    }
  };
  meta.set('', { file: display, line: 1, col: 1 });
  walk(doc.contents, '');
  return { value, meta, file: display };
}

/** Records every path of `value` as coming from `file` (trees built in code have no positions). */
export function inlineLayer(value: Record<string, unknown>, file: string): Layer {
  const meta = new Map<string, NodeInfo>();
  const walk = (node: unknown, path: string): void => {
    meta.set(path, { file });
    if (Array.isArray(node)) node.forEach((item, i) => walk(item, joinPath(path, i)));
    else if (isPlainObject(node)) for (const [k, v] of Object.entries(node)) walk(v, joinPath(path, k));
  };
  walk(value, '');
  return { value, meta, file };
}

/**
 * Applies `layer`'s `extend` chain: loads each parent relative to the file that names it,
 * deep-merges child over parent and keeps, per path, the file the surviving value came from.
 * `chain` holds the real paths already being loaded, for cycle detection.
 */
export function applyExtends(layer: Layer, baseDir: string, chain: Array<{ abs: string; display: string }>, expand: ExpandString): Layer {
  const ext = layer.value.extend;
  if (ext === undefined) return layer;
  const { extend: _consumed, ...own } = layer.value;
  const extInfo = layer.meta.get('extend') ?? { file: layer.file };
  const issue = (message: string): ConfigError =>
    new ConfigError([{ file: extInfo.file, path: 'extend', message, line: extInfo.line, col: extInfo.col }]);
  if (typeof ext !== 'string' || ext.trim() === '') {
    throw issue(`must be the path of a parent config file, relative to this file (got ${showValue(ext)})`);
  }
  const target = expand(ext, extInfo, 'extend');
  const abs = resolve(baseDir, target);
  const display = isAbsolute(target) ? target : normalize(join(dirname(layer.file), target));
  let real: string;
  try {
    real = realpathSync(abs);
  } catch {
    throw issue(`file not found: ${showValue(target)} (resolved to ${abs})`);
  }
  if (chain.some((c) => c.abs === real)) {
    const names = [...chain.map((c) => c.display), display].join(' -> ');
    throw issue(`extend cycle: ${names}`);
  }
  const parentRaw = readYamlFile(real, display);
  const parent = applyExtends(parentRaw, dirname(real), [...chain, { abs: real, display }], expand);
  const merged = deepMerge(parent.value, own) as Record<string, unknown>;
  const meta = new Map<string, NodeInfo>();
  const walk = (node: unknown, path: string): void => {
    const info = layer.meta.get(path) ?? parent.meta.get(path);
    if (info) meta.set(path, info);
    if (Array.isArray(node)) node.forEach((item, i) => walk(item, joinPath(path, i)));
    else if (isPlainObject(node)) for (const [k, v] of Object.entries(node)) walk(v, joinPath(path, k));
  };
  walk(merged, '');
  return { value: merged, meta, file: layer.file };
}
