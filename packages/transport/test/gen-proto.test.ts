import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = join(fileURLToPath(new URL('.', import.meta.url)), '..', '..', '..');

describe('generated protobuf code', () => {
  it('matches what scripts/gen-proto.mjs generates from proto/', () => {
    const res = spawnSync(process.execPath, [join(root, 'scripts', 'gen-proto.mjs'), '--check'], { cwd: root, encoding: 'utf8' });
    expect(res.stderr + res.stdout).toContain('up to date');
    expect(res.status).toBe(0);
  });
});
