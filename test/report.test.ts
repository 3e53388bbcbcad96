// The chart and report building blocks (common/report/*): what is drawn, what is dropped, bounded histories,
// and a report page that shows what it is given and nothing it should not (escaped text, missing charts).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { downsample, lineChartSpec, movingAverage, renderChartFiles, renderLineChart } from '../common/report/charts';
import { renderRunReport } from '../common/report/html';
import { compactPairs, weightedMean } from '../common/report/series';

test('downsample keeps at most max points, the exact last point, and the mean of each bucket', () => {
  const points = Array.from({ length: 1000 }, (_, i) => ({ x: i, y: i % 2 }));
  const d = downsample(points, 100);
  expect(d).toHaveLength(100);
  expect(d.at(-1)).toEqual({ x: 999, y: 1 });
  for (const p of d.slice(0, -1)) expect(p.y).toBeCloseTo(0.5, 1);
  expect(downsample(points.slice(0, 50), 100)).toHaveLength(50);
});

test('moving average is trailing and uses the points available at the start', () => {
  expect(
    movingAverage(
      [1, 2, 3, 4].map((y, x) => ({ x, y })),
      3,
    ).map((p) => p.y),
  ).toEqual([1, 1.5, 2, 3]);
});

test('compactPairs halves a full history with the given merge, counting every batch once', () => {
  type E = { episode: number; reward: number; batches?: number };
  const merge = (a: E, b: E): E => ({
    episode: b.episode,
    reward: weightedMean(a.reward, a.batches ?? 1, b.reward, b.batches ?? 1),
    batches: (a.batches ?? 1) + (b.batches ?? 1),
  });
  const history: E[] = [];
  for (let i = 1; i <= 9; i++) {
    history.push({ episode: i * 10, reward: i });
    compactPairs(history, 4, merge);
  }
  // 9 batches: merged at the 5th (→3) and again when over 4; every batch is still counted exactly once.
  expect(history.reduce((n, e) => n + (e.batches ?? 1), 0)).toBe(9);
  expect(history.length).toBeLessThanOrEqual(4);
  expect(history.at(-1)?.episode).toBe(90);
  const total = history.reduce((s, e) => s + e.reward * (e.batches ?? 1), 0);
  expect(total).toBeCloseTo(45, 10); // 1 + 2 + ... + 9
});

test('the spec drops non-finite points (and non-positive ones on a log scale) and counts what is drawn', () => {
  const { drawn } = lineChartSpec({
    title: 't',
    xTitle: 'x',
    yTitle: 'y',
    series: [
      {
        name: 'a',
        points: [
          { x: 0, y: 1 },
          { x: 1, y: Number.NaN },
          { x: 2, y: 0 },
        ],
      },
    ],
  });
  expect(drawn).toEqual({ a: 2 });
  const log = lineChartSpec({
    title: 't',
    xTitle: 'x',
    yTitle: 'y',
    logY: true,
    series: [
      {
        name: 'a',
        points: [
          { x: 0, y: 1 },
          { x: 1, y: Number.NaN },
          { x: 2, y: 0 },
        ],
      },
    ],
  });
  expect(log.drawn).toEqual({ a: 1 });
});

test('a rendered chart has its title, axis titles, legend and one line per series, and a PNG twice its size', async () => {
  const r = await renderLineChart({
    title: 'loss of m1',
    xTitle: 'optimizer step',
    yTitle: 'nats',
    series: [
      { name: 'training', points: Array.from({ length: 30 }, (_, i) => ({ x: i, y: 5 - i / 10 })) },
      {
        name: 'validation',
        points: [
          { x: 0, y: 5 },
          { x: 29, y: 2.5 },
        ],
        dashed: true,
      },
    ],
    levels: [{ name: 'random policy', y: 3 }],
  });
  for (const text of ['loss of m1', 'optimizer step', 'nats', 'training', 'validation', 'random policy'])
    expect(r.svg).toContain(`>${text}</text>`);
  expect((r.svg.match(/<path[^>]* d="M[^"]*L[^"]*"/g) ?? []).length).toBeGreaterThanOrEqual(3);
  const width = Number(/^<svg[^>]*width="(\d+)"/.exec(r.svg)?.[1]);
  const height = Number(/^<svg[^>]*height="(\d+)"/.exec(r.svg)?.[1]);
  const png = Buffer.from(r.png);
  expect(png.subarray(1, 4).toString()).toBe('PNG');
  expect([png.readUInt32BE(16), png.readUInt32BE(20)]).toEqual([width * 2, height * 2]);
});

test("the run report inlines each unit's charts, escapes text, and skips charts that are missing", async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'forge-report-'));
  const files = await renderChartFiles({
    reward: {
      title: 'reward of <scout>',
      xTitle: 'episodes',
      yTitle: 'return',
      series: [
        {
          name: 'batches',
          points: [
            { x: 1, y: 1 },
            { x: 2, y: 2 },
          ],
        },
      ],
    },
  });
  for (const [rel, contents] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, 'scout', rel)), { recursive: true });
    fs.writeFileSync(path.join(dir, 'scout', rel), contents);
  }
  const html = renderRunReport(dir, {
    title: 'Agent Forge <run>',
    pipeline: 'agent',
    sessionId: 's1',
    units: [
      {
        name: 'scout',
        charts: ['reward', 'success'],
        metrics: { 'success trained / random': '1 / 0', reward: 7.123456, resumes: 0, threshold: null },
      },
    ],
    config: { note: '</pre><script>alert(1)</script>' },
  });
  expect(html).not.toContain('<script>');
  expect(html).toContain('&lt;/pre&gt;&lt;script&gt;');
  expect(html).toContain('<title>Agent Forge &lt;run&gt;</title>');
  expect((html.match(/<svg/g) ?? []).length).toBe(1); // success.svg does not exist
  expect(html).toContain('href="scout/charts/reward.png"');
  expect(html).toContain('<td>7.123</td>');
  expect(html).toContain('<td>—</td>');
});
