// Runs of any length against a dev server whose history limits are lowered far below a run's needs: training
// in chunks with continue-as-new keeps every run's history under the limits, while the `progress` query
// answers throughout and the final result and artifacts are whole. The Cognate run is also the SIGKILL drill:
// its worker is killed at seeded random moments, several times, and the losses still equal an uninterrupted
// run's; the agent run's worker is killed once mid-training and training resumes from a checkpoint. A
// fine-tuning run keeps its parent across the roll-overs.
import fs from 'node:fs';
import path from 'node:path';
import { Client, Connection, type WorkflowHandle } from '@temporalio/client';
import { Worker } from '@temporalio/worker';
import { temporal } from '@temporalio/proto';
import { freePort, startDevServer, type DevServer } from '../common/dev-server';
import { startRun } from '../client/runs';
import { TINY_COGNATE } from '../client/presets';
import type { CognateProgress } from '../activities/cognate/config';
import { AgentForgeConfigSchema, type AgentForgeProgress } from '../activities/agent/config';
import { inspectAgentParent } from '../activities/agent/engine/init-from';
import { runAgentForgeDirect } from '../activities/agent/engine/run';
import { initBackend } from '../common/backend';
import { Rng } from '../common/rng';
import { train, type TrainEvent } from '../activities/cognate/engine/trainer';
import { CognateConfigSchema } from '../activities/cognate/config';
import { killAndWait, spawnWorker, waitFor } from './helpers/temporal';

jest.setTimeout(20 * 60_000);

// A run that goes past 150 events or 40 signals is terminated (the defaults are 51,200 and 10,000); the
// server suggests continue-as-new at 60 events. A single-run design needs several times that (asserted below).
const LIMITS = { 'limit.historyCount.error': 150, 'limit.historyCount.suggestContinueAsNew': 60, 'history.maximumSignalsPerExecution': 40 };

let server: DevServer;
let client: Client;
let root: string;
const env = () => ({ TEMPORAL_ADDRESS: server.address, FORGE_DATA_DIR: path.join(root, 'data'), FORGE_TF_BACKEND: 'wasm' });

beforeAll(async () => {
  root = fs.mkdtempSync(path.join(process.env.FORGE_TEST_ROOT!, 'limits-'));
  server = await startDevServer({
    dbFile: path.join(root, 'temporal.db'),
    port: await freePort(),
    uiPort: await freePort(),
    logFile: path.join(root, 'temporal.log'),
    dynamicConfig: LIMITS,
  });
  client = new Client({ connection: await Connection.connect({ address: server.address }) });
});
afterAll(async () => {
  await client?.connection.close();
  await server?.stop();
});

/** Every run of the workflow id (the continue-as-new chain), oldest first, with its history. */
async function chain(workflowId: string) {
  const runs: {
    runId: string;
    status: string;
    events: number;
    signals: number;
    history: Awaited<ReturnType<WorkflowHandle['fetchHistory']>>;
  }[] = [];
  for await (const wf of client.workflow.list({ query: `WorkflowId = '${workflowId}'` })) {
    const history = await client.workflow.getHandle(workflowId, wf.runId).fetchHistory();
    const events = history.events ?? [];
    runs.push({
      runId: wf.runId,
      status: wf.status.name,
      events: events.length,
      signals: events.filter((e) => e.workflowExecutionSignaledEventAttributes).length,
      history,
    });
  }
  return runs.reverse();
}

/**
 * Poll the progress query every `intervalMs`; every answer is recorded, every failure counted. Polling pauses
 * while a test has killed the only worker (nothing can answer a query then) until the new worker answers.
 */
