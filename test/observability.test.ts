// What an operator sees of a run, on real workers and real training: the worker's Prometheus endpoint
// (training series by pipeline/session/unit, and the Temporal runtime's own metrics) scraped while the run
// trains; TensorBoard event files read back by TensorBoard's loader and compared with what training
// recorded; curves as SVG/PNG in every model's and agent's manifest; the run's report.html; `forge report`.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import type { Client } from '@temporalio/client';
import { freePort } from '../common/dev-server';
import { verifyManifest } from '../common/export/files';
import { startRun } from '../client/runs';
import { TINY_COGNATE } from '../client/presets';
import { readTensorBoard } from './helpers/tensorboard';
import { killAndWait, ROOT, sessionId, spawnWorker, testClient, waitFor } from './helpers/temporal';

const run = promisify(execFile);
jest.setTimeout(20 * 60_000);

let client: Client;
beforeAll(async () => {
  client = await testClient();
});
afterAll(async () => {
  await client.connection.close();
});

const dataDir = () => process.env.FORGE_DATA_DIR!;
const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

/** Value of one series in Prometheus text exposition, or undefined when absent. */
function sample(text: string, name: string, labels: Record<string, string>): number | undefined {
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`)) continue;
    const body = line.slice(name.length + 1, line.indexOf('}'));
    if (Object.entries(labels).every(([k, v]) => body.includes(`${k}="${v}"`))) return Number(line.slice(line.indexOf('}') + 1).trim());
  }
  return undefined;
}

async function metricsWorker(pipeline: 'agent' | 'cognate') {
  const port = await freePort();
  const corePort = await freePort();
  const worker = spawnWorker(pipeline, {
    FORGE_METRICS_PORT: String(port),
    FORGE_TEMPORAL_METRICS_PORT: String(corePort),
    FORGE_METRICS_HOST: '127.0.0.1',
  });
  const scrape = async (url = `http://127.0.0.1:${port}/metrics`) => {
    const res = await fetch(url);
    if (!res.ok) throw new Error(`GET ${url}: HTTP ${res.status}`);
    return res.text();
  };
  await waitFor('the metrics endpoint', () => scrape().then(() => true), 120_000);
  return { worker, scrape, coreUrl: `http://127.0.0.1:${corePort}/metrics` };
}

function expectChartsInManifest(dir: string, charts: string[]): void {
  expect(verifyManifest(dir)).toEqual([]);
  const listed = (JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8')) as { files: { path: string }[] }).files.map(
    (f) => f.path,
  );
  for (const c of charts) {
    expect(listed).toContain(`charts/${c}.svg`);
    expect(listed).toContain(`charts/${c}.png`);
    const svg = fs.readFileSync(path.join(dir, 'charts', `${c}.svg`), 'utf8');
    expect(svg).toMatch(/^<svg[^>]*xmlns="http:\/\/www.w3.org\/2000\/svg"/);
    expect(svg).toMatch(/<path[^>]* d="M[^"]*L/); // at least one drawn polyline
    const png = fs.readFileSync(path.join(dir, 'charts', `${c}.png`));
    expect(png.subarray(0, 8).equals(PNG_SIGNATURE)).toBe(true);
    // IHDR width: the PNG is the SVG drawn at 2x.
    const svgWidth = Number(/width="(\d+(?:\.\d+)?)"/.exec(svg)?.[1]);
    expect(png.readUInt32BE(16)).toBe(Math.round(svgWidth * 2));
  }
}

async function forgeReport(pipeline: string, session: string): Promise<string> {
  const { stdout } = await run(process.execPath, ['--import', 'tsx', path.join(ROOT, 'cli', 'forge.ts'), 'report', pipeline, session], {
    cwd: ROOT,
    env: process.env,
  });
  return stdout;
}

