/**
 * The dashboard page's HTML shell and stylesheet. The page script (dist/dashboard.js, built by
 * esbuild from src/page/main.ts) fills it from the event stream. Static text only: the one
 * request-dependent value, the token, is URL-encoded and attribute-escaped.
 */

const STYLE = `
:root{--fg:#1f2937;--muted:#6b7280;--line:#e5e7eb;--bg:#fff;--panel:#f9fafb;--ok:#16a34a;--warn:#d97706;--bad:#dc2626;--accent:#2563eb}
*{box-sizing:border-box}
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:var(--fg);background:var(--bg);font-size:14px}
main{max-width:1240px;margin:0 auto;padding:16px}
header h1{font-size:20px;margin:0 0 2px;overflow-wrap:anywhere}
.sub{color:var(--muted);margin:0 0 12px;overflow-wrap:anywhere}
.stats{display:grid;grid-template-columns:repeat(auto-fit,minmax(130px,1fr));gap:8px;margin:0 0 12px}
.stats div{background:var(--panel);border:1px solid var(--line);border-radius:6px;padding:8px 10px}
.stats dt{color:var(--muted);font-size:12px}.stats dd{margin:2px 0 0;font-size:18px;font-variant-numeric:tabular-nums}
.progress{margin:0 0 12px;display:flex;align-items:center;gap:10px;flex-wrap:wrap}
.progress .bar{flex:1 1 200px;height:10px;background:var(--line);border-radius:5px;overflow:hidden}
.progress .fill{height:100%;background:var(--accent);width:0}
.charts{display:grid;grid-template-columns:repeat(auto-fit,minmax(420px,1fr));gap:12px}
figure{margin:0;border:1px solid var(--line);border-radius:6px;padding:4px;min-width:0}
figure svg{width:100%;height:auto;display:block}
h2{font-size:16px;margin:20px 0 8px}
.table-wrap{overflow-x:auto}
table{border-collapse:collapse;width:100%;font-variant-numeric:tabular-nums}
th,td{padding:5px 10px;border-bottom:1px solid var(--line);text-align:right;white-space:nowrap}
th:first-child,td:first-child{text-align:left;white-space:normal;overflow-wrap:anywhere;max-width:280px}
thead th{background:var(--panel);font-weight:600;font-size:12px;color:#374151}
td.reason,th:last-child{text-align:left}
td.reason{white-space:normal;max-width:260px;color:var(--bad)}
.state{display:inline-block;padding:1px 8px;border-radius:10px;font-size:12px;font-weight:600;background:var(--line)}
.state-registered{background:#e0e7ff;color:#3730a3}.state-training{background:#dbeafe;color:#1d4ed8}
.state-uploading{background:#fef3c7;color:#92400e}.state-lost{background:#fee2e2;color:#991b1b}
footer{margin:20px 0 8px;color:var(--muted);display:flex;gap:14px;flex-wrap:wrap}
footer a{color:var(--accent)}
#conn.live{color:var(--ok)}#conn.down{color:var(--bad)}
.empty{color:var(--muted)}
@media (max-width:640px){
 main{padding:10px}
 .charts{grid-template-columns:1fr}
 .stats{grid-template-columns:repeat(2,1fr)}
 .stats dd{font-size:16px}
 table,tbody,tr,td{display:block;width:100%}
 thead{display:none}
 tr{border:1px solid var(--line);border-radius:6px;margin:0 0 8px;padding:4px 0}
 td{border:0;padding:2px 10px;text-align:right;white-space:normal;display:flex;justify-content:space-between;align-items:baseline;gap:12px}
 td:empty{display:none}
 td::before{content:attr(data-label);color:var(--muted);font-size:12px;text-align:left;flex:none}
 td:first-child{font-weight:600;text-align:left;max-width:none}
 td:first-child::before{content:none}
 td.reason{max-width:none;text-align:right}
}`;

/** The page; `token` (already checked by the server) is carried to the script and event URLs. */
export function pageHtml(token: string | null): string {
  const query = token ? `?token=${encodeURIComponent(token)}` : '';
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>OiaFed dashboard</title>
<link rel="icon" href="data:,">
<style>${STYLE}</style>
</head>
<body>
<main>
<header>
<h1 id="exp">OiaFed run</h1>
<p class="sub" id="sub">connecting&hellip;</p>
</header>
<dl class="stats">
<div><dt>Rounds</dt><dd id="rounds">&ndash;</dd></div>
<div><dt>Accuracy</dt><dd id="acc">&ndash;</dd></div>
<div><dt>Elapsed</dt><dd id="elapsed">&ndash;</dd></div>
<div><dt>ETA</dt><dd id="eta">&ndash;</dd></div>
<div><dt>Learners live</dt><dd id="nlearners">&ndash;</dd></div>
</dl>
<section class="progress" id="progress" aria-live="polite"><span id="progress-text">No round in progress</span><div class="bar"><div class="fill" id="progress-fill"></div></div></section>
<section class="charts">
<figure id="chart-accuracy"></figure>
<figure id="chart-loss"></figure>
</section>
<h2>Learners</h2>
<div class="table-wrap">
<table id="learners">
<thead><tr><th>id</th><th>state</th><th>backend</th><th>samples</th><th>last heartbeat</th><th>last round</th><th>bytes up</th><th>bytes down</th><th>rejected</th><th>last rejection</th></tr></thead>
<tbody></tbody>
</table>
</div>
<p class="empty" id="no-learners">No learner has registered yet.</p>
<footer>
<span id="conn">connecting</span>
<a id="link-metrics" hidden>/metrics</a>
<a id="link-report" hidden>report</a>
<a id="link-state" href="state${escAttr(query)}">state (JSON)</a>
</footer>
</main>
<script src="dashboard.js${escAttr(query)}" data-query="${escAttr(query)}"></script>
</body>
</html>
`;
}

function escAttr(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
