import { describe, expect, it } from 'vitest';
import { runCli, tempDir, tinyTrainerYaml } from './helpers.js';

/** `dashboard: {enabled, host, port, auth_token}` on the trainer (issue 17 §1), checked by `oiafed validate`. */
describe('validate checks the dashboard section', () => {
  it('accepts a full section and refuses a bad port and an empty token with exit 2, naming the key paths', async () => {
    const dir = tempDir('validate-dashboard');
    const good = tinyTrainerYaml(tempDir('validate-dashboard-good'), 'dashboard: {enabled: true, host: 127.0.0.1, port: 0, auth_token: s3cret}\n');
    const ok = await runCli(['validate', good]);
    expect(ok.code, ok.stderr).toBe(0);
    const bad = tinyTrainerYaml(dir, 'dashboard: {enabled: true, port: 70000, auth_token: ""}\n');
    const result = await runCli(['validate', bad]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(`${bad}:`);
    expect(result.stderr).toMatch(/dashboard\.port: must be <= 65535/);
    expect(result.stderr).toMatch(/dashboard\.auth_token: must not be empty/);
  });
});
