import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { renderReport, RunHistory } from '@oiafed/tracker';

const dirs: string[] = [];
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'oiafed-tracker-report-'));
  dirs.push(dir);
  return dir;
}
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

describe('renderReport', () => {
  it('writes a self-contained HTML report with one polyline per series', () => {
    const runDir = tempDir();
    const history = new RunHistory(runDir);
    for (let r = 1; r <= 8; r++) {
      history.append({
        round: r,
        timestamp: new Date(Date.UTC(2026, 10, 29, 3, r)).toISOString(),
        participants: r % 3 === 0 ? 4 : 5,
        // Evaluated every other round: the accuracy line has 4 points.
        ...(r % 2 === 0 ? { accuracy: 0.3 + r * 0.07, loss: 2 - r * 0.2 } : {}),
        train_loss: 2.2 - r * 0.2,
        duration_s: 10 + r,
        bytes_sent: 4_000_000,
        bytes_received: 3_900_000,
      });
    }
    history.writeSummary({ exp_name: 'cifar10 fedavg <iid>', rounds: 8 });
    const path = renderReport(runDir);
    expect(path).toBe(join(runDir, 'report.html'));
    const html = readFileSync(path, 'utf8');
    expect(html.startsWith('<!DOCTYPE html>')).toBe(true);
    expect(html).toContain('<title>cifar10 fedavg &#60;iid&#62;</title>');
    expect(html).not.toMatch(/<script|<link|https?:\/\/(?!www\.w3\.org\/2000\/svg)/);
    expect(html.match(/<svg /g)).toHaveLength(4);
    const series = [...html.matchAll(/<polyline data-series="([^"]+)" points="([^"]+)"/g)].map((m) => [m[1], m[2].split(' ').length]);
    expect(series).toEqual([
      ['accuracy', 4],
      ['global loss', 4],
      ['train loss', 8],
      ['participants', 8],
      ['duration', 8],
    ]);
    for (let r = 1; r <= 8; r++) expect(html).toContain(`<td>${r}</td>`);
    expect(html).toContain('<th>Best accuracy</th><td>86% (round 8)</td>');
    expect(html).toContain('<th>Bytes sent</th><td>32 MB</td>');
    expect(html).toContain('<th>Total round time</th><td>116 s</td>');
  });

  it('honours out and title, and renders an empty history', () => {
    const runDir = tempDir();
    new RunHistory(runDir).writeSummary({});
    const history = new RunHistory(runDir);
    history.append({ round: 0, timestamp: '2026-11-29T00:00:00Z', participants: 0, duration_s: 0, accuracy: 0.1 });
    const out = join(runDir, 'sub', 'r.html');
    expect(renderReport(runDir, { out, title: 'Mine' })).toBe(out);
    const html = readFileSync(out, 'utf8');
    expect(html).toContain('<h1>Mine</h1>');
    expect(html).toContain('data-series="accuracy"');
    expect(html).toContain('not recorded');
  });
});
