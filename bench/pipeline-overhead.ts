// What Temporal costs: the wall time of each pipeline as a durable workflow (embedded dev server, a
// worker in this process, activities in child processes) against the same work called directly.
// `npm run bench:overhead`; figures go to bench/results/pipeline-overhead.json.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Client } from '@temporalio/client';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { initBackend } from '../common/backend';
import { freePort, startDevServer } from '../common/dev-server';
import { loadEnv } from '../common/env';
import { connectClient } from '../common/temporal';
import { startRun } from '../client/runs';
import { TINY_COGNATE } from '../client/presets';
import { createForgeWorker, type ForgeWorkerSpec } from '../workers/run';
import { agentWorkerSpec } from '../workers/agent';
import { cognateWorkerSpec } from '../workers/cognate';
import { runAgentForgeDirect } from '../activities/agent';
import { prepareDatasets } from '../activities/cognate/data';
import { train } from '../activities/cognate/engine/trainer';
import { exportArtifacts } from '../activities/cognate/engine/artifacts';
import { AgentForgeConfigSchema } from '../activities/agent/config';
import { CognateConfigSchema } from '../activities/cognate/config';

const quietCtx = { emit: () => undefined, stopRequested: () => false };

// One agent and one model, so the workflow's parallelism cannot hide its overhead.
const AGENT_INPUT = {
  config: { maxEpisodes: 300, evalEpisodes: 50, environmentTypes: ['interactive' as const] },
  agents: [{ id: 'solo', architecture: 'reactive_agent' as const }],
};
const COGNATE_INPUT = { config: { ...TINY_COGNATE, maxSteps: 60 }, models: [{ name: 'm1' }] };

async function timeWorkflow(client: Client, spec: ForgeWorkerSpec, pipeline: 'agent' | 'cognate', input: object): Promise<number> {
  const forge = await createForgeWorker(spec);
  const running = forge.worker.run();
  try {
    const t0 = performance.now();
    const run = await startRun(client, pipeline, { sessionId: `bench-${pipeline}-${Date.now()}`, ...input });
    await run.handle.result();
    return (performance.now() - t0) / 1000;
  } finally {
    forge.worker.shutdown();
    await running;
    await forge.close();
  }
}

async function main(): Promise<void> {
  Runtime.install({ logger: new DefaultLogger('WARN') });
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'forge-bench-'));
  const server = await startDevServer({ dbFile: path.join(root, 'temporal.db'), port: await freePort(), uiPort: await freePort() });
  process.env.TEMPORAL_ADDRESS = server.address;
  process.env.FORGE_DATA_DIR = path.join(root, 'data');
  const env = loadEnv();
  const client = await connectClient(env);
  const backend = await initBackend();
  try {
    // Agent Forge
    const agentConfig = AgentForgeConfigSchema.parse(AGENT_INPUT.config);
    const t0 = performance.now();
    await runAgentForgeDirect({
      sessionId: 'direct-agent',
      config: agentConfig,
      agents: AGENT_INPUT.agents,
      dataDir: path.join(root, 'direct'),
    });
    const agentDirect = (performance.now() - t0) / 1000;
    const agentWorkflow = await timeWorkflow(client, agentWorkerSpec(), 'agent', AGENT_INPUT);

    // Cognate: prepare, train, export, all in this process.
    const cognateConfig = CognateConfigSchema.parse(COGNATE_INPUT.config);
    const directDir = path.join(root, 'direct');
    const t1 = performance.now();
    const data = await prepareDatasets({ config: cognateConfig, dataDir: directDir }, quietCtx);
    const ckptDir = path.join(directDir, 'checkpoints', 'm1');
    const summary = await train(
      { config: cognateConfig, seed: cognateConfig.seed, datasetDir: data.datasetDir, checkpointDir: ckptDir, modelName: 'm1' },
      quietCtx,
    );
    const summaryPath = path.join(ckptDir, 'summary.json');
    fs.writeFileSync(summaryPath, JSON.stringify(summary));
    await exportArtifacts({
      model: 'm1',
      checkpointDir: ckptDir,
      summaryPath,
      logPath: path.join(ckptDir, 'none.jsonl'),
      datasetDir: data.datasetDir,
      outDir: path.join(directDir, 'cognate', 'm1'),
      config: cognateConfig,
    });
    const cognateDirect = (performance.now() - t1) / 1000;
    const cognateWorkflow = await timeWorkflow(client, cognateWorkerSpec(), 'cognate', COGNATE_INPUT);

    const results = {
      date: new Date().toISOString(),
      machine: { cpus: os.cpus().length, model: os.cpus()[0]?.model, memoryGiB: Math.round(os.totalmem() / 2 ** 30) },
      backend,
      note: 'workflow = start → result through the embedded dev server, with a worker in this process and each activity in a child process; direct = the same engine calls in this process',
      agent: {
        input: AGENT_INPUT,
        directSeconds: agentDirect,
        workflowSeconds: agentWorkflow,
        overheadSeconds: agentWorkflow - agentDirect,
        overheadPercent: (100 * (agentWorkflow - agentDirect)) / agentDirect,
      },
      cognate: {
        input: COGNATE_INPUT,
        directSeconds: cognateDirect,
        workflowSeconds: cognateWorkflow,
        overheadSeconds: cognateWorkflow - cognateDirect,
        overheadPercent: (100 * (cognateWorkflow - cognateDirect)) / cognateDirect,
      },
    };
    fs.mkdirSync(path.join(__dirname, 'results'), { recursive: true });
    fs.writeFileSync(path.join(__dirname, 'results', 'pipeline-overhead.json'), `${JSON.stringify(results, null, 2)}\n`);
    console.log(
      JSON.stringify({ agent: results.agent, cognate: results.cognate }, (k, v) =>
        k === 'input' ? undefined : typeof v === 'number' ? Number(v.toFixed(2)) : v,
      ),
    );
  } finally {
    await client.connection.close();
    await server.stop();
    fs.rmSync(root, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
