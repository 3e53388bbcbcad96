// The shared checkpoint mechanism's guarantees on real agent training (checksummed, atomic, a corrupt newest
// one skipped with a warning for the previous one, crash leftovers cleaned), a full disk mid-checkpoint on a
// real tmpfs, and a stop during a slow optimizer step that checkpoints at the next micro-batch boundary.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { initBackend } from '../common/backend';
import { CheckpointWriteError, listCheckpoints, saveCheckpoint } from '../common/checkpoint';
import { runInChild } from '../common/child';
import { graceFollowingMeasurements, DEFAULT_STOP_GRACE_MS } from '../common/supervise';
import { AgentForgeConfigSchema } from '../activities/agent/config';
import { readCheckpoint, readLatestCheckpoint } from '../activities/agent/engine/checkpoint';
import { runTraining, type TrainJob as AgentJob } from '../activities/agent/engine/train';
import { CognateConfigSchema } from '../activities/cognate/config';
import { train, type TrainEvent, type TrainJob, type TrainSummary } from '../activities/cognate/engine/trainer';
import { writeTinyDataset } from './helpers/tiny-dataset';

jest.setTimeout(10 * 60_000);

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'forge-durability-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
beforeAll(async () => {
  await initBackend('wasm');
});

function agentJob(dir: string, maxEpisodes = 32): AgentJob {
  const config = AgentForgeConfigSchema.parse({
    maxEpisodes,
    batchSize: 8,
    checkpointEvery: 8,
    hiddenSize: 16,
    numLayers: 1,
    evalEpisodes: 8,
  });
  return {
    kind: 'agent',
    label: 'solo',
    config,
    env: {
      id: 'referential',
      kind: 'referential',
      numAgents: 2,
      protocols: config.communicationProtocols,
      strategy: config.coordinationStrategy,
      seed: 7,
    },
    units: [{ id: 'solo', architecture: 'reactive_agent', slots: [0, 1] }],
    checkpointDir: path.join(tmp, dir),
  };
}

describe('agent checkpoints on the shared mechanism', () => {
  test('one checksummed file per checkpoint; a corrupt newest one is set aside with a warning and training resumes from the previous one', async () => {
    const job = agentJob('corrupt');
    await runTraining(job, { emit: () => undefined, stopRequested: () => false });
    const files = listCheckpoints(job.checkpointDir);
    expect(files.map((f) => f.step)).toEqual([32, 24]); // the last two kept
    expect(readCheckpoint(files[0].path).meta.trainer.episode).toBe(32);

    // Flip one byte in the middle of the newest file: its sha256 no longer matches.
    const buf = fs.readFileSync(files[0].path);
    buf[buf.length >> 1] ^= 0xff;
    fs.writeFileSync(files[0].path, buf);
    const warnings: string[] = [];
    const latest = readLatestCheckpoint(job.checkpointDir, (w) => warnings.push(w));
    expect(latest?.meta.trainer.episode).toBe(24);
    expect(warnings.join('\n')).toMatch(/sha256 mismatch/);
    expect(fs.existsSync(`${files[0].path}.corrupt`)).toBe(true);
    expect(fs.existsSync(files[0].path)).toBe(false);

    // Training continues from episode 24 (a resume, recorded) and finishes.
    const events: string[] = [];
    const r = await runTraining(job, { emit: (e) => e.type === 'warning' && events.push(e.message), stopRequested: () => false });
    expect(r.resumedFromEpisode).toBe(24);
    expect(r.episodesRun).toBe(32);
    expect(r.complete).toBe(true);
  });

  test('a truncated newest checkpoint is skipped the same way', async () => {
    const job = agentJob('truncated', 16);
    await runTraining(job);
    const [newest] = listCheckpoints(job.checkpointDir);
    fs.truncateSync(newest.path, Math.floor(fs.statSync(newest.path).size / 2));
    const warnings: string[] = [];
    expect(readLatestCheckpoint(job.checkpointDir, (w) => warnings.push(w))?.meta.trainer.episode).toBe(8);
    expect(warnings).toHaveLength(1);
  });

  test('temp files of an interrupted write and staging folders of the old format are removed; neither is ever loaded', async () => {
    const job = agentJob('stale', 16);
    await runTraining(job);
    const dir = job.checkpointDir;
    fs.writeFileSync(path.join(dir, '.step-00000099.ckpt.tmp-4242'), 'half a checkpoint');
    fs.mkdirSync(path.join(dir, '.ep-00000040.staging-4242-1'));
    fs.writeFileSync(path.join(dir, '.ep-00000040.staging-4242-1', 'state.json'), '{');
    expect(readLatestCheckpoint(dir)?.meta.trainer.episode).toBe(16);
    expect(fs.readdirSync(dir).filter((n) => n.startsWith('.'))).toEqual([]);
  });

  test('a chunk budget ends a call with a checkpoint; the next call continues without counting a resume', async () => {
    const job = { ...agentJob('chunks', 64), chunkSeconds: 0 };
    const first = await runTraining(job);
    expect(first.complete).toBe(false);
    expect(first.metrics).toBeNull();
    expect(listCheckpoints(job.checkpointDir)[0].step).toBe(first.episodesRun);
    const rest = await runTraining({ ...job, chunkSeconds: undefined, continuation: { fromEpisode: first.episodesRun, attempt: 1 } });
    expect(rest.complete).toBe(true);
    expect(rest.resumedFromEpisode).toBe(0);
    expect(readCheckpoint(rest.checkpointPath).meta.trainer.resumes).toEqual([]);
  });
});

