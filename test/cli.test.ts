// The `forge` CLI as a user runs it: validate, start with --watch (progress bar from the query), status,
// result with the artifact list, list.
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { killAndWait, ROOT, sessionId, spawnWorker, testClient } from './helpers/temporal';

const run = promisify(execFile);
jest.setTimeout(10 * 60_000);

function forge(...args: string[]) {
  return run(process.execPath, ['--import', 'tsx', path.join(ROOT, 'cli', 'forge.ts'), ...args], {
    cwd: ROOT,
    env: process.env,
    maxBuffer: 16 << 20,
  });
}

test('validate: bad input exits 2 naming every bad field; good input prints the config with defaults', async () => {
  const bad = await forge(
    'validate',
    'cognate',
    '--input',
    'examples/cognate-run.yaml',
    '--set',
    'dModel=100',
    '--set',
    'nHeads=3',
    '--set',
    'maxSteps=-1',
  ).catch((e: { code: number; stderr: string }) => e);
  expect((bad as { code: number }).code).toBe(2);
  expect((bad as { stderr: string }).stderr).toMatch(/config\.nHeads: must divide dModel \(100\)/);
  expect((bad as { stderr: string }).stderr).toMatch(/config\.maxSteps:/);
  const good = JSON.parse((await forge('validate', 'agent', '--input', 'examples/agent-run.yaml')).stdout);
  expect(good.config.maxEpisodes).toBe(500);
  expect(good.config.explorationRate).toBe(0.1); // default filled in
});

test('start --watch, status, result and list on a real run', async () => {
  const worker = spawnWorker('agent');
  try {
    const id = sessionId('cli-forge');
    const started = await forge(
      'start',
      'agent',
      '--session',
      id,
      '--set',
      'maxEpisodes=64',
      '--set',
      'evalEpisodes=8',
      '--set',
      'environmentTypes=["interactive"]',
      '--watch',
    );
    const lines = started.stdout.trim().split('\n');
    expect(JSON.parse(lines[0]).workflowId).toBe(`agent-${id}`);
    expect(lines.some((l) => /\[#+\.*\]\s+100% completed/.test(l))).toBe(true);

    // What the Web UI shows for the run: the static summary and details set at start.
    const client = await testClient();
    try {
      const desc = await client.workflow.getHandle(`agent-${id}`).describe();
      expect(await desc.staticSummary()).toMatch(
        new RegExp(`Agent Forge · session ${id} · multi_agent_collaboration · 3 agents · 64 episodes`),
      );
      expect(await desc.staticDetails()).toContain('coordinator_agent (hierarchical_agent)');
    } finally {
      await client.connection.close();
    }

    const status = JSON.parse((await forge('status', 'agent', id)).stdout);
    expect(status.status).toBe('COMPLETED');
    expect(status.progress.phase).toBe('completed');
    const result = JSON.parse((await forge('result', 'agent', id)).stdout);
    expect(result.artifacts.files.length).toBeGreaterThan(0);
    expect((await forge('list', 'agent')).stdout).toContain(`agent-${id}`);
  } finally {
    await killAndWait(worker.proc, 'SIGTERM');
  }
});
