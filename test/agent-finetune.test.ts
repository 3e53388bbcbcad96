// Agent fine-tuning (initFrom): the parent check refuses what does not fit and names it, the weights (and
// Adam state only when asked) are loaded, a resumed fine-tuning run continues from its own checkpoint even
// when the parent is gone, fine-tuning reaches the success threshold in fewer episodes than scratch, and
// the workflow + CLI run end to end (a refused run writes nothing; artifacts and `forge list` show lineage; a
// cancelled fine-tuning run resumes from its own checkpoint).
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { ApplicationFailure } from '@temporalio/common';
import { WorkflowFailedError } from '@temporalio/client';
import { AgentForgeConfigSchema, type AgentForgeConfig, type AgentForgeProgress } from '../activities/agent/config';
import { checkAgentInitFrom } from '../activities/agent/check-init-from';
import { compareFineTuning } from '../activities/agent/engine/adaptation';
import { readCheckpoint } from '../activities/agent/engine/checkpoint';
import { planEnvironments } from '../activities/agent/engine/envs';
import { inspectAgentParent } from '../activities/agent/engine/init-from';
import { runAgentForgeDirect } from '../activities/agent/engine/run';
import { agentJob, runTraining, type TrainJob } from '../activities/agent/engine/train';
import { initBackend } from '../common/backend';
import { scenarios } from '../bench/finetune';
import { startRun } from '../client/runs';
import { killAndWait, ROOT, sessionId, spawnWorker, testClient, waitFor } from './helpers/temporal';

jest.setTimeout(10 * 60_000);
const run = promisify(execFile);
const dataDir = () => process.env.FORGE_DATA_DIR!;
const forge = (...args: string[]) =>
  run(process.execPath, ['--import', 'tsx', path.join(ROOT, 'cli', 'forge.ts'), ...args], {
    cwd: ROOT,
    env: process.env,
    maxBuffer: 16 << 20,
  });

const SMALL = { hiddenSize: 32, numLayers: 2, numHeads: 4, batchSize: 8, evalEpisodes: 16, environmentTypes: ['interactive'] as const };
const cfg = (over: Partial<AgentForgeConfig> = {}): AgentForgeConfig => AgentForgeConfigSchema.parse({ ...SMALL, ...over });
const AGENT = { id: 'talker', architecture: 'reactive_agent' as const, role: 'communication hub' };
const parentSession = sessionId('ft-parent');

function refusal(fn: () => unknown): ApplicationFailure {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(ApplicationFailure);
    expect((e as ApplicationFailure).nonRetryable).toBe(true);
    expect((e as ApplicationFailure).type).toBe('InvalidParent');
    return e as ApplicationFailure;
  }
  throw new Error('expected a refusal');
}

const paramsOf = (checkpoint: string, unit: string) =>
  Object.fromEntries(
    [...readCheckpoint(checkpoint).tensors]
      .filter(([k]) => k.startsWith(`${unit}.param.`))
      .map(([k, t]) => [k.slice(unit.length + 7), Array.from(t.data as Float32Array)]),
  );

beforeAll(async () => {
  await initBackend();
  await runAgentForgeDirect({
    sessionId: parentSession,
    config: cfg({ trainingMode: 'task_specialization', maxEpisodes: 48, checkpointEvery: 16 }),
    agents: [AGENT],
    dataDir: dataDir(),
  });
});