function pollProgress<P>(handle: WorkflowHandle, intervalMs = 500) {
  const answers: P[] = [];
  const failures: string[] = [];
  let stopped = false;
  let paused = false;
  let inflight: Promise<unknown> = Promise.resolve();
  const loop = (async () => {
    while (!stopped) {
      if (!paused) {
        const q = handle.query<P>('progress').then(
          (a) => void answers.push(a),
          (e: Error) => void (!paused && failures.push(`${new Date().toISOString()} ${e.message}`)),
        );
        inflight = q;
        await q;
      }
      await new Promise((r) => setTimeout(r, intervalMs));
    }
  })();
  return {
    answers,
    failures: () => failures,
    latest: () => answers.at(-1),
    /** Stop querying (a query in flight when the worker dies is not counted). */
    pause: async () => {
      paused = true;
      await inflight.catch(() => undefined);
    },
    /** Resume once a worker answers again. */
    resume: async () => {
      answers.push(await waitFor('a worker answering the query again', () => handle.query<P>('progress'), 5 * 60_000, 500));
      paused = false;
    },
    stop: async () => ((stopped = true), await loop),
  };
}

function trainingLog(session: string, model: string): Record<string, unknown>[] {
  const file = path.join(root, 'data', 'checkpoints', 'cognate', session, model, 'training_log.jsonl');
  return fs
    .readFileSync(file, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

test('Cognate: chunks + continue-as-new finish under lowered limits; query answers throughout; SIGKILLs at seeded random moments; losses equal an uninterrupted run', async () => {
  const config = {
    ...TINY_COGNATE,
    maxSteps: 400,
    saveSteps: 5,
    evalSteps: 50,
    seed: 3,
    trainingChunkSeconds: 4,
    progressIntervalSeconds: 0.5,
  };
  const session = `limits-cog-${Date.now().toString(36)}`;
  let worker = spawnWorker('cognate', env());
  const started = await startRun(client, 'cognate', { sessionId: session, config, models: [{ name: 'm1' }] });
  const poll = pollProgress<CognateProgress>(started.handle);
  const rng = new Rng(20261129);
  const kills: number[] = [];
  try {
    await waitFor(
      'training to start',
      async () => ((await started.handle.query<CognateProgress>('progress')).models.m1?.step ?? 0) > 0,
      10 * 60_000,
      300,
    );
    // Three kills, each at a seeded random moment 2–8 s after training has visibly moved on.
    for (let k = 0; k < 3; k++) {
      const before = (await started.handle.query<CognateProgress>('progress')).models.m1?.step ?? 0;
      await waitFor(
        'training to advance',
        async () => ((await started.handle.query<CognateProgress>('progress')).models.m1?.step ?? 0) > before,
        5 * 60_000,
        300,
      );
      await new Promise((r) => setTimeout(r, 2000 + rng.int(6000)));
      if ((await started.handle.query<CognateProgress>('progress')).phase !== 'training') break;
      await poll.pause();
      kills.push(poll.latest()?.models.m1?.step ?? 0);
      await killAndWait(worker.proc, 'SIGKILL');
      worker = spawnWorker('cognate', env());
      await poll.resume();
    }
    const result = await started.handle.result();
    await poll.stop();

    expect(kills.length).toBeGreaterThanOrEqual(2);
    expect(result.status).toBe('completed');
    expect(result.models[0].finalStep).toBe(config.maxSteps);
    for (const f of result.artifacts.files) expect(fs.existsSync(f.path)).toBe(true);
    expect(result.artifacts.files.map((f: { path: string }) => path.basename(f.path))).toContain('model.safetensors');

    // The query answered throughout, with today's fields, and never went backwards.
    expect(poll.failures()).toEqual([]);
    expect(poll.answers.length).toBeGreaterThan(20);
    const fields = Object.keys(poll.answers[0]).sort();
    expect(fields).toEqual(['learningRate', 'loss', 'message', 'models', 'phase', 'progress', 'step', 'totalSteps']);
    for (const a of poll.answers) expect(Object.keys(a).sort()).toEqual(fields);
    const steps = poll.answers.filter((a) => a.phase === 'training').map((a) => a.models.m1?.step ?? 0);
    expect(Math.max(...steps)).toBeGreaterThan(0);

    // Several runs, each under the limits; together more than one run could have held.
    const runs = await chain(started.workflowId);
    console.log(
      `cognate: ${runs.length} runs, events ${runs.map((r) => r.events).join('/')}, signals ${runs.map((r) => r.signals).join('/')}; kills at steps ${kills.join(', ')}; ${poll.answers.length} query answers`,
    );
    expect(runs.length).toBeGreaterThanOrEqual(2);
    for (const r of runs.slice(0, -1)) expect(r.status).toBe('CONTINUED_AS_NEW');
    for (const r of runs) expect(r.events).toBeLessThan(LIMITS['limit.historyCount.error']);
    for (const r of runs) expect(r.signals).toBeLessThan(LIMITS['history.maximumSignalsPerExecution']);
    expect(runs.reduce((n, r) => n + r.events, 0)).toBeGreaterThan(LIMITS['limit.historyCount.error']);
    // Every run's history replays against today's workflow code.
    for (const r of runs)
      await Worker.runReplayHistory({ workflowsPath: require.resolve('../workflows/cognate') }, r.history, started.workflowId);

    // The resumes after the kills were recorded, and every step's loss equals an uninterrupted run's.
    const log = trainingLog(session, 'm1');
    expect(log.filter((e) => e.kind === 'resumed').length).toBeGreaterThanOrEqual(1);
    const reference = new Map<number, number>();
    const refConfig = CognateConfigSchema.parse(config);
    await train(
      {
        config: refConfig,
        seed: refConfig.seed,
        datasetDir: result.dataset.datasetDir,
        checkpointDir: path.join(root, 'ref-ckpt'),
        modelName: 'm1',
        backend: 'wasm',
        progressIntervalMs: 0,
      },
      { emit: (e: TrainEvent) => e.kind === 'step' && reference.set(e.step, e.loss), stopRequested: () => false },
    );
    const logged = log.filter((e) => e.kind === 'step');
    expect(logged.length).toBeGreaterThan(10);
    for (const e of logged) expect(e.loss).toBe(reference.get(e.step as number));
    expect(result.models[0].finalLoss).toBe(reference.get(config.maxSteps));
  } finally {
    await poll.stop();
    await killAndWait(worker.proc, 'SIGTERM');
  }
});

test('Agent Forge: chunks + continue-as-new finish under lowered limits; the query answers throughout; a SIGKILL resumes from a checkpoint', async () => {
  const config = {
    // Sized so the chain's total exceeds the event limit with a wide margin on a fast CI machine (there,
    // 256 episodes in 3 s chunks came to 137 events): twice the work in shorter chunks.
    maxEpisodes: 512,
    batchSize: 8,
    hiddenSize: 32,
    numLayers: 2,
    evalEpisodes: 16,
    checkpointEvery: 16,
    trainingChunkSeconds: 2,
    progressIntervalSeconds: 0.5,
  };
  const session = `limits-agent-${Date.now().toString(36)}`;
  let worker = spawnWorker('agent', env());
  const started = await startRun(client, 'agent', {
    sessionId: session,
    config,
    agents: [
      { id: 'a1', architecture: 'reactive_agent' },
      { id: 'a2', architecture: 'reactive_agent' },
    ],
  });
  const poll = pollProgress<AgentForgeProgress>(started.handle);
  try {
    await waitFor(
      'agents past their first checkpoint',
      async () => Math.min(...['a1', 'a2'].map((id) => poll.answers.at(-1)?.agents[id]?.episode ?? 0)) >= 48,
      10 * 60_000,
      300,
    );
    await poll.pause();
    // Kill mid-chunk, in a run far from its roll-over, checked from the server just before the kill (a query
    // can take seconds under load, long enough for a run to roll over): a worker killed between chunks or
    // while the run drains leaves nothing to resume, so the drill would prove nothing.
    await waitFor(
      'a training chunk running in a run far from its roll-over',
      async () => {
        const d = await started.handle.describe();
        const running = (d.raw.pendingActivities ?? []).some(
          (a) => a.state === temporal.api.enums.v1.PendingActivityState.PENDING_ACTIVITY_STATE_STARTED,
        );
        return running && d.historyLength < LIMITS['limit.historyCount.suggestContinueAsNew'] - 25;
      },
      10 * 60_000,
      100,
    );
    await killAndWait(worker.proc, 'SIGKILL');
    worker = spawnWorker('agent', env());
    await poll.resume();
    const result = await started.handle.result();
    await poll.stop();

    expect(result.status).toBe('completed');
    expect(result.agents.map((a: { episodesRun: number }) => a.episodesRun)).toEqual([config.maxEpisodes, config.maxEpisodes]);
    expect(Math.max(...result.agents.map((a: { resumedFromEpisode: number }) => a.resumedFromEpisode))).toBeGreaterThan(0);
    expect(result.coordination.episodesRun).toBe(config.maxEpisodes);
    for (const f of result.artifacts.files) expect(fs.statSync(f.path).size).toBe(f.bytes);

    expect(poll.failures()).toEqual([]);
    const fields = ['agents', 'coordinationScore', 'episode', 'message', 'phase', 'progress', 'reward', 'successRate', 'totalEpisodes'];
    for (const a of poll.answers) expect(Object.keys(a).sort()).toEqual(fields);
    expect(poll.answers.some((a) => a.phase === 'coordination')).toBe(true);

    const runs = await chain(started.workflowId);
    console.log(
      `agent: ${runs.length} runs, events ${runs.map((r) => r.events).join('/')}, signals ${runs.map((r) => r.signals).join('/')}; ${poll.answers.length} query answers`,
    );
    expect(runs.length).toBeGreaterThanOrEqual(2);
    for (const r of runs) expect(r.events).toBeLessThan(LIMITS['limit.historyCount.error']);
    for (const r of runs) expect(r.signals).toBeLessThan(LIMITS['history.maximumSignalsPerExecution']);
    expect(runs.reduce((n, r) => n + r.events, 0)).toBeGreaterThan(LIMITS['limit.historyCount.error']);
    for (const r of runs)
      await Worker.runReplayHistory({ workflowsPath: require.resolve('../workflows/agent') }, r.history, started.workflowId);
  } finally {
    await poll.stop();
    await killAndWait(worker.proc, 'SIGTERM');
  }
});

test('worker SIGTERM during a multi-micro-batch step: the final checkpoint is written, the next worker resumes from it and redoes at most one step', async () => {
  // 8 micro-batches per optimizer step, one long chunk: the stop comes from the worker's shutdown, not a roll-over.
  // Rare progress signals: this run must stay one run (no roll-over) so the stop comes from the SIGTERM alone.
  const config = {
    ...TINY_COGNATE,
    maxSteps: 200,
    gradientAccumulationSteps: 8,
    saveSteps: 1000,
    evalSteps: 1000,
    seed: 4,
    trainingChunkSeconds: 3600,
    progressIntervalSeconds: 600,
  };
  const session = `sigterm-cog-${Date.now().toString(36)}`;
  let worker = spawnWorker('cognate', env());
  const started = await startRun(client, 'cognate', { sessionId: session, config, models: [{ name: 'm1' }] });
  try {
    await waitFor(
      'a few steps',
      async () =>
        fs.existsSync(path.join(root, 'data', 'checkpoints', 'cognate', session, 'm1', 'training_log.jsonl')) &&
        trainingLog(session, 'm1').filter((e) => e.kind === 'step').length >= 3,
      10 * 60_000,
      300,
    );
    const exited = new Promise<void>((resolve) => worker.proc.once('exit', () => resolve()));
    worker.proc.kill('SIGTERM');
    await exited; // after its shutdown grace the worker cancels the activity; the trainer checkpoints and it exits
    const first = trainingLog(session, 'm1');
    const lastStep = Math.max(...first.filter((e) => e.kind === 'step').map((e) => e.step as number));
    const finalCheckpoint = first.filter((e) => e.kind === 'checkpoint').at(-1);
    expect(finalCheckpoint).toBeDefined(); // saveSteps is beyond the run: this one was written by the stop
    expect(finalCheckpoint!.step).toBeGreaterThanOrEqual(lastStep);
    const stopping = first.find((e) => e.kind === 'stopping');
    if (stopping) expect(finalCheckpoint!.step).toBe(stopping.step); // stopped inside a step: its last whole step
    worker = spawnWorker('cognate', env());
    const result = await started.handle.result();
    expect((await chain(started.workflowId)).length).toBe(1);
    expect(result.models[0].finalStep).toBe(200);
    expect(result.models[0].resumedFromStep).toBe(finalCheckpoint!.step);
    const after = trainingLog(session, 'm1').filter((e) => e.kind === 'step' && (e.attempt as number) > 1);
    const redone = after.filter((e) => (e.step as number) <= (finalCheckpoint!.step as number) + 1);
    expect(redone.length).toBeLessThanOrEqual(1);
  } finally {
    await killAndWait(worker.proc, 'SIGTERM');
  }
});

test('Agent fine-tuning across continue-as-new: every run after the first keeps the parent (lineage in the result and artifacts), training continues from its own checkpoints', async () => {
  await initBackend('wasm');
  const parent = `limits-parent-${Date.now().toString(36)}`;
  const agent = { id: 'talker', architecture: 'reactive_agent' as const };
  const small = { hiddenSize: 32, numLayers: 2, batchSize: 8, evalEpisodes: 16, checkpointEvery: 16 };
  await runAgentForgeDirect({
    sessionId: parent,
    config: AgentForgeConfigSchema.parse({ ...small, maxEpisodes: 32 }),
    agents: [agent],
    dataDir: path.join(root, 'data'),
  });
  const parentSha = inspectAgentParent(path.join(root, 'data'), { sessionId: parent, agent: agent.id, optimizerState: false }).ref
    .weightsSha256;

  const worker = spawnWorker('agent', env());
  try {
    // One agent, short chunks: enough events that the lowered limits force at least one roll-over.
    const config = { ...small, maxEpisodes: 256, trainingChunkSeconds: 1, progressIntervalSeconds: 0.25 };
    const session = `limits-ft-${Date.now().toString(36)}`;
    const started = await startRun(client, 'agent', { sessionId: session, config, initFrom: { sessionId: parent, agent: agent.id } });
    const result = await started.handle.result();

    const runs = await chain(started.workflowId);
    console.log(`fine-tuning: ${runs.length} runs, events ${runs.map((r) => r.events).join('/')}`);
    expect(runs.length).toBeGreaterThanOrEqual(2);
    expect(result.status).toBe('completed');
    expect(result.agents[0].episodesRun).toBe(config.maxEpisodes);
    expect(result.initFrom).toMatchObject({ sessionId: parent, agentId: agent.id });
    // The artifacts written by the last run still name the parent the first run checked.
    const dir = path.join(root, 'data', 'agent', session, agent.id);
    for (const file of ['agent_config.json', 'training_stats.json'])
      expect(JSON.parse(fs.readFileSync(path.join(dir, file), 'utf8')).parent).toMatchObject({
        sessionId: parent,
        agent: agent.id,
        weightsSha256: parentSha,
      });
    for (const r of runs)
      await Worker.runReplayHistory({ workflowsPath: require.resolve('../workflows/agent') }, r.history, started.workflowId);
  } finally {
    await killAndWait(worker.proc, 'SIGTERM');
  }
});
