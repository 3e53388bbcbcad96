// `npm start` / `npm run demo`: the embedded dev server (unless TEMPORAL_ADDRESS is set), both workers in
// this process, and one run of each pipeline at a preset that finishes in a few minutes on 2 cores.
import fs from 'node:fs';
import path from 'node:path';
import type { Client } from '@temporalio/client';
import { DefaultLogger, Runtime, type LogLevel } from '@temporalio/worker';
import type { Pipeline } from '../common/constants';
import { startDevServer, type DevServer } from '../common/dev-server';
import { loadEnv } from '../common/env';
import { startWorkerMetrics } from '../common/metrics';
import { connectClient } from '../common/temporal';
import { initBackend } from '../common/backend';
import { sessionDir } from '../common/paths';
import { sampleFromExport } from '../activities/cognate/engine/sample';
import { TINY_COGNATE } from '../client/presets';
import { startRun } from '../client/runs';
import { createForgeWorker, type ForgeWorker, type ForgeWorkerSpec } from '../workers/run';
import { watchRuns } from './progress';

/** Demo inputs: real training at a size that completes in minutes here. */
export function demoInputs(stamp: string): { pipeline: Pipeline; input: unknown }[] {
  return [
    {
      pipeline: 'agent',
      input: { sessionId: `demo-agent-${stamp}`, config: { maxEpisodes: 1000, evalEpisodes: 100 } },
    },
    {
      pipeline: 'cognate',
      input: { sessionId: `demo-cognate-${stamp}`, config: { ...TINY_COGNATE, maxSteps: 200 } },
    },
  ];
}

async function workerSpecs(): Promise<ForgeWorkerSpec[]> {
  const { agentWorkerSpec } = await import('../workers/agent');
  const { cognateWorkerSpec } = await import('../workers/cognate');
  return [agentWorkerSpec(), cognateWorkerSpec()];
}

/** One line per trained unit: what the run measured, so the demo's numbers are visible without the Web UI. */
function summarise(pipeline: Pipeline, result: Record<string, unknown>): string[] {
  const fmt = (x: unknown) => (typeof x === 'number' ? x.toFixed(3) : String(x));
  if (pipeline === 'agent') {
    type Metrics = { reward: number; successRate: number; coordinationScore: number };
    const agents = result.agents as {
      agentId: string;
      architecture: string;
      parameterCount: number;
      environmentId: string;
      metrics: { trained: Metrics; random: Metrics };
    }[];
    const lines = agents.map(
      (a) =>
        `  ${a.agentId} (${a.architecture}, ${a.parameterCount} params) in ${a.environmentId}: reward ${fmt(a.metrics.trained.reward)} vs random ${fmt(a.metrics.random.reward)}, ` +
        `success ${fmt(a.metrics.trained.successRate)} vs ${fmt(a.metrics.random.successRate)}, coordination ${fmt(a.metrics.trained.coordinationScore)} vs ${fmt(a.metrics.random.coordinationScore)}`,
    );
    const team = result.coordination as { trained: Metrics; random: Metrics } | null;
    if (team)
      lines.push(
        `  team: reward ${fmt(team.trained.reward)} vs random ${fmt(team.random.reward)}, success ${fmt(team.trained.successRate)} vs ${fmt(team.random.successRate)}`,
      );
    return lines;
  }
  const models = result.models as { model: string; finalStep: number; finalLoss: number | null; validationLoss: number | null }[];
  return models.map(
    (m) => `  ${m.model}: ${m.finalStep} steps, training loss ${fmt(m.finalLoss)}, validation loss ${fmt(m.validationLoss)}`,
  );
}

/** The demo's prompt: the start of a GSM8K-style problem, in the format the models were trained on. */
const DEMO_PROMPT = 'Problem: Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May.';

