// Agent Forge end to end on the real dev server: the plain `temporal` CLI, live progress, crash recovery
// from a checkpoint, cancellation, artifacts on disk, and replay of the recorded histories.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import type { Client, WorkflowHandle } from '@temporalio/client';
import { Worker } from '@temporalio/worker';
import { WORKFLOW_TYPES } from '../common/constants';
import { startRun } from '../client/runs';
import type { AgentForgeProgress } from '../activities/agent/config';
import { killAndWait, pythonHas, ROOT, sessionId, spawnWorker, testClient, temporalCli as cli, waitFor } from './helpers/temporal';

const run = promisify(execFile);
jest.setTimeout(15 * 60_000);

let client: Client;
const completed: WorkflowHandle[] = [];

beforeAll(async () => {
  client = await testClient();
});
afterAll(async () => {
  await client.connection.close();
});

async function progressOf(handle: WorkflowHandle): Promise<AgentForgeProgress> {
  return handle.query<AgentForgeProgress>('progress');
}

interface ArtifactFile {
  agentId: string;
  path: string;
  bytes: number;
  sha256: string;
}

function expectArtifactsOnDisk(files: ArtifactFile[], agentIds: string[]) {
  for (const id of agentIds) {
    const names = files.filter((f) => f.agentId === id).map((f) => path.basename(f.path));
    for (const required of [
      'agent_weights.pt',
      'agent_weights.safetensors',
      'agent_config.json',
      'behavior_policy.json',
      'training_stats.json',
      'manifest.json',
    ]) {
      expect(names).toContain(required);
    }
  }
  for (const f of files) {
    expect(fs.statSync(f.path).size).toBe(f.bytes);
    expect(f.path.startsWith(path.join(process.env.FORGE_DATA_DIR!, 'agent'))).toBe(true);
  }
}

test('a run started with the plain temporal CLI completes, and `temporal workflow query --name progress` shows the episode advancing', async () => {
  const worker = spawnWorker('agent');
  try {
    const id = sessionId('cli');
    const workflowId = `agent-${id}`;
    const input = {
      sessionId: id,
      config: { maxEpisodes: 300, evalEpisodes: 40, checkpointEvery: 25 },
      agents: [
        { id: 'scout', architecture: 'reactive_agent' },
        { id: 'planner', architecture: 'planning_agent' },
      ],
    };
    await cli(
      'workflow',
      'start',
      '--type',
      WORKFLOW_TYPES.agent,
      '--task-queue',
      'agent-forge',
      '--workflow-id',
      workflowId,
      '--input',
      JSON.stringify(input),
    );

    // Two distinct, increasing episode counts seen through the CLI while training runs.
    const seen: number[] = [];
    await waitFor(
      'the episode to advance in the progress query',
      async () => {
        const out = JSON.parse(await cli('workflow', 'query', '--workflow-id', workflowId, '--name', 'progress', '--output', 'json')) as {
          queryResult: AgentForgeProgress[];
        };
        const p = out.queryResult[0];
        if (p.phase === 'training' && p.episode > 0 && !seen.includes(p.episode)) seen.push(p.episode);
        return seen.length >= 2;
      },
      8 * 60_000,
      1000,
    );
    expect(seen[1]).toBeGreaterThan(seen[0]);

    const handle = client.workflow.getHandle(workflowId);
    const result = await handle.result();
    completed.push(handle);
    expect(result.status).toBe('completed');
    expectArtifactsOnDisk(result.artifacts.files, ['scout', 'planner']);
    for (const agent of result.agents) {
      expect(agent.parameterCount).toBeGreaterThan(1000);
      expect(agent.metrics.trained.episodes).toBe(40);
      expect(agent.metrics.random.episodes).toBe(40);
    }
    // The exported weights read back in Python (torch.load weights_only, safetensors) equal the tfjs tensors.
    if (pythonHas('torch', 'safetensors', 'numpy')) {
      for (const agentId of ['scout', 'planner']) {
        const dir = path.join(process.env.FORGE_DATA_DIR!, 'agent', id, agentId);
        const { stdout } = await run('python3', [path.join(ROOT, 'scripts', 'verify_weights.py'), dir, '--json']);
        expect(JSON.parse(stdout).ok).toBe(true);
      }
    } else {
      console.warn('python torch/safetensors not installed: skipped the Python read-back of the agent weights');
    }
    const final = await progressOf(handle);
    expect(final.phase).toBe('completed');
    expect(final.progress).toBe(1);
  } finally {
    await killAndWait(worker.proc, 'SIGTERM');
  }
});