describe('checkInitFrom', () => {
  const check = (over: Partial<Parameters<typeof checkAgentInitFrom>[1]> = {}) =>
    checkAgentInitFrom(dataDir(), {
      initFrom: { sessionId: parentSession, agent: AGENT.id, optimizerState: false },
      config: AgentForgeConfigSchema.parse({}),
      explicitFields: [],
      ...over,
    });

  test('a fitting parent: its sizes and architecture fill what the input left unset; one agent named like the parent', () => {
    const r = check();
    expect(r.config.hiddenSize).toBe(32);
    expect(r.config.numLayers).toBe(2);
    expect(r.inherited).toEqual(expect.arrayContaining(['hiddenSize', 'numLayers']));
    expect(r.agents).toEqual([{ id: 'talker', architecture: 'reactive_agent', role: 'communication hub' }]);
    expect(r.parent.sessionId).toBe(parentSession);
    expect(r.parent.weightsSha256).toMatch(/^[0-9a-f]{64}$/);
    // The same parent named by its folder (relative to FORGE_DATA_DIR) is the same parent.
    expect(check({ initFrom: { path: path.join('agent', parentSession, AGENT.id), optimizerState: false } }).parent).toEqual(r.parent);
  });

  test('refusals name what differs: hiddenSize, architecture; missing parent; damaged file; a path outside FORGE_DATA_DIR', () => {
    expect(refusal(() => check({ config: cfg({ hiddenSize: 64 }), explicitFields: ['hiddenSize'] })).message).toMatch(
      /hiddenSize \(parent 32, this run 64\)/,
    );
    expect(refusal(() => check({ agents: [{ id: 'a', architecture: 'planning_agent' }] })).message).toMatch(
      /agent "a": architecture \(parent reactive_agent, agent "a" planning_agent\)/,
    );
    expect(refusal(() => check({ initFrom: { sessionId: 'no-such-session', agent: 'talker', optimizerState: false } })).message).toMatch(
      /does not exist/,
    );
    const copy = path.join(dataDir(), 'copies', `${parentSession}-damaged`);
    fs.cpSync(path.join(dataDir(), 'agent', parentSession, AGENT.id), copy, { recursive: true });
    const w = path.join(copy, 'agent_weights.safetensors');
    const bytes = fs.readFileSync(w);
    bytes[bytes.length - 1] ^= 0xff;
    fs.writeFileSync(w, bytes);
    expect(refusal(() => check({ initFrom: { path: copy, optimizerState: false } })).message).toMatch(
      /does not match its manifest: agent_weights\.safetensors: sha256 differs/,
    );
    expect(refusal(() => check({ initFrom: { path: '../../etc', optimizerState: false } })).message).toMatch(/not under FORGE_DATA_DIR/);
  });
});

describe('fine-tuning runs (engine)', () => {
  const parentRef = (optimizerState: boolean) =>
    inspectAgentParent(dataDir(), { sessionId: parentSession, agent: AGENT.id, optimizerState }).ref;
  const job = (dir: string, optimizerState: boolean, over: Partial<AgentForgeConfig> = {}): TrainJob => {
    const config = cfg({ trainingMode: 'behavior_adaptation', maxEpisodes: 48, checkpointEvery: 16, seed: 7, ...over });
    return agentJob({
      config,
      plan: planEnvironments(config, [AGENT]),
      agent: AGENT,
      checkpointDir: path.join(dataDir(), 'checkpoints', 'agent', dir, AGENT.id),
      parent: parentRef(optimizerState),
    });
  };
  const parentCheckpoint = () => parentRef(true).checkpoint!;

  test('loads the parent weights; the Adam state only when asked', async () => {
    const stopAtOnce = { emit: () => undefined, stopRequested: () => true };
    const plain = await runTraining(job(sessionId('ft-w'), false), stopAtOnce);
    const withAdam = await runTraining(job(sessionId('ft-wa'), true), stopAtOnce);
    expect(plain.episodesRun).toBe(0);
    expect(paramsOf(plain.checkpointPath, 'talker')).toEqual(paramsOf(parentCheckpoint(), 'talker'));
    const parent = readCheckpoint(parentCheckpoint());
    const fresh = readCheckpoint(plain.checkpointPath);
    const adam = readCheckpoint(withAdam.checkpointPath);
    const key = [...parent.tensors.keys()].find((k) => k.startsWith('talker.adam_m.'))!;
    const m = (c: typeof parent) => Array.from(c.tensors.get(key)!.data as Float32Array);
    expect(m(adam)).toEqual(m(parent));
    expect(m(fresh).every((v) => v === 0)).toBe(true);
    expect(adam.meta.units[0].adamStep).toBe(parent.meta.units[0].adamStep);
    expect(fresh.meta.units[0].adamStep).toBe(0);
    expect(fresh.meta.trainer.parent).toMatchObject({
      sessionId: parentSession,
      agentId: 'talker',
      weightsSha256: parentRef(false).weightsSha256,
    });
  });

  test('a resumed fine-tuning run continues from its own checkpoint, never the parent (which may be gone), and ends like an uninterrupted one', async () => {
    const interrupted = job(sessionId('ft-r'), false, { trainingMode: 'task_specialization' });
    let saved = 0;
    const first = await runTraining(interrupted, {
      emit: (e) => void (e.type === 'checkpoint' && saved++),
      stopRequested: () => saved > 0,
    });
    expect(first.stopped).toBe(true);
    expect(first.episodesRun).toBe(16);
    const uninterrupted = await runTraining(job(sessionId('ft-u'), false, { trainingMode: 'task_specialization' }));

    // Take the parent away: a fresh fine-tuning start now fails, the resume does not touch it.
    const parentDir = path.join(dataDir(), 'agent', parentSession, AGENT.id);
    const aside = `${parentDir}.aside`;
    fs.renameSync(parentDir, aside);
    try {
      const freshStart = { ...interrupted, checkpointDir: path.join(dataDir(), 'checkpoints', 'agent', sessionId('ft-gone'), AGENT.id) };
      await expect(runTraining(freshStart)).rejects.toThrow(/parent weights .* are gone/);
      const resumed = await runTraining(interrupted);
      expect(resumed.resumedFromEpisode).toBe(16);
      expect(resumed.episodesRun).toBe(48);
      expect(resumed.parent?.sessionId).toBe(parentSession);
      expect(paramsOf(resumed.checkpointPath, 'talker')).toEqual(paramsOf(uninterrupted.checkpointPath, 'talker'));
    } finally {
      fs.renameSync(aside, parentDir);
    }
  });
});

