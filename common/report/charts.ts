// Training curves as pictures, rendered in Node: a Vega-Lite spec is compiled by vega-lite, laid out and
// drawn to SVG by vega's headless View, and rasterised to PNG by resvg (a Rust SVG renderer shipped as a
// prebuilt npm binary, so no system Cairo/canvas is needed). Both pipelines build their charts here.
import { Resvg } from '@resvg/resvg-js';
import * as vega from 'vega';
import * as vl from 'vega-lite';

export interface Point {
  x: number;
  y: number;
}

export interface Series {
  name: string;
  points: Point[];
  /** Dashed line (e.g. a smoothed or reference series). */
  dashed?: boolean;
}

/** A horizontal reference level across the chart (a random policy's score, a final evaluation). */
export interface Level {
  name: string;
  y: number;
}

export interface LineChart {
  title: string;
  xTitle: string;
  yTitle: string;
  series: Series[];
  levels?: Level[];
  /** Log scale on y (losses over orders of magnitude); non-positive values are dropped then. */
  logY?: boolean;
  /** Fixed y range (rates in [0, 1]); default: fitted to the data. */
  yDomain?: [number, number];
  width?: number;
  height?: number;
}

export interface RenderedChart {
  svg: string;
  png: Uint8Array;
  /** Points actually drawn per series (after dropping non-finite values), for callers and tests. */
  drawn: Record<string, number>;
}

/** At most `max` points: bucket means keep the shape of a long noisy curve (the last point is kept exactly). */
export function downsample(points: Point[], max = 400): Point[] {
  if (points.length <= max) return points;
  const out: Point[] = [];
  const size = points.length / (max - 1);
  for (let b = 0; b < max - 1; b++) {
    const bucket = points.slice(Math.floor(b * size), Math.max(Math.floor(b * size) + 1, Math.floor((b + 1) * size)));
    out.push({ x: bucket.reduce((s, p) => s + p.x, 0) / bucket.length, y: bucket.reduce((s, p) => s + p.y, 0) / bucket.length });
  }
  out.push(points[points.length - 1]);
  return out;
}

/** Trailing moving average over `window` points (a readable trend line over noisy per-batch values). */
export function movingAverage(points: Point[], window: number): Point[] {
  let sum = 0;
  return points.map((p, i) => {
    sum += p.y;
    if (i >= window) sum -= points[i - window].y;
    return { x: p.x, y: sum / Math.min(i + 1, window) };
  });
}

const PALETTE = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#8c564b'];
const LEVEL_COLORS = ['#7f7f7f', '#17becf', '#bcbd22'];

/** The Vega-Lite spec of a line chart (exported so a report can embed the same spec interactively later). */
export function lineChartSpec(chart: LineChart): { spec: vl.TopLevelSpec; drawn: Record<string, number> } {
  const drawn: Record<string, number> = {};
  const rows: { x: number; y: number; series: string }[] = [];
  for (const s of chart.series) {
    const kept = s.points.filter((p) => Number.isFinite(p.x) && Number.isFinite(p.y) && (!chart.logY || p.y > 0));
    drawn[s.name] = kept.length;
    for (const p of kept) rows.push({ x: p.x, y: p.y, series: s.name });
  }
  const levels = (chart.levels ?? []).filter((l) => Number.isFinite(l.y) && (!chart.logY || l.y > 0));
  const names = [...chart.series.map((s) => s.name), ...levels.map((l) => l.name)];
  const colors = [
    ...chart.series.map((_, i) => PALETTE[i % PALETTE.length]),
    ...levels.map((_, i) => LEVEL_COLORS[i % LEVEL_COLORS.length]),
  ];
  const dashes = [...chart.series.map((s) => (s.dashed ? [6, 3] : [1, 0])), ...levels.map(() => [3, 3])];
  const color = {
    field: 'series',
    type: 'nominal' as const,
    title: null,
    scale: { domain: names, range: colors },
    legend: { orient: 'bottom' as const, direction: 'vertical' as const, labelLimit: 480 },
  };
  // Same field as color: vega-lite merges both into one legend that shows each line's colour and dash.
  const strokeDash = { field: 'series', type: 'nominal' as const, scale: { domain: names, range: dashes } };
  const yScale = chart.logY ? { type: 'log' as const } : chart.yDomain ? { domain: chart.yDomain } : { zero: false };
  const layers: Record<string, unknown>[] = [
    {
      data: { values: rows },
      mark: { type: 'line', strokeWidth: 1.6, clip: true },
      encoding: {
        x: { field: 'x', type: 'quantitative', title: chart.xTitle, scale: { zero: false, nice: false } },
        y: { field: 'y', type: 'quantitative', title: chart.yTitle, scale: yScale },
        color,
        strokeDash,
        // Draw in x order within each series (the data are already sorted; this keeps it explicit).
        order: { field: 'x', type: 'quantitative' },
      },
    },
  ];
  if (levels.length > 0) {
    layers.push({
      data: { values: levels.map((l) => ({ y: l.y, series: l.name })) },
      mark: { type: 'rule', strokeWidth: 1.4 },
      encoding: { y: { field: 'y', type: 'quantitative' }, color, strokeDash },
    });
  }
  const spec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    title: chart.title,
    width: chart.width ?? 560,
    height: chart.height ?? 280,
    background: 'white',
    config: { font: 'DejaVu Sans, Arial, sans-serif', view: { stroke: '#ddd' } },
    layer: layers,
  } as unknown as vl.TopLevelSpec; // built as plain data above; vega-lite validates it when compiling
  return { spec, drawn };
}

/** Render one line chart to SVG (vega) and PNG (resvg, 2x for sharp text). */
export async function renderLineChart(chart: LineChart): Promise<RenderedChart> {
  const { spec, drawn } = lineChartSpec(chart);
  const view = new vega.View(vega.parse(vl.compile(spec).spec), { renderer: 'none' });
  try {
    const svg = await view.toSVG();
    const png = new Resvg(svg, {
      fitTo: { mode: 'zoom', value: 2 },
      background: 'white',
      font: { loadSystemFonts: true, sansSerifFamily: 'DejaVu Sans', defaultFontFamily: 'DejaVu Sans' },
    })
      .render()
      .asPng();
    return { svg, png: new Uint8Array(png), drawn };
  } finally {
    view.finalize();
  }
}

/** Render a set of named charts to `<dir>/<name>.svg` and `.png` entries (relative path -> bytes/text). */
export async function renderChartFiles(charts: Record<string, LineChart>, dir = 'charts'): Promise<Record<string, string | Uint8Array>> {
  const files: Record<string, string | Uint8Array> = {};
  for (const [name, chart] of Object.entries(charts)) {
    const r = await renderLineChart(chart);
    files[`${dir}/${name}.svg`] = r.svg;
    files[`${dir}/${name}.png`] = r.png;
  }
  return files;
}
