// One self-contained report.html per run: every unit's (model's or agent's) curves inline as SVG, its final
// metrics, and the run's config. No scripts and no external assets, so it opens from a shared volume, a
// downloaded artifact or an email attachment alike.
import fs from 'node:fs';
import path from 'node:path';
import { atomicWriteFile, sha256File } from '../export/files';

export interface ReportUnit {
  /** Model or agent name; its artifact directory is `<sessionDir>/<name>`. */
  name: string;
  subtitle?: string;
  /** Chart names in display order; read from `<sessionDir>/<name>/charts/<chart>.svg`. */
  charts: string[];
  /** Final metrics, flat label -> value (numbers are shown with 4 significant digits). */
  metrics: Record<string, string | number | boolean | null>;
}

export interface RunReport {
  title: string;
  pipeline: string;
  sessionId: string;
  units: ReportUnit[];
  /** The run's validated config (shown verbatim as JSON). */
  config: unknown;
  /** Extra run-level metrics (e.g. the team phase), shown above the units. */
  runMetrics?: Record<string, string | number | boolean | null>;
  notes?: string[];
}

export const REPORT_FILE = 'report.html';

function esc(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] as string);
}

function fmt(v: string | number | boolean | null): string {
  if (v === null) return '—';
  if (typeof v === 'number') return Number.isInteger(v) ? v.toLocaleString('en-US') : Number(v.toPrecision(4)).toString();
  return String(v);
}

function metricsTable(m: Record<string, string | number | boolean | null>): string {
  const rows = Object.entries(m).map(([k, v]) => `<tr><th>${esc(k)}</th><td>${esc(fmt(v))}</td></tr>`);
  return `<table class="metrics">${rows.join('')}</table>`;
}

/** SVG text of a chart, stripped of any XML prolog so it can sit inline in HTML. */
function inlineSvg(file: string): string {
  return fs.readFileSync(file, 'utf8').replace(/^<\?xml[^>]*>\s*/, '');
}

export function renderRunReport(sessionDir: string, report: RunReport): string {
  const units = report.units.map((u) => {
    const dir = path.join(sessionDir, u.name);
    const charts = u.charts
      .filter((c) => fs.existsSync(path.join(dir, 'charts', `${c}.svg`)))
      .map(
        (c) =>
          `<figure>${inlineSvg(path.join(dir, 'charts', `${c}.svg`))}<figcaption><a href="${esc(`${u.name}/charts/${c}.png`)}">PNG</a> · <a href="${esc(`${u.name}/charts/${c}.svg`)}">SVG</a></figcaption></figure>`,
      );
    return `<section><h2>${esc(u.name)}</h2>${u.subtitle ? `<p class="sub">${esc(u.subtitle)}</p>` : ''}${metricsTable(u.metrics)}<div class="charts">${charts.join('')}</div></section>`;
  });
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${esc(report.title)}</title>
<style>
body{font-family:"DejaVu Sans",Arial,sans-serif;margin:24px;color:#222;max-width:1280px}
h1{font-size:22px;margin-bottom:4px}h2{font-size:18px;border-bottom:1px solid #ddd;padding-bottom:4px;margin-top:32px}
.sub{color:#555;margin-top:0}table.metrics{border-collapse:collapse;margin:8px 0 12px}
table.metrics th{text-align:left;font-weight:normal;color:#555;padding:2px 16px 2px 0}table.metrics td{font-family:"DejaVu Sans Mono",monospace}
.charts{display:flex;flex-wrap:wrap;gap:12px}figure{margin:0}figcaption{font-size:12px;color:#555}
pre{background:#f6f6f6;padding:12px;overflow:auto;font-size:12px}
</style></head><body>
<h1>${esc(report.title)}</h1>
<p class="sub">pipeline <b>${esc(report.pipeline)}</b> · session <b>${esc(report.sessionId)}</b> · written ${esc(new Date().toISOString())}</p>
${(report.notes ?? []).map((n) => `<p class="sub">${esc(n)}</p>`).join('\n')}
${report.runMetrics ? metricsTable(report.runMetrics) : ''}
${units.join('\n')}
<h2>Config</h2><pre>${esc(JSON.stringify(report.config, null, 2))}</pre>
</body></html>
`;
}

/** Write `<sessionDir>/report.html` atomically; returns its path, size and sha256 (for the run's file list). */
export function writeRunReport(sessionDir: string, report: RunReport): { path: string; bytes: number; sha256: string } {
  const file = path.join(sessionDir, REPORT_FILE);
  atomicWriteFile(file, renderRunReport(sessionDir, report));
  return { path: file, bytes: fs.statSync(file).size, sha256: sha256File(file) };
}
