import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig, resolveConfig } from '@oiafed/config';
import { configError, MINIMAL, writeTree } from './helpers.js';

/** Loads `n.yaml` = `extend: <target>` + a minimal body and returns the error message. */
function extendError(target: string, files: Record<string, string> = {}): string {
  const dir = writeTree({ ...files, 'n.yaml': `extend: ${JSON.stringify(target)}\n${MINIMAL}` });
  const resolved = target.startsWith('/') ? target : join(dir, target);
  return configError(() => loadConfig(join(dir, 'n.yaml'), { env: {} })).message.replaceAll(dir, '<dir>') + `\n(target ${resolved})`;
}

/** Every quoted piece of `message` is printable ASCII and at most 40 characters. */
function expectShortQuotes(message: string): void {
  expect(message).toMatch(/^[\x20-\x7e\n]*$/);
  for (const [, quoted] of message.matchAll(/"([^"\n]*)"/g)) expect(quoted!.length).toBeLessThanOrEqual(40);
}

describe('files reached through extend are not echoed into errors', () => {
  it('/proc/self/environ: refused as binary, no variable value quoted', () => {
    const message = extendError('/proc/self/environ');
    expect(message).toContain('/proc/self/environ: cannot read config: holds binary data (NUL bytes), not YAML text');
    const values = readFileSync('/proc/self/environ', 'latin1').split('\0').map((kv) => kv.slice(kv.indexOf('=') + 1));
    for (const value of values.filter((v) => v.length >= 12 && !v.startsWith('/'))) expect(message).not.toContain(value);
  });

  it('a text file holding a secret: only a short, sanitized prefix of it is quoted', () => {
    const secret = `TOKEN=${'s3cr3t'.repeat(20)}\u001b[31mred\u0007`;
    const message = extendError('leak.txt', { 'leak.txt': `${secret}\n` });
    expect(message).toContain('<dir>/leak.txt: (root): a config must be a mapping of keys to values (got "TOKEN=');
    expect(message).not.toContain('s3cr3t'.repeat(7));
    expect(message).not.toContain('\u001b');
    expectShortQuotes(message.split('\n')[0]!);
  });

  it('garbage YAML: at most five syntax errors, each quoting a short printable prefix', () => {
    const lines = Array.from({ length: 200 }, (_, i) => `key${i}: "unterminated ${'x'.repeat(200)} \u001b]0;title\u0007 : [ {`);
    const message = extendError('garbage.yaml', { 'garbage.yaml': lines.join('\n') });
    const body = message.split('\n').slice(0, -1);
    expect(body.length).toBeLessThanOrEqual(6);
    expect(body.at(-1)).toMatch(/\.\.\. and \d+ more YAML syntax errors$/);
    expectShortQuotes(body.join('\n'));
  });

  it('a file of many unknown keys that are no key names: none echoed, the list capped at 20 lines', () => {
    const shadowLike = Array.from({ length: 40 }, (_, i) => `user${i}:$6$${'A'.repeat(60)}:19000:0:99999:7:::`).join('\n');
    const dir = writeTree({ 'shadow': `${shadowLike}\n`, 'n.yaml': `extend: shadow\n${MINIMAL}` });
    const message = configError(() => loadConfig(join(dir, 'n.yaml'), { env: {} })).message;
    expect(message).not.toContain('A'.repeat(40));
    expect(message).not.toContain('user0');
    expect(message).toMatch(/unknown key of \d+ characters that is no key name \(not shown\)/);
    expect(message.split('\n')).toHaveLength(21);
    expect(message.split('\n').at(-1)).toBe('... and 20 more problems');
  });

  it('a FIFO and a device are refused without reading them', () => {
    const dir = writeTree({});
    execFileSync('mkfifo', [join(dir, 'pipe')]);
    expect(extendError(join(dir, 'pipe'))).toContain('pipe: cannot read config: not a regular file');
    expect(extendError('/dev/zero')).toContain('/dev/zero: cannot read config: not a regular file');
  });

  it('a file over 4 MB is refused', () => {
    const dir = writeTree({});
    writeFileSync(join(dir, 'big.yaml'), `# ${'x'.repeat(4 * 1024 * 1024)}\n`);
    expect(extendError(join(dir, 'big.yaml'))).toContain('big.yaml: cannot read config: larger than 4 MB, not a config file');
  });
});

describe('nested ${...} in defaults', () => {
  const expName = (value: string, env: Record<string, string>) =>
    resolveConfig({ node_id: 'n', role: 'trainer', exp_name: value }, { env }).exp_name;

  it('a default may itself be a reference, expanded only when used', () => {
    expect(expName('${A:${B}}', { B: 'from-b' })).toBe('from-b');
    expect(expName('${A:${B}}', { A: 'from-a' })).toBe('from-a');
    expect(expName('${A:${B:${C:deep}}}', {})).toBe('deep');
    expect(expName('run-${A:pre-${B:b}-post}-x', {})).toBe('run-pre-b-post-x');
    expect(expName('${A:$${B}}', {})).toBe('${B}');
  });

  it('a nested reference that cannot be resolved names the file, key path and both variables', () => {
    const dir = writeTree({ 'n.yaml': 'node_id: n\nrole: trainer\nexp_name: "${A:${B}}"\n' });
    const error = configError(() => loadConfig(join(dir, 'n.yaml'), { env: {} }));
    expect(error.message).toBe(
      `${join(dir, 'n.yaml')}: exp_name: in the default of \${A:...}: environment variable B is not set and \${B} has no default (write \${B:default} to give one)`,
    );
  });

  it('a whole nested reference is re-read as a YAML scalar like a plain one', () => {
    const config = resolveConfig({ node_id: 'n', role: 'trainer', seed: '${SEED:${BASE_SEED:7}}' }, { env: {} });
    expect(config.seed).toBe(7);
  });

  it('nesting deeper than four levels is an error, not a stack overflow', () => {
    const deep = '${A:'.repeat(6) + 'x' + '}'.repeat(6);
    const error = configError(() => resolveConfig({ node_id: 'n', role: 'trainer', exp_name: deep }, { env: {} }));
    expect(error.message).toMatch(/<inline>: exp_name: .*nests references more than 4 levels deep/);
  });
});