/** One greedy sample per trained model, generated from its exported artifact (ACT and LTM as at inference). */
function printSamples(dataDir: string, sessionId: string, result: Record<string, unknown>): void {
  for (const m of result.models as { model: string }[]) {
    try {
      const s = sampleFromExport(path.join(sessionDir(dataDir, 'cognate', sessionId), m.model), DEMO_PROMPT, { maxNewTokens: 24 });
      console.log(`  sample from ${m.model} (greedy, mean ACT depth ${s.meanDepth.toFixed(2)}): ${JSON.stringify(s.text)}`);
    } catch (err) {
      console.log(`  sample from ${m.model} failed: ${(err as Error).message}`);
    }
  }
}

export async function runDemo(opts: { keepServing: boolean }): Promise<number> {
  // The SDK's INFO lines (bundles, worker states) drown the progress; FORGE_LOG_LEVEL=INFO brings them back.
  const logger = new DefaultLogger((process.env.FORGE_LOG_LEVEL as LogLevel | undefined) ?? 'WARN');
  // Both workers run in this process: with FORGE_METRICS_PORT they share one metrics endpoint.
  const metrics = await startWorkerMetrics('demo', { logger });
  if (metrics) console.log(`[forge] metrics at ${metrics.url} (training + Temporal runtime)`);
  else Runtime.install({ logger });
  const cwd = process.cwd();
  let server: DevServer | undefined;
  if (!process.env.TEMPORAL_ADDRESS) {
    const dbFile = path.join(cwd, '.forge', 'temporal.db');
    console.log(`[forge] starting the embedded Temporal dev server (database ${dbFile})...`);
    server = await startDevServer({ dbFile, logFile: path.join(cwd, '.forge', 'temporal-server.log') });
    process.env.TEMPORAL_ADDRESS = server.address;
  }
  const env = loadEnv();
  fs.mkdirSync(env.dataDir, { recursive: true });
  const uiUrl = server?.uiUrl ?? '(the Web UI of your cluster)';
  console.log(`[forge] Temporal ${env.temporalAddress} · Web UI ${uiUrl} · data ${env.dataDir}`);

  const workers: ForgeWorker[] = [];
  for (const spec of await workerSpecs()) workers.push(await createForgeWorker(spec, {}, env));
  const running = workers.map((w) => w.worker.run());
  const client: Client = await connectClient(env);

  const stamp = new Date().toISOString().replace(/[-:T]/g, '').slice(0, 14);
  const runs = [];
  for (const { pipeline, input } of demoInputs(stamp)) {
    const run = await startRun(client, pipeline, input);
    console.log(
      `[forge] started ${pipeline} run ${run.workflowId}: ${uiUrl}/namespaces/${env.temporalNamespace}/workflows/${run.workflowId}`,
    );
    runs.push(run);
  }
  await watchRuns(runs.map((r) => ({ label: r.pipeline.padEnd(7), handle: r.handle })));
  await initBackend(); // the samples below run in this process

  let failed = 0;
  for (const run of runs) {
    try {
      const result = (await run.handle.result()) as Record<string, unknown> & {
        artifacts?: { files?: { path: string }[]; report?: string };
      };
      console.log(`\n[forge] ${run.pipeline} run ${run.workflowId} completed (evaluated, trained vs random where it applies):`);
      for (const line of summarise(run.pipeline, result)) console.log(line);
      if (run.pipeline === 'cognate') printSamples(env.dataDir, run.sessionId, result);
      console.log('  artifacts:');
      for (const f of result.artifacts?.files ?? []) console.log(`    ${f.path}`);
      if (result.artifacts?.report) console.log(`  report (curves, final metrics, config): ${result.artifacts.report}`);
    } catch (err) {
      failed++;
      console.error(`\n[forge] ${run.pipeline} run ${run.workflowId} failed: ${(err as Error).message}`);
    }
  }
  console.log(`\n[forge] Web UI: ${uiUrl}`);

  if (opts.keepServing) {
    console.log('[forge] workers keep serving; press Ctrl-C to stop.');
    await Promise.all(running); // the SDK shuts workers down on SIGINT/SIGTERM
  } else {
    for (const w of workers) w.worker.shutdown();
    await Promise.all(running);
  }
  for (const w of workers) await w.close();
  await client.connection.close();
  await metrics?.close();
  await server?.stop();
  return failed === 0 ? 0 : 1;
}
