// Cognate pretraining end to end on the real dev server: the plain `temporal` CLI, progress, artifacts that
// Python opens, exact resume after SIGKILL, a server restart, `forge resume`, cancellation, and bad data.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import type { Client, WorkflowHandle } from '@temporalio/client';
import { Worker } from '@temporalio/worker';
import { WORKFLOW_TYPES } from '../common/constants';
import { startDevServer } from '../common/dev-server';
import { startRun } from '../client/runs';
import { TINY_COGNATE } from '../client/presets';
import type { CognateProgress } from '../activities/cognate/config';
import { killAndWait, pythonHas, ROOT, sessionId, spawnWorker, testClient, temporalCli as cli, waitFor } from './helpers/temporal';

const run = promisify(execFile);
jest.setTimeout(20 * 60_000);

let client: Client;
const completed: WorkflowHandle[] = [];
const dataDir = () => process.env.FORGE_DATA_DIR!;

beforeAll(async () => {
  client = await testClient();
});
afterAll(async () => {
  await client.connection.close();
});

const progressOf = (h: WorkflowHandle) => h.query<CognateProgress>('progress');

function trainingLog(session: string, model: string): Record<string, unknown>[] {
  const file = path.join(dataDir(), 'checkpoints', 'cognate', session, model, 'training_log.jsonl');
  return fs
    .readFileSync(file, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

function stepLosses(log: Record<string, unknown>[]): Map<number, number> {
  const out = new Map<number, number>();
  for (const e of log) if (e.kind === 'step') out.set(e.step as number, e.loss as number);
  return out;
}

// One uninterrupted reference run, shared by the CLI test and the crash test's loss comparison.
const REFERENCE = { ...TINY_COGNATE, seed: 7 };
let referenceSession = '';

test('the plain temporal CLI runs the whole workflow; progress answers; artifacts exist and open', async () => {
  const worker = spawnWorker('cognate');
  try {
    referenceSession = sessionId('cog-cli');
    const workflowId = `cognate-${referenceSession}`;
    const input = { sessionId: referenceSession, config: REFERENCE, models: [{ name: 'm1' }] };
    await cli(
      'workflow',
      'start',
      '--type',
      WORKFLOW_TYPES.cognate,
      '--task-queue',
      'cognate-pretraining',
      '--workflow-id',
      workflowId,
      '--input',
      JSON.stringify(input),
    );
    const steps = new Set<number>();
    await waitFor(
      'training steps in the progress query',
      async () => {
        const out = JSON.parse(await cli('workflow', 'query', '--workflow-id', workflowId, '--name', 'progress', '--output', 'json')) as {
          queryResult: CognateProgress[];
        };
        const p = out.queryResult[0];
        if (p.models.m1?.step) steps.add(p.models.m1.step);
        return steps.size >= 2 || p.phase === 'completed';
      },
      10 * 60_000,
      700,
    );

    const handle = client.workflow.getHandle(workflowId);
    const result = await handle.result();
    completed.push(handle);
    expect(result.models[0].finalStep).toBe(REFERENCE.maxSteps);
    const modelDir = path.join(dataDir(), 'cognate', referenceSession, 'm1');
    const names = fs.readdirSync(modelDir);
    for (const f of [
      'pytorch_model.bin',
      'model.safetensors',
      'config.json',
      'tokenizer.json',
      'training_stats.json',
      'training_log.jsonl',
      'manifest.json',
    ])
      expect(names).toContain(f);
    for (const f of result.artifacts.files) expect(fs.existsSync(f.path)).toBe(true);
    const config = JSON.parse(fs.readFileSync(path.join(modelDir, 'config.json'), 'utf8'));
    expect(config.parameter_count).toBeGreaterThan(0);
    const stats = JSON.parse(fs.readFileSync(path.join(modelDir, 'training_stats.json'), 'utf8'));
    expect(stats.lossCurve.length).toBeGreaterThan(0);
    expect(stats.backend.backend).toBeTruthy();
    if (pythonHas('torch', 'safetensors', 'numpy')) {
      await run('python3', [path.join(ROOT, 'scripts', 'verify_weights.py'), modelDir, '--skip', 'ltm*.safetensors', '--json']);
    } else {
      console.warn('python torch/safetensors not installed: skipped the Python read-back of the Cognate weights');
    }
    if (pythonHas('tokenizers')) {
      await run('python3', [
        '-c',
        `import tokenizers,sys; t=tokenizers.Tokenizer.from_file(sys.argv[1]); assert t.get_vocab_size() > 0`,
        path.join(modelDir, 'tokenizer.json'),
      ]);
    }
  } finally {
    await killAndWait(worker.proc, 'SIGTERM');
  }
});

test('SIGKILL mid-training: a new worker finishes; at most saveSteps redone; the losses equal the uninterrupted run', async () => {
  expect(referenceSession).not.toBe('');
  let worker = spawnWorker('cognate');
  const id = sessionId('cog-crash');
  const started = await startRun(client, 'cognate', { sessionId: id, config: REFERENCE, models: [{ name: 'm1' }] });
  try {
    await waitFor(
      'training past its second checkpoint',
      async () => ((await progressOf(started.handle)).models.m1?.step ?? 0) >= 25,
      10 * 60_000,
      300,
    );
    await killAndWait(worker.proc, 'SIGKILL');
    const lastStepBeforeKill = Math.max(
      ...trainingLog(id, 'm1')
        .filter((e) => e.kind === 'step')
        .map((e) => e.step as number),
    );
    worker = spawnWorker('cognate');
    const result = await started.handle.result();
    completed.push(started.handle);
    const resumedFrom = result.models[0].resumedFromStep;
    expect(resumedFrom).toBeGreaterThan(0);
    expect(lastStepBeforeKill - resumedFrom).toBeLessThanOrEqual(REFERENCE.saveSteps!);
    // Same backend, same seed: every step logged after the resume has the reference run's loss.
    const reference = stepLosses(trainingLog(referenceSession, 'm1'));
    const resumed = trainingLog(id, 'm1').filter((e) => e.kind === 'step' && (e.attempt as number) > 1);
    expect(resumed.length).toBeGreaterThan(0);
    for (const e of resumed) if (reference.has(e.step as number)) expect(e.loss).toBe(reference.get(e.step as number));
    expect(result.models[0].finalLoss).toBe(
      JSON.parse(fs.readFileSync(path.join(dataDir(), 'cognate', referenceSession, 'm1', 'training_stats.json'), 'utf8')).finalLoss,
    );
  } finally {
    await killAndWait(worker.proc, 'SIGTERM');
  }
});

test('a restart of the dev server (same database) mid-run: the run completes', async () => {
  const worker = spawnWorker('cognate');
  const id = sessionId('cog-restart');
  const started = await startRun(client, 'cognate', { sessionId: id, config: { ...TINY_COGNATE, maxSteps: 40 }, models: [{ name: 'm1' }] });
  try {
    await waitFor('training to start', async () => ((await progressOf(started.handle)).models.m1?.step ?? 0) > 0, 10 * 60_000, 300);
    const pid = Number(process.env.FORGE_TEST_SERVER_PID);
    process.kill(pid, 'SIGTERM');
    await waitFor(
      'the old server to exit',
      async () => {
        try {
          process.kill(pid, 0);
          return false;
        } catch {
          return true;
        }
      },
      30_000,
      200,
    );
    const root = process.env.FORGE_TEST_ROOT!;
    const server = await startDevServer({
      dbFile: path.join(root, 'temporal.db'),
      port: Number(process.env.FORGE_TEST_SERVER_PORT),
      uiPort: Number(process.env.FORGE_TEST_SERVER_UI_PORT),
      logFile: path.join(root, 'temporal.log'),
    });
    // global-teardown stops whichever server is running now.
    fs.writeFileSync(path.join(root, 'server.pid'), String(server.process.pid));
    server.process.unref();
    const result = await started.handle.result();
    completed.push(started.handle);
    expect(result.status).toBe('completed');
    expect(result.models[0].finalStep).toBe(40);
  } finally {
    await killAndWait(worker.proc, 'SIGTERM');
  }
});

test('cancelling stops training within seconds with a final checkpoint; `forge resume` continues from it and from the prepared data', async () => {
  const worker = spawnWorker('cognate');
  const id = sessionId('cog-cancel');
  const config = { ...TINY_COGNATE, maxSteps: 400, saveSteps: 1000 };
  const started = await startRun(client, 'cognate', { sessionId: id, config, models: [{ name: 'm1' }] });
  try {
    await waitFor('training to start', async () => ((await progressOf(started.handle)).models.m1?.step ?? 0) >= 3, 10 * 60_000, 300);
    const t0 = Date.now();
    await started.handle.cancel();
    await expect(started.handle.result()).rejects.toThrow();
    expect(Date.now() - t0).toBeLessThan(20_000);
    expect((await started.handle.describe()).status.name).toBe('CANCELLED');
    // saveSteps is beyond the run, so any checkpoint on disk is the one written on cancellation.
    const ckpts = fs.readdirSync(path.join(dataDir(), 'checkpoints', 'cognate', id, 'm1')).filter((f) => f.endsWith('.ckpt'));
    expect(ckpts.length).toBeGreaterThan(0);
    expect(fs.existsSync(path.join(dataDir(), 'cognate', id))).toBe(false); // nothing published

    const { stdout } = await run(process.execPath, ['--import', 'tsx', path.join(ROOT, 'cli', 'forge.ts'), 'resume', 'cognate', id], {
      env: process.env,
      cwd: ROOT,
    });
    expect(JSON.parse(stdout.trim().split('\n').pop()!).resumedFromStatus).toBe('CANCELLED');
    const resumed = client.workflow.getHandle(`cognate-${id}`);
    await waitFor(
      'the resumed run to continue training',
      async () => ((await progressOf(resumed)).models.m1?.resumedFromStep ?? 0) > 0,
      10 * 60_000,
      300,
    );
    await resumed.cancel();
    await expect(resumed.result()).rejects.toThrow();
    expect(trainingLog(id, 'm1').filter((e) => e.kind === 'resumed').length).toBeGreaterThan(0);
    // The second run's prepareDatasets reused the first run's prepared data.
    const events = (await resumed.fetchHistory()).events ?? [];
    const firstResult = events.find((e) => e.activityTaskCompletedEventAttributes)?.activityTaskCompletedEventAttributes?.result
      ?.payloads?.[0]?.data;
    expect(JSON.parse(Buffer.from(firstResult!).toString('utf8')).reused).toBe(true);
  } finally {
    await killAndWait(worker.proc, 'SIGTERM');
  }
});

test('histories of completed Cognate runs replay without nondeterminism errors', async () => {
  expect(completed.length).toBeGreaterThan(0);
  for (const handle of completed) {
    await Worker.runReplayHistory(
      { workflowsPath: require.resolve('../workflows/cognate') },
      await handle.fetchHistory(),
      handle.workflowId,
    );
  }
});

describe('bad data and storage fail clearly, without retries, publishing nothing', () => {
  let worker: ReturnType<typeof spawnWorker>;
  beforeAll(() => {
    worker = spawnWorker('cognate');
  });
  afterAll(async () => {
    await killAndWait(worker.proc, 'SIGTERM');
  });

  async function failureOf(input: object): Promise<{ message: string; type: string | undefined; attempts: number }> {
    const started = await startRun(client, 'cognate', input);
    const err = (await started.handle.result().catch((e: unknown) => e)) as { cause?: { cause?: { message: string; type?: string } } };
    const cause = err.cause?.cause;
    expect(cause).toBeDefined();
    const events = (await started.handle.fetchHistory()).events ?? [];
    const attempts = Math.max(
      ...events.filter((e) => e.activityTaskStartedEventAttributes).map((e) => e.activityTaskStartedEventAttributes!.attempt ?? 1),
    );
    return { message: cause!.message, type: cause!.type, attempts };
  }

  function localCopy(mutate: (dir: string) => void): string {
    const dir = fs.mkdtempSync(path.join(process.env.FORGE_TEST_ROOT!, 'local-'));
    fs.cpSync(path.join(ROOT, 'fixtures', 'cognate'), dir, { recursive: true });
    mutate(dir);
    return dir;
  }

  test('a GSM8K row without its answer names the file, the row and the field', async () => {
    const dir = localCopy((d) => {
      const file = path.join(d, 'gsm8k', 'train.jsonl');
      const lines = fs.readFileSync(file, 'utf8').split('\n');
      lines[2] = JSON.stringify({ question: JSON.parse(lines[2]).question });
      fs.writeFileSync(file, lines.join('\n'));
    });
    const id = sessionId('bad-field');
    const f = await failureOf({
      sessionId: id,
      config: { ...TINY_COGNATE, datasetMode: 'offline', localDatasetDir: dir },
      models: [{ name: 'm1' }],
    });
    expect(f.message).toMatch(/gsm8k\/train\.jsonl/);
    expect(f.message).toMatch(/answer/);
    expect(f.type).toBe('InvalidDataset');
    expect(f.attempts).toBe(1);
    expect(fs.existsSync(path.join(dataDir(), 'cognate', id))).toBe(false);
  });

  test('a truncated SVAMP file names the file', async () => {
    const dir = localCopy((d) => {
      const file = path.join(d, 'svamp', 'SVAMP.json');
      fs.writeFileSync(file, fs.readFileSync(file, 'utf8').slice(0, 500));
    });
    const f = await failureOf({
      sessionId: sessionId('bad-trunc'),
      config: { ...TINY_COGNATE, datasetMode: 'offline', localDatasetDir: dir },
      models: [{ name: 'm1' }],
    });
    expect(f.message).toMatch(/SVAMP\.json/);
    expect(f.attempts).toBe(1);
  });

  test('a tokenizer larger than vocabSize names both numbers', async () => {
    // A real tokenizer.json with 1024 entries, from the reference run's artifacts.
    const tokenizerPath = path.join(dataDir(), 'cognate', referenceSession, 'm1', 'tokenizer.json');
    expect(fs.existsSync(tokenizerPath)).toBe(true);
    const f = await failureOf({
      sessionId: sessionId('bad-vocab'),
      config: { ...TINY_COGNATE, vocabSize: 300, tokenizerPath },
      models: [{ name: 'm1' }],
    });
    expect(f.message).toMatch(/vocabSize/);
    expect(f.message).toMatch(/300/);
    expect(f.attempts).toBe(1);
  });

  test('an unwritable FORGE_DATA_DIR is named, not retried', async () => {
    const blocker = path.join(process.env.FORGE_TEST_ROOT!, 'not-a-dir');
    fs.writeFileSync(blocker, 'a file where the data dir should be');
    await killAndWait(worker.proc, 'SIGTERM');
    worker = spawnWorker('cognate', { FORGE_DATA_DIR: path.join(blocker, 'data') });
    const f = await failureOf({ sessionId: sessionId('bad-dir'), config: TINY_COGNATE, models: [{ name: 'm1' }] });
    expect(f.message).toMatch(/FORGE_DATA_DIR .*not-a-dir\/data is not writable/);
    expect(f.type).toBe('InvalidConfig');
    expect(f.attempts).toBe(1);
  });
});