test('SIGKILL of the worker during trainAgents: a new worker finishes the run, resuming from a checkpoint', async () => {
  let worker = spawnWorker('agent');
  const id = sessionId('crash');
  const started = await startRun(client, 'agent', {
    sessionId: id,
    config: { maxEpisodes: 1200, evalEpisodes: 20, checkpointEvery: 20, environmentTypes: ['simulation'], progressIntervalSeconds: 0.5 },
    agents: [{ id: 'solo', architecture: 'reactive_agent' }],
  });
  try {
    // Wait until training is past its second checkpoint, then kill the worker and its trainers without warning.
    await waitFor(
      'training past episode 40',
      async () => {
        const p = await progressOf(started.handle);
        return (p.agents.solo?.episode ?? 0) >= 45;
      },
      8 * 60_000,
    );
    await killAndWait(worker.proc, 'SIGKILL');
    worker = spawnWorker('agent');
    const result = await started.handle.result();
    completed.push(started.handle);
    const solo = result.agents.find((a: { agentId: string }) => a.agentId === 'solo');
    expect(solo.resumedFromEpisode).toBeGreaterThan(0);
    expect(solo.episodesRun).toBe(1200);
    // The history records the retried attempt of trainAgents.
    const events = (await started.handle.fetchHistory()).events ?? [];
    const startedAttempts = events
      .filter((e) => e.activityTaskStartedEventAttributes)
      .map((e) => e.activityTaskStartedEventAttributes!.attempt ?? 1);
    expect(Math.max(...startedAttempts)).toBeGreaterThan(1);
  } finally {
    await killAndWait(worker.proc, 'SIGTERM');
  }
});

test('cancellation stops training within seconds, keeps the last checkpoint, and the run reports cancelled', async () => {
  const worker = spawnWorker('agent');
  const id = sessionId('cancel');
  const started = await startRun(client, 'agent', {
    sessionId: id,
    config: { maxEpisodes: 100000, checkpointEvery: 10, environmentTypes: ['interactive'] },
    agents: [{ id: 'talker', architecture: 'transformer_agent' }],
  });
  try {
    await waitFor('training to start', async () => ((await progressOf(started.handle)).agents.talker?.episode ?? 0) > 0, 8 * 60_000);
    const t0 = Date.now();
    await started.handle.cancel();
    const err = await started.handle.result().catch((e: Error) => e);
    expect((err as Error).name).toBe('WorkflowFailedError');
    expect(Date.now() - t0).toBeLessThan(20_000);
    expect((await started.handle.describe()).status.name).toBe('CANCELLED');
    expect((await progressOf(started.handle)).phase).toBe('cancelled');
    const ckptDir = path.join(process.env.FORGE_DATA_DIR!, 'checkpoints', 'agent', id, 'talker');
    expect(fs.readdirSync(ckptDir).length).toBeGreaterThan(0);
  } finally {
    await killAndWait(worker.proc, 'SIGTERM');
  }
});

test('histories of completed runs replay without nondeterminism errors', async () => {
  expect(completed.length).toBeGreaterThan(0);
  for (const handle of completed) {
    const history = await handle.fetchHistory();
    await Worker.runReplayHistory({ workflowsPath: require.resolve('../workflows/agent') }, history, handle.workflowId);
  }
});
