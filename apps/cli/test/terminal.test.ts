import { describe, expect, it } from 'vitest';
import { renderTerminal, runCliOnPty, tempDir, tinyTrainerYaml } from './helpers.js';

/** A serial federation at a terminal: a registration bar, a rounds bar, log lines and round lines. */
async function serialRunOnPty(env: NodeJS.ProcessEnv) {
  const dir = tempDir('pty');
  const config = tinyTrainerYaml(dir);
  const result = await runCliOnPty(['run', '--config', config, '--mode', 'serial', '--num-clients', '2', '--set', 'trainer.args.max_rounds=3'], { env, cwd: dir });
  expect(result.code, result.stdout.slice(-3000)).toBe(0);
  return result.stdout;
}

const BAR = /\[[#-]{5,}\]/;
const LOG_OR_ROUND_LINE = /\b(INFO|WARN|ERROR)\b|^round \d+\/\d+ +learners/;

describe('oiafed at a terminal', () => {
  it('a TTY gets colored levels, and no screen line holds both a progress bar and a log or round line', async () => {
    const raw = await serialRunOnPty({});
    expect(raw).toContain('\x1b[32mINFO');
    const screen = renderTerminal(raw);
    expect(screen.some((line) => /^rounds \[#+\] 3\/3/.test(line))).toBe(true);
    expect(screen.filter((line) => /^round \d\/3 +learners 2\/2/.test(line))).toHaveLength(3);
    expect(screen.filter((line) => / INFO +\[trainer\]/.test(line)).length).toBeGreaterThan(3);
    const mixed = screen.filter((line) => BAR.test(line) && LOG_OR_ROUND_LINE.test(line));
    expect(mixed).toEqual([]);
  });

  it('NO_COLOR=1 on a TTY: no ANSI escape codes at all, bars still drawn', async () => {
    const raw = await serialRunOnPty({ NO_COLOR: '1' });
    expect(raw).not.toContain('\x1b');
    expect(raw).toMatch(/ INFO +\[trainer\]/);
    expect(renderTerminal(raw).some((line) => /^rounds \[#+\] 3\/3/.test(line))).toBe(true);
  });
});