test('agent worker: metrics scraped during training, TensorBoard matches the training history, curves and report', async () => {
  const { worker, scrape, coreUrl } = await metricsWorker('agent');
  try {
    const session = sessionId('obs-agent');
    const agents = [
      { id: 'scout', architecture: 'reactive_agent' },
      { id: 'planner', architecture: 'planning_agent' },
    ];
    const started = await startRun(client, 'agent', {
      sessionId: session,
      config: { maxEpisodes: 240, evalEpisodes: 32, checkpointEvery: 40 },
      agents,
    });

    // During training: each agent's series with its labels, and the Temporal runtime's metrics on the same endpoint.
    const seen = await waitFor(
      'training series on the metrics endpoint',
      async () => {
        const text = await scrape();
        const episodes = agents.map((a) => sample(text, 'forge_training_episode', { pipeline: 'agent', session, unit: a.id }) ?? 0);
        return episodes.every((e) => e > 0) && /^temporal_\w+/m.test(text) ? text : null;
      },
      10 * 60_000,
      1000,
    );
    expect(sample(seen, 'forge_training_success_rate', { pipeline: 'agent', session, unit: 'scout' })).toBeGreaterThanOrEqual(0);
    expect(sample(seen, 'forge_training_reward', { pipeline: 'agent', session, unit: 'scout' })).toEqual(expect.any(Number));
    expect(seen).toMatch(/^temporal_worker_task_slots_available\{/m);
    expect(await (await fetch(coreUrl)).text()).toMatch(/^temporal_\w+/m);

    const result = await started.handle.result();
    expect(result.status).toBe('completed');
    const after = await scrape();
    expect(sample(after, 'forge_checkpoints_total', { pipeline: 'agent', session, unit: 'scout' })).toBeGreaterThanOrEqual(240 / 40);
    expect(sample(after, 'forge_checkpoint_seconds_count', { pipeline: 'agent', session, unit: 'scout' })).toBeGreaterThanOrEqual(240 / 40);

    const sessionDir = path.join(dataDir(), 'agent', session);
    for (const a of agents) {
      const dir = path.join(sessionDir, a.id);
      expectChartsInManifest(dir, ['reward', 'success', 'coordination', 'team_reward', 'team_success', 'team_coordination']);
      // TensorBoard holds the same per-batch history the artifacts do, and the final evaluation beside random.
      const stats = JSON.parse(fs.readFileSync(path.join(dir, 'training_stats.json'), 'utf8'));
      const scalars = readTensorBoard(path.join(dataDir(), 'tensorboard', 'agent', session, a.id));
      if (scalars) {
        const history = stats.individual.history as { episode: number; reward: number; successRate: number }[];
        expect(scalars['train/reward'].map(([s]) => s)).toEqual(history.map((h) => h.episode));
        scalars['train/reward'].forEach(([, v], i) => expect(v).toBeCloseTo(history[i].reward, 4));
        scalars['train/success_rate'].forEach(([, v], i) => expect(v).toBeCloseTo(history[i].successRate, 5));
        expect(scalars['train/coordination_score']).toHaveLength(history.length);
        expect(scalars['eval/reward_random'][0][1]).toBeCloseTo(stats.individual.evaluation.random.reward, 4);
        expect(scalars['eval/success_rate_trained'][0][1]).toBeCloseTo(stats.individual.evaluation.trained.successRate, 5);
      }
    }
    const team = readTensorBoard(path.join(dataDir(), 'tensorboard', 'agent', session, 'team'));
    if (team) expect(team['train/coordination_score'].length).toBeGreaterThan(0);

    const report = fs.readFileSync(result.artifacts.report, 'utf8');
    expect(result.artifacts.report).toBe(path.join(sessionDir, 'report.html'));
    for (const a of agents) expect(report).toContain(`<h2>${a.id}</h2>`);
    expect((report.match(/<svg/g) ?? []).length).toBe(agents.length * 6);
    expect(report).toContain('&quot;maxEpisodes&quot;: 240');
    expect(report).toContain(result.agents[0].metrics.random.reward.toPrecision(4).replace(/\.?0+$/, ''));
    expect((await forgeReport('agent', session)).split('\n')[0]).toBe(path.join(sessionDir, 'report.html'));
  } finally {
    await killAndWait(worker.proc, 'SIGTERM');
  }
});

test('cognate worker: tokens/s, step and loss scraped during training; TensorBoard matches the training log; curves and report', async () => {
  const { worker, scrape } = await metricsWorker('cognate');
  try {
    const session = sessionId('obs-cog');
    const config = { ...TINY_COGNATE, maxSteps: 40, seed: 11 };
    const started = await startRun(client, 'cognate', { sessionId: session, config, models: [{ name: 'm1' }] });
    const labels = { pipeline: 'cognate', session, unit: 'm1' };
    const seen = await waitFor(
      'Cognate training series on the metrics endpoint',
      async () => {
        const text = await scrape();
        return (sample(text, 'forge_training_step', labels) ?? 0) > 0 ? text : null;
      },
      10 * 60_000,
      500,
    );
    expect(sample(seen, 'forge_training_tokens_per_second', labels)).toBeGreaterThan(0);
    expect(sample(seen, 'forge_training_loss', labels)).toBeGreaterThan(0);
    expect(sample(seen, 'forge_training_learning_rate', labels)).toBeGreaterThan(0);

    const result = await started.handle.result();
    expect(result.status).toBe('completed');
    const after = await scrape();
    expect(sample(after, 'forge_validation_loss', labels)).toBeCloseTo(result.models[0].validationLoss, 6);
    expect(sample(after, 'forge_checkpoint_seconds_count', labels)).toBeGreaterThanOrEqual(40 / (config.saveSteps as number));

    const sessionDir = path.join(dataDir(), 'cognate', session);
    const modelDir = path.join(sessionDir, 'm1');
    expectChartsInManifest(modelDir, ['loss', 'validation_loss', 'learning_rate']);
    const log = fs
      .readFileSync(path.join(modelDir, 'training_log.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, number | string>);
    const scalars = readTensorBoard(path.join(dataDir(), 'tensorboard', 'cognate', session, 'm1'));
    if (scalars) {
      for (const tag of [
        'train/loss',
        'train/learning_rate',
        'train/tokens_per_second',
        'act/mean_depth',
        'ltm/fill',
        'validation/loss',
        'checkpoint/seconds',
      ])
        expect(Object.keys(scalars)).toContain(tag);
      const steps = log.filter((e) => e.kind === 'step');
      expect(scalars['train/loss'].map(([s]) => s)).toEqual(steps.map((e) => e.step));
      scalars['train/loss'].forEach(([, v], i) => expect(v).toBeCloseTo(steps[i].loss as number, 4));
      scalars['train/learning_rate'].forEach(([, v], i) => expect(v).toBeCloseTo(steps[i].learningRate as number, 7));
      const validations = log.filter((e) => e.kind === 'validation');
      expect(scalars['validation/loss'].map(([s, v]) => [s, Number(v.toFixed(4))])).toEqual(
        validations.map((e) => [e.step, Number((e.loss as number).toFixed(4))]),
      );
    }
    // The learning-rate chart draws the warmup and decay the trainer used: one point per kept loss-curve step.
    const stats = JSON.parse(fs.readFileSync(path.join(modelDir, 'training_stats.json'), 'utf8'));
    expect(stats.lossCurve.every((p: { learningRate?: number }) => typeof p.learningRate === 'number')).toBe(true);

    const report = fs.readFileSync(result.artifacts.report, 'utf8');
    expect(report).toContain('<h2>m1</h2>');
    expect((report.match(/<svg/g) ?? []).length).toBe(3);
    expect(report).toContain(`${stats.steps} / ${stats.totalSteps}`);
    expect((await forgeReport('cognate', session)).split('\n')[0]).toBe(path.join(sessionDir, 'report.html'));
  } finally {
    await killAndWait(worker.proc, 'SIGTERM');
  }
});

test('forge report names the missing report and changes nothing', async () => {
  const err = await forgeReport('agent', 'no-such-session').then(
    () => null,
    (e: { stderr: string; code: number }) => e,
  );
  expect(err?.code).toBe(1);
  expect(err?.stderr).toContain(
    `no report for agent session "no-such-session" at ${path.join(dataDir(), 'agent', 'no-such-session', 'report.html')}`,
  );
  expect(fs.existsSync(path.join(dataDir(), 'agent', 'no-such-session'))).toBe(false);
});