test('what fine-tuning buys (seeded evaluations): fewer episodes to the success threshold than the same architecture from scratch', async () => {
  const measured: Record<string, { fineTuned: number | null; scratch: number | null; budget: number }> = {};
  for (const s of scenarios(1)) {
    const r = await compareFineTuning({ ...s, dataDir: path.join(dataDir(), 'finetune-compare'), evalEpisodes: 64 });
    measured[s.name] = {
      fineTuned: r.fineTuned.episodesToThreshold,
      scratch: r.scratch.episodesToThreshold,
      budget: s.childConfig.maxEpisodes,
    };
    // The comparison is only meaningful when the parent did not already solve the child's task.
    expect(r.fineTuned.curve[0].successRate).toBeLessThan(s.childConfig.adaptationThreshold);
  }
  console.log(`fine-tuned vs scratch, episodes to the threshold: ${JSON.stringify(measured)}`);
  for (const m of Object.values(measured)) {
    expect(m.fineTuned).not.toBeNull();
    expect(m.fineTuned!).toBeLessThan(m.scratch ?? m.budget + 1);
  }
});

describe('workflow and CLI', () => {
  let worker: ReturnType<typeof spawnWorker>;
  beforeAll(() => {
    worker = spawnWorker('agent');
  });
  afterAll(async () => {
    await killAndWait(worker.proc, 'SIGTERM');
  });

  test('a parent that does not fit is refused before anything is written (non-retryable, naming the field)', async () => {
    const id = sessionId('ft-refused');
    const client = await testClient();
    try {
      const handle = await client.workflow.start('agentForgeTrainingWorkflow', {
        taskQueue: 'agent-forge',
        workflowId: `agent-${id}`,
        args: [{ sessionId: id, config: { hiddenSize: 64, maxEpisodes: 16 }, initFrom: { sessionId: parentSession, agent: AGENT.id } }],
      });
      const err = await handle.result().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(WorkflowFailedError);
      const cause = (err as WorkflowFailedError).cause?.cause as ApplicationFailure;
      expect(cause.type).toBe('InvalidParent');
      expect(cause.message).toMatch(/hiddenSize \(parent 32, this run 64\)/);
      const attempts = ((await handle.fetchHistory()).events ?? []).filter((e) => e.activityTaskScheduledEventAttributes).length;
      expect(attempts).toBe(1); // checkInitFrom only
      expect(fs.existsSync(path.join(dataDir(), 'agent', id))).toBe(false);
      expect(fs.existsSync(path.join(dataDir(), 'checkpoints', 'agent', id))).toBe(false);
    } finally {
      await client.connection.close();
    }
  });

  test('forge start agent --init-from <session>/<agent>: trains from the parent, artifacts record it, forge list shows the lineage', async () => {
    const id = sessionId('ft-cli');
    await forge(
      'start',
      'agent',
      '--session',
      id,
      '--init-from',
      `${parentSession}/${AGENT.id}`,
      '--set',
      'maxEpisodes=32',
      '--set',
      'evalEpisodes=8',
      '--set',
      'trainingMode=behavior_adaptation',
      '--set',
      'environmentTypes=["interactive"]',
    );
    const result = JSON.parse(
      (
        await forge('result', 'agent', id).catch(async (e: Error) => {
          throw new Error(`${e.message}\n${(await forge('status', 'agent', id)).stdout}\n${worker.log().slice(-3000)}`);
        })
      ).stdout,
    );
    expect(result.initFrom).toMatchObject({ sessionId: parentSession, agentId: AGENT.id });
    expect(result.initFrom.inherited).toEqual(expect.arrayContaining(['hiddenSize', 'numLayers']));
    expect(result.config.hiddenSize).toBe(32);
    expect(result.agents.map((a: { agentId: string }) => a.agentId)).toEqual([AGENT.id]);
    const parentSha = inspectAgentParent(dataDir(), { sessionId: parentSession, agent: AGENT.id, optimizerState: false }).ref.weightsSha256;
    const dir = path.join(dataDir(), 'agent', id, AGENT.id);
    for (const file of ['agent_config.json', 'training_stats.json']) {
      expect(JSON.parse(fs.readFileSync(path.join(dir, file), 'utf8')).parent).toMatchObject({
        sessionId: parentSession,
        agent: AGENT.id,
        weightsSha256: parentSha,
      });
    }
    const listed = (await forge('list', 'agent')).stdout.split('\n').find((l) => l.includes(`agent-${id}`));
    expect(listed).toContain(`<- ${parentSession}/${AGENT.id}`);
  });
});

