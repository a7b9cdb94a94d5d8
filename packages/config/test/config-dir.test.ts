import { mkdirSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig, resolveConfig, stringifyConfig } from '@oiafed/config';
import { MINIMAL, writeTree } from './helpers.js';

describe('config_dir records where a config came from (plugins are looked up there first)', () => {
  it('loadConfig fills in the directory of the file named, also for a parent reached through extend', () => {
    const dir = writeTree({ 'project/n.yaml': `extend: ../shared/base.yaml\n${MINIMAL}`, 'shared/base.yaml': 'plugins: [./p.mjs]\n' });
    const config = loadConfig(join(dir, 'project/n.yaml'), { env: {} });
    expect(config.config_dir).toBe(join(dir, 'project'));
    expect(config.plugins).toEqual(['./p.mjs']);
  });

  it('is kept as written when given, relative values taken from the file', () => {
    const dir = writeTree({ 'a/n.yaml': `${MINIMAL}config_dir: ../elsewhere\n` });
    expect(loadConfig(join(dir, 'a/n.yaml'), { env: {} }).config_dir).toBe(join(dir, 'elsewhere'));
  });

  it('survives the resolved text oiafed launch writes for its nodes', () => {
    const dir = writeTree({ 'project/n.yaml': MINIMAL });
    const config = loadConfig(join(dir, 'project/n.yaml'), { env: {} });
    const again = writeTree({ 'n.yaml': stringifyConfig(config) });
    expect(loadConfig(join(again, 'n.yaml'), { env: {} }).config_dir).toBe(join(dir, 'project'));
  });

  it('is the directory of the file name given to resolveConfig, and absent for an inline config', () => {
    const dir = writeTree({});
    expect(resolveConfig({ node_id: 'n', role: 'trainer' }, { file: join(dir, 'virtual.yaml'), env: {} }).config_dir).toBe(dir);
    expect(resolveConfig({ node_id: 'n', role: 'trainer' }, { env: {} }).config_dir).toBeUndefined();
  });

  it('is the directory of the path named, not of a symlink target', () => {
    const dir = writeTree({ 'real/n.yaml': MINIMAL });
    mkdirSync(join(dir, 'project'));
    symlinkSync(join(dir, 'real/n.yaml'), join(dir, 'project/n.yaml'));
    expect(loadConfig(join(dir, 'project/n.yaml'), { env: {} }).config_dir).toBe(join(dir, 'project'));
  });
});
