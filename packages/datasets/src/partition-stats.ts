/**
 * Human-readable views of a partition's label histogram: a text table for the terminal and a
 * self-contained HTML page with an inline SVG stacked bar chart (`oiafed partition-stats`).
 */

/** Ten distinguishable colours (Tableau 10); classes beyond ten cycle through hues. */
const PALETTE = ['#4e79a7', '#f28e2b', '#e15759', '#76b7b2', '#59a14f', '#edc948', '#b07aa1', '#ff9da7', '#9c755f', '#bab0ac'];

function colour(c: number): string {
  return c < PALETTE.length ? PALETTE[c] : `hsl(${(c * 137.508) % 360}, 55%, 55%)`;
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`);
}

/**
 * Renders `histogram[part][class]` (from {@link labelHistogram}).
 * `text`: one row per partition with per-class counts and the total.
 * `html`: a complete page whose `<svg>` stacks one bar per partition, coloured by class.
 */
export function renderPartitionStats(histogram: number[][], options: { title?: string } = {}): { text: string; html: string } {
  const title = options.title ?? 'Partition label distribution';
  const numClasses = histogram.reduce((m, row) => Math.max(m, row.length), 0);
  const totals = histogram.map((row) => row.reduce((a, b) => a + b, 0));
  return { text: renderText(histogram, numClasses, totals, title), html: renderHtml(histogram, numClasses, totals, title) };
}

function renderText(histogram: number[][], numClasses: number, totals: number[], title: string): string {
  const header = ['part', ...Array.from({ length: numClasses }, (_, c) => `c${c}`), 'total', 'labels'];
  const rows = histogram.map((row, p) => [
    String(p),
    ...Array.from({ length: numClasses }, (_, c) => String(row[c] ?? 0)),
    String(totals[p]),
    String(row.filter((v) => v > 0).length),
  ]);
  const sum = totals.reduce((a, b) => a + b, 0);
  const classTotals = Array.from({ length: numClasses }, (_, c) => histogram.reduce((a, row) => a + (row[c] ?? 0), 0));
  rows.push(['all', ...classTotals.map(String), String(sum), String(classTotals.filter((v) => v > 0).length)]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]): string => cells.map((cell, i) => cell.padStart(widths[i])).join('  ');
  const sizes = totals.length > 0 ? `min ${Math.min(...totals)}, max ${Math.max(...totals)}, mean ${(sum / totals.length).toFixed(1)}` : 'no parts';
  return [
    title,
    `${histogram.length} partitions, ${numClasses} classes, ${sum} samples (${sizes})`,
    line(header),
    ...rows.slice(0, -1).map(line),
    widths.map((w) => '-'.repeat(w)).join('  '),
    line(rows[rows.length - 1]),
    '',
  ].join('\n');
}

function renderHtml(histogram: number[][], numClasses: number, totals: number[], title: string): string {
  const maxTotal = Math.max(1, ...totals);
  const barWidth = Math.max(8, Math.min(48, Math.floor(900 / Math.max(1, histogram.length))));
  const gap = Math.max(2, Math.floor(barWidth / 4));
  const plotHeight = 320;
  const left = 56;
  const top = 16;
  const width = left + histogram.length * (barWidth + gap) + 16;
  const height = top + plotHeight + 40;
  const parts: string[] = [];
  for (let i = 0; i <= 4; i++) {
    const v = Math.round((maxTotal * i) / 4);
    const y = top + plotHeight - (plotHeight * v) / maxTotal;
    parts.push(
      `<line x1="${left - 4}" y1="${y.toFixed(1)}" x2="${width - 8}" y2="${y.toFixed(1)}" stroke="#ddd"/>`,
      `<text x="${left - 8}" y="${(y + 4).toFixed(1)}" text-anchor="end" font-size="11">${v}</text>`,
    );
  }
  histogram.forEach((row, p) => {
    const x = left + p * (barWidth + gap);
    let y = top + plotHeight;
    for (let c = 0; c < numClasses; c++) {
      const count = row[c] ?? 0;
      if (count === 0) continue;
      const h = (plotHeight * count) / maxTotal;
      y -= h;
      parts.push(
        `<rect x="${x}" y="${y.toFixed(2)}" width="${barWidth}" height="${h.toFixed(2)}" fill="${colour(c)}"><title>partition ${p}, class ${c}: ${count}</title></rect>`,
      );
    }
    parts.push(`<text x="${x + barWidth / 2}" y="${top + plotHeight + 14}" text-anchor="middle" font-size="11">${p}</text>`);
  });
  parts.push(`<text x="${left + (width - left) / 2}" y="${height - 6}" text-anchor="middle" font-size="12">partition</text>`);
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" role="img" aria-label="${escapeHtml(title)}">\n${parts.join('\n')}\n</svg>`;
  const legend = Array.from(
    { length: numClasses },
    (_, c) => `<span class="key"><span class="swatch" style="background:${colour(c)}"></span>class ${c}</span>`,
  ).join(' ');
  const tableRows = histogram
    .map((row, p) => `<tr><td>${p}</td>${Array.from({ length: numClasses }, (_, c) => `<td>${row[c] ?? 0}</td>`).join('')}<td>${totals[p]}</td></tr>`)
    .join('\n');
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>${escapeHtml(title)}</title>
<style>
body { font-family: system-ui, sans-serif; margin: 24px; color: #222; }
.key { display: inline-block; margin-right: 12px; font-size: 13px; }
.swatch { display: inline-block; width: 12px; height: 12px; margin-right: 4px; vertical-align: middle; }
table { border-collapse: collapse; margin-top: 16px; font-size: 13px; }
td, th { border: 1px solid #ccc; padding: 2px 8px; text-align: right; }
</style>
</head>
<body>
<h1>${escapeHtml(title)}</h1>
<p>${histogram.length} partitions, ${numClasses} classes, ${totals.reduce((a, b) => a + b, 0)} samples</p>
${svg}
<div>${legend}</div>
<table>
<tr><th>partition</th>${Array.from({ length: numClasses }, (_, c) => `<th>c${c}</th>`).join('')}<th>total</th></tr>
${tableRows}
</table>
</body>
</html>
`;
}