describe('a full data disk mid-checkpoint (a real 1 MiB tmpfs)', () => {
  const mnt = path.join(tmp, 'small-disk');
  let mounted = false;
  beforeAll(() => {
    fs.mkdirSync(mnt, { recursive: true });
    mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', mnt], { stdio: 'ignore' }).status === 0;
    if (!mounted) console.warn('cannot mount a tmpfs here (needs root): skipped the full-disk drill');
  });
  afterAll(() => {
    if (mounted) spawnSync('umount', [mnt]);
  });

  test('the write fails with a clear error naming ENOSPC; the previous checkpoint is intact and nothing is half-published', () => {
    if (!mounted) return;
    const dir = path.join(mnt, 'ckpt');
    const big = (fill: number) => ({ w: new Float32Array(60_000).fill(fill) }); // 240 kB each
    saveCheckpoint(dir, 1, big(1), 3);
    // Leave ~100 kB free: the next checkpoint starts writing and runs out of space half-way.
    const free = () => fs.statfsSync(mnt).bavail * fs.statfsSync(mnt).bsize;
    fs.writeFileSync(path.join(mnt, 'filler'), Buffer.alloc(Math.max(0, free() - 100_000)));
    let error: unknown;
    try {
      saveCheckpoint(dir, 2, big(2), 3);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(CheckpointWriteError);
    expect((error as CheckpointWriteError).code).toBe('ENOSPC');
    expect((error as Error).message).toMatch(/ENOSPC.*nothing was published, the previous checkpoint step-00000001\.ckpt is intact/);
    expect(fs.readdirSync(dir)).toEqual(['step-00000001.ckpt']);
    expect(listCheckpoints(dir).map((c) => c.step)).toEqual([1]);
  });

  test('agent training on a full disk fails clearly and leaves its last checkpoint loadable', async () => {
    if (!mounted) return;
    fs.rmSync(path.join(mnt, 'filler'), { force: true });
    fs.rmSync(path.join(mnt, 'ckpt'), { recursive: true, force: true });
    const job = { ...agentJob('unused', 64), checkpointDir: path.join(mnt, 'agent') };
    let saved = 0;
    let filled = false;
    const err = await runTraining(job, {
      emit: (e) => {
        if (e.type !== 'checkpoint') return;
        saved = e.episode;
        if (!filled) {
          // After the first checkpoint, take all but half a checkpoint of the space left.
          const size = fs.statSync(e.path).size;
          const st = fs.statfsSync(mnt);
          fs.writeFileSync(path.join(mnt, 'filler'), Buffer.alloc(Math.max(0, st.bavail * st.bsize - Math.floor(size / 2))));
          filled = true;
        }
      },
      stopRequested: () => false,
    }).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(CheckpointWriteError);
    expect((err as Error).message).toMatch(/no space left on device/i);
    expect(readLatestCheckpoint(job.checkpointDir)?.meta.trainer.episode).toBe(saved);
    expect(fs.readdirSync(job.checkpointDir).filter((n) => !/^step-\d{8}\.ckpt$/.test(n))).toEqual([]);
  });
});

describe('a write failing half-way (ENOSPC injected at the write layer; runs everywhere, also without root)', () => {
  test('the error names ENOSPC; the temp file is removed; the previous checkpoint stays the newest and loads', () => {
    const dir = path.join(tmp, 'injected');
    saveCheckpoint(dir, 1, { w: new Float32Array(1000).fill(1) }, 3);
    const realWrite = fs.writeSync;
    let calls = 0;
    const spy = jest.spyOn(fs, 'writeSync').mockImplementation((...args: Parameters<typeof fs.writeSync>) => {
      if (++calls === 3)
        throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC', errno: -28, syscall: 'write' });
      return (realWrite as (...a: unknown[]) => number)(...args);
    });
    try {
      expect(() => saveCheckpoint(dir, 2, { w: new Float32Array(1000).fill(2) }, 3)).toThrow(
        /ENOSPC.*nothing was published, the previous checkpoint step-00000001\.ckpt is intact/,
      );
    } finally {
      spy.mockRestore();
    }
    expect(calls).toBeGreaterThanOrEqual(3);
    expect(fs.readdirSync(dir)).toEqual(['step-00000001.ckpt']);
    expect(listCheckpoints(dir).map((c) => c.step)).toEqual([1]);
  });
});

describe('stop during a slow optimizer step', () => {
  // 24 micro-batches per optimizer step: a step is many times one micro-batch, like the default config's
  // 4 × 2 × 512 tokens on a slow backend. A stop must not wait for the step to end.
  const config = CognateConfigSchema.parse({
    dModel: 32,
    nLayers: 2,
    nHeads: 2,
    vocabSize: 64,
    maxSeqLen: 32,
    dFF: 64,
    dMem: 16,
    memCapacity: 32,
    memTopK: 2,
    memSurpriseThreshold: 0,
    seqLen: 32,
    batchSize: 4,
    gradientAccumulationSteps: 24,
    maxSteps: 6,
    saveSteps: 1000,
    keepCheckpoints: 3,
    evalSteps: 1000,
    evalBatches: 2,
    warmupSteps: 1,
  });
  let dataDir: string;
  beforeAll(() => {
    dataDir = path.join(tmp, 'slow-data');
    writeTinyDataset(dataDir, { vocabSize: 60, trainDocs: 200, valDocs: 20, seed: 5 });
  });
  const job = (dir: string): TrainJob => ({
    config,
    seed: 5,
    datasetDir: dataDir,
    checkpointDir: path.join(tmp, dir),
    modelName: 'slow',
    backend: 'wasm',
    progressIntervalMs: 0,
  });

  test('the child stops at the next micro-batch boundary with a checkpoint of the last whole step; the resumed run redoes at most that one step and equals an uninterrupted run', async () => {
    const reference = new Map<number, number>();
    await train(job('slow-ref'), { emit: (e) => e.kind === 'step' && reference.set(e.step, e.loss), stopRequested: () => false });

    const events: TrainEvent[] = [];
    let stopAt = 0;
    const stopped = runInChild<TrainJob, TrainEvent, TrainSummary>(
      path.join(__dirname, '../activities/cognate/engine/train.child.ts'),
      job('slow-stop'),
      (e) => {
        events.push(e);
        // Ask for the stop a third of the way into step 3 (after step 2 was reported).
        if (e.kind === 'step' && e.step === 2) {
          const micro = e.microBatchSeconds;
          setTimeout(
            () => {
              stopAt = performance.now();
              stopped.requestStop();
            },
            Math.max(1, 8 * micro * 1000),
          );
        }
      },
    );
    const summary = await stopped.result;
    const stopSeconds = (performance.now() - stopAt) / 1000;
    const stepEvents = events.filter((e): e is Extract<TrainEvent, { kind: 'step' }> => e.kind === 'step');
    const micro = Math.max(...stepEvents.map((e) => e.microBatchSeconds));
    expect(summary.stopped).toBe(true);
    const stopping = events.find((e): e is Extract<TrainEvent, { kind: 'stopping' }> => e.kind === 'stopping');
    expect(stopping).toBeDefined(); // it stopped inside a step ...
    expect(stopping!.abandonedMicroBatches).toBeLessThan(config.gradientAccumulationSteps);
    expect(summary.finalStep).toBe(stopping!.step); // ... and checkpointed the last whole step
    expect(listCheckpoints(path.join(tmp, 'slow-stop')).map((c) => c.step)).toEqual([summary.finalStep]);
    // Far sooner than the rest of the step would have taken (24 micro-batches; the checkpoint is small).
    console.log(
      `stop answered in ${stopSeconds.toFixed(2)} s; one micro-batch ${micro.toFixed(3)} s, a step ≈ ${(micro * 24).toFixed(2)} s; abandoned ${stopping!.abandonedMicroBatches} micro-batches`,
    );

    const resumedEvents: TrainEvent[] = [];
    const resumed = await train(job('slow-stop'), { emit: (e) => resumedEvents.push(e), stopRequested: () => false });
    expect(resumed.resumedFromStep).toBe(summary.finalStep);
    const redone = resumedEvents.filter((e) => e.kind === 'step' && e.step <= stopping!.step + 1);
    expect(redone.length).toBeLessThanOrEqual(1); // at most the one step that was cut short
    for (const e of resumedEvents) if (e.kind === 'step') expect(e.loss).toBe(reference.get(e.step));
    expect(resumed.finalStep).toBe(config.maxSteps);
  });

  test('the grace period follows the measured step time', () => {
    expect(graceFollowingMeasurements(null, null)).toBe(DEFAULT_STOP_GRACE_MS);
    expect(graceFollowingMeasurements(40, 5)).toBe(135_000); // a 40 s micro-batch and a 5 s checkpoint: 3 × 45 s
  });
});
