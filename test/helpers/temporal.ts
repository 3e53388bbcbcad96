// Helpers for tests against the real dev server started in global-setup.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { Client, WorkflowHandle } from '@temporalio/client';
import { connectClient } from '../../common/temporal';
import { findTemporalBinary } from '../../common/temporal-cli';

export const ROOT = path.resolve(__dirname, '..', '..');

export function testClient(): Promise<Client> {
  return connectClient();
}

/** A unique sessionId per test so runs never collide. */
export function sessionId(prefix: string): string {
  return `${prefix}-${process.pid}-${Date.now().toString(36)}`;
}

/** Run `npm run worker:<pipeline>`'s entry point as its own process (so a test can SIGKILL it). */
export function spawnWorker(pipeline: 'agent' | 'cognate', env: Record<string, string> = {}): { proc: ChildProcess; log: () => string } {
  let out = '';
  const proc = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'workers', `${pipeline}.ts`)], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  proc.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  return { proc, log: () => out };
}

export async function waitFor<T>(
  what: string,
  fn: () => Promise<T | undefined | null | false>,
  timeoutMs = 60_000,
  intervalMs = 500,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastErr: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) {
      lastErr = err;
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  throw new Error(`timed out waiting for ${what}${lastErr ? `: ${(lastErr as Error).message}` : ''}`);
}

export async function killAndWait(proc: ChildProcess, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  await new Promise<void>((resolve) => {
    proc.once('exit', () => resolve());
    proc.kill(signal);
  });
}

/** Events of a run's history, as JSON objects. */
export async function historyEvents(handle: WorkflowHandle) {
  return (await handle.fetchHistory()).events ?? [];
}

/** Run the plain `temporal` CLI against the test server, as a user would; resolves with its stdout. */
export async function temporalCli(...args: string[]): Promise<string> {
  const { execFile } = await import('node:child_process');
  const { promisify } = await import('node:util');
  const { stdout } = await promisify(execFile)(
    temporalBinaryPath(),
    [...args, '--address', process.env.TEMPORAL_ADDRESS!, '--namespace', 'default'],
    { maxBuffer: 16 << 20 },
  );
  return stdout;
}

function temporalBinaryPath(): string {
  const bin = findTemporalBinary();
  if (!bin || !fs.existsSync(bin)) throw new Error('Temporal CLI not found; run npm install');
  return bin;
}

/**
 * A worker for `pipeline` that registers the workflows but no activities: a run that reached an activity
 * would hang instead of failing fast, so validation tests can prove nothing ran.
 */
export async function startWorkflowOnlyWorker(pipeline: 'agent' | 'cognate'): Promise<{ stop(): Promise<void> }> {
  const { NativeConnection, Worker } = await import('@temporalio/worker');
  const { TASK_QUEUES } = await import('../../common/constants');
  const connection = await NativeConnection.connect({ address: process.env.TEMPORAL_ADDRESS });
  const worker = await Worker.create({
    connection,
    taskQueue: TASK_QUEUES[pipeline],
    workflowsPath: path.join(ROOT, 'workflows', pipeline),
    activities: {},
  });
  const running = worker.run();
  return {
    stop: async () => {
      worker.shutdown();
      await running;
      await connection.close();
    },
  };
}

/** Start `input` without client-side validation and return the workflow's failure cause. */
export async function workflowFailure(client: Client, workflowType: string, taskQueue: string, input: unknown) {
  const { WorkflowFailedError } = await import('@temporalio/client');
  const handle = await client.workflow.start(workflowType, { taskQueue, workflowId: sessionId('invalid'), args: [input] });
  const err = await handle.result().then(
    () => null,
    (e: unknown) => e,
  );
  if (!(err instanceof WorkflowFailedError)) throw new Error(`expected the workflow to fail, got ${String(err)}`);
  const events = (await handle.fetchHistory()).events ?? [];
  return {
    cause: err.cause as import('@temporalio/common').ApplicationFailure,
    activitiesScheduled: events.filter((e) => e.activityTaskScheduledEventAttributes).length,
  };
}

/** Whether python3 can import these modules (the Python read-back checks run only then). */
export function pythonHas(...modules: string[]): boolean {
  return spawnSync('python3', ['-c', `import ${modules.join(', ')}`], { stdio: 'ignore' }).status === 0;
}
