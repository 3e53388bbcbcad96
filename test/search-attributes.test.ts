// Search attributes as operators use them: a run is found with the plain `temporal` CLI by pipeline, session
// and phase, carries its progress (step, latest metric, backend) when it ends, and `forge list` filters by them.
// `forge setup` registers them on a server that has none, idempotently.
import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { startRun } from '../client/runs';
import { freePort } from '../common/dev-server';
import { SA, SEARCH_ATTRIBUTES } from '../common/search-attributes';
import { findTemporalBinary } from '../common/temporal-cli';
import { killAndWait, ROOT, sessionId, spawnWorker, temporalCli, testClient, waitFor } from './helpers/temporal';

const run = promisify(execFile);
jest.setTimeout(10 * 60_000);

function forge(env: NodeJS.ProcessEnv, ...args: string[]) {
  return run(process.execPath, ['--import', 'tsx', path.join(ROOT, 'cli', 'forge.ts'), ...args], { cwd: ROOT, env, maxBuffer: 16 << 20 });
}

test('a finished run is found by ForgePipeline, ForgeSession and ForgePhase, with its step, metric and backend', async () => {
  const worker = spawnWorker('agent');
  const client = await testClient();
  try {
    const id = sessionId('sa');
    const started = await startRun(client, 'agent', {
      sessionId: id,
      config: { maxEpisodes: 32, evalEpisodes: 8, environmentTypes: ['interactive'], hiddenSize: 32, numLayers: 2 },
      agents: [{ id: 'solo', architecture: 'reactive_agent' }],
    });
    await started.handle.result();

    const query = `ForgePipeline="agent" AND ForgeSession="${id}" AND ForgePhase="completed"`;
    const listed = await waitFor('the run in the visibility store', async () => {
      const out = await temporalCli('workflow', 'list', '--query', query, '--output', 'json');
      return out.includes(started.workflowId) ? out : null;
    });
    expect(listed).toContain(started.workflowId);
    const none = await temporalCli('workflow', 'list', '--query', `ForgePipeline="cognate" AND ForgeSession="${id}"`, '--output', 'json');
    expect(none).not.toContain(started.workflowId);

    const sa = (await started.handle.describe()).typedSearchAttributes;
    expect(sa.get(SA.pipeline)).toBe('agent');
    expect(sa.get(SA.session)).toBe(id);
    expect(sa.get(SA.phase)).toBe('completed');
    expect(sa.get(SA.step)).toBeGreaterThanOrEqual(32);
    expect(sa.get(SA.successRate)).toBeGreaterThanOrEqual(0);
    expect(sa.get(SA.backend)).toMatch(/^(tensorflow|wasm|cpu) /);

    const { stdout } = await forge(process.env, 'list', 'agent', '--phase', 'completed', '--session', id);
    expect(stdout).toContain(started.workflowId);
    expect(stdout).toMatch(/completed\s+step \d+/);
  } finally {
    await client.connection.close();
    await killAndWait(worker.proc, 'SIGTERM');
  }
});

test('forge setup registers every attribute on a server without them, and a second run changes nothing', async () => {
  const bin = findTemporalBinary();
  if (!bin) throw new Error('Temporal CLI not found; run npm install');
  const port = await freePort();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'forge-setup-'));
  const server = spawn(
    bin,
    [
      'server',
      'start-dev',
      '--headless',
      '--ip',
      '127.0.0.1',
      '--port',
      String(port),
      '--db-filename',
      path.join(dir, 'db'),
      '--log-level',
      'error',
    ],
    { stdio: 'ignore' },
  );
  try {
    const env = { ...process.env, TEMPORAL_ADDRESS: `127.0.0.1:${port}`, TEMPORAL_NAMESPACE: 'default' };
    const first = await waitFor(
      'forge setup against the fresh server',
      () =>
        forge(env, 'setup').then(
          (r) => r.stdout,
          () => null,
        ),
      60_000,
      1000,
    );
    for (const a of SEARCH_ATTRIBUTES) expect(first).toContain(a.name);
    expect(first).toMatch(/already present \[\]/);
    const second = (await forge(env, 'setup')).stdout;
    expect(second).toMatch(/added \[\]/);
  } finally {
    server.kill('SIGTERM');
  }
});