/** A fine-tuning run of the parent (task_specialization, checkpoints every 20 episodes), once it is past episode 40. */
async function startFineTuningPastEpisode40(client: Awaited<ReturnType<typeof testClient>>, id: string, maxEpisodes: number) {
  const started = await startRun(client, 'agent', {
    sessionId: id,
    config: { maxEpisodes, evalEpisodes: 8, checkpointEvery: 20, trainingMode: 'task_specialization', environmentTypes: ['interactive'] },
    initFrom: { sessionId: parentSession, agent: AGENT.id },
  });
  await waitFor(
    'fine-tuning past episode 40',
    async () => ((await started.handle.query<AgentForgeProgress>('progress')).agents[AGENT.id]?.episode ?? 0) >= 45,
    5 * 60_000,
  );
  return started;
}

test("SIGKILL of the worker during a fine-tuning run, parent deleted: the retried activity resumes from the run's own checkpoint", async () => {
  let worker = spawnWorker('agent');
  const client = await testClient();
  const id = sessionId('ft-crash');
  const parentDir = path.join(dataDir(), 'agent', parentSession, AGENT.id);
  const aside = `${parentDir}.crash-aside`;
  try {
    const started = await startFineTuningPastEpisode40(client, id, 1500);
    await killAndWait(worker.proc, 'SIGKILL');
    fs.renameSync(parentDir, aside);
    worker = spawnWorker('agent');
    const result = await started.handle.result();
    expect(result.agents[0].resumedFromEpisode).toBeGreaterThan(0);
    expect(result.agents[0].episodesRun).toBe(1500);
    const stats = JSON.parse(fs.readFileSync(path.join(dataDir(), 'agent', id, AGENT.id, 'training_stats.json'), 'utf8'));
    expect(stats.parent).toMatchObject({ sessionId: parentSession, agent: AGENT.id });
    expect(stats.individual.resumes.length).toBeGreaterThan(0);
  } finally {
    if (fs.existsSync(aside)) fs.renameSync(aside, parentDir);
    await killAndWait(worker.proc, 'SIGTERM');
    await client.connection.close();
  }
});

test('cancel of a fine-tuning run, then `forge resume`: the run stops with a checkpoint, the resumed session continues from it and keeps the lineage', async () => {
  const worker = spawnWorker('agent');
  const client = await testClient();
  const id = sessionId('ft-cancel');
  try {
    const started = await startFineTuningPastEpisode40(client, id, 600);
    await started.handle.cancel();
    await expect(started.handle.result()).rejects.toThrow();
    expect((await started.handle.describe()).status.name).toBe('CANCELLED');

    const resumed = JSON.parse((await forge('resume', 'agent', id)).stdout) as { resumedFromStatus: string };
    expect(resumed.resumedFromStatus).toBe('CANCELLED');
    const result = await client.workflow.getHandle(started.workflowId).result();
    expect(result.initFrom).toMatchObject({ sessionId: parentSession, agentId: AGENT.id });
    expect(result.agents[0].episodesRun).toBe(600);
    // The resumed run started from the cancelled run's checkpoint, not from the parent again.
    expect(result.agents[0].resumedFromEpisode).toBeGreaterThanOrEqual(40);
    const stats = JSON.parse(fs.readFileSync(path.join(dataDir(), 'agent', id, AGENT.id, 'training_stats.json'), 'utf8'));
    expect(stats.parent).toMatchObject({ sessionId: parentSession, agent: AGENT.id });
  } finally {
    await killAndWait(worker.proc, 'SIGTERM');
    await client.connection.close();
  }
});
