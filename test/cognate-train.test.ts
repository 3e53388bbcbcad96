// Cognate training half: optimizer and schedule math, RNG, checkpoint integrity, data loading, and the
// trainer's resume exactness / stop / corrupt-checkpoint fallback / child process on a tiny real model.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../common/backend';
import { testBackendChoice, useTestBackend } from './helpers/backend';
import { AdamW, clipByGlobalNorm, globalNorm, GradientAccumulator } from '../common/optim';
import { actScheduleAt, learningRateAt } from '../activities/cognate/engine/schedule';
import { Rng } from '../common/rng';
import { CorruptCheckpointError, listCheckpoints, loadLatestCheckpoint, readCheckpoint, saveCheckpoint } from '../common/checkpoint';
import { openDataset, TrainSampler, validationBatches } from '../activities/cognate/engine/data';
import { train, type TrainEvent, type TrainJob, type TrainSummary } from '../activities/cognate/engine/trainer';
import { childModulePath, runInChild } from '../common/child';
import { CognateConfigSchema } from '../activities/cognate/config';
import { writeTinyDataset } from './helpers/tiny-dataset';

const tmpRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'cognate-train-'));
afterAll(() => fs.rmSync(tmpRoot, { recursive: true, force: true }));
let dirCount = 0;
const freshDir = (name: string): string => fs.mkdtempSync(path.join(tmpRoot, `${name}-${dirCount++}-`));

beforeAll(async () => {
  await initBackend('cpu');
});

describe('AdamW', () => {
  /** Scalar AdamW in float64, written out longhand: the reference the tensor version must match. */
  function referenceAdamW(
    p0: number,
    gs: number[],
    lr: number,
    b1: number,
    b2: number,
    eps: number,
    wd: number,
    decoupled: boolean,
  ): number[] {
    let p = p0;
    let m = 0;
    let v = 0;
    return gs.map((g0, i) => {
      const t = i + 1;
      const g = decoupled ? g0 : g0 + wd * p;
      if (decoupled) p *= 1 - lr * wd;
      m = b1 * m + (1 - b1) * g;
      v = b2 * v + (1 - b2) * g * g;
      const mHat = m / (1 - b1 ** t);
      const vHat = v / (1 - b2 ** t);
      p -= (lr * mHat) / (Math.sqrt(vHat) + eps);
      return p;
    });
  }

  function runAdamW(decoupled: boolean, gs: number[]): { matrix: number[]; bias: number[] } {
    const matrix = tf.variable(tf.tensor2d([[1]]));
    const bias = tf.variable(tf.tensor1d([1]));
    const opt = new AdamW(
      [
        { name: 'matrix', variable: matrix },
        { name: 'bias', variable: bias },
      ],
      { beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weightDecay: 0.1, decoupled },
    );
    const out = { matrix: [] as number[], bias: [] as number[] };
    for (const g of gs) {
      const grads = { matrix: tf.tensor2d([[g]]), bias: tf.tensor1d([g]) };
      opt.update(grads, 0.1);
      tf.dispose(grads);
      out.matrix.push(matrix.dataSync()[0]);
      out.bias.push(bias.dataSync()[0]);
    }
    opt.dispose();
    tf.dispose([matrix, bias]);
    return out;
  }

  test('first decoupled step by hand: p = 1*(1 - 0.1*0.1) - 0.1 * 0.5/0.5 = 0.89', () => {
    expect(runAdamW(true, [0.5]).matrix[0]).toBeCloseTo(0.89, 6);
  });

  test('first coupled (Adam + L2) step by hand: g = 0.5 + 0.1*1, p = 1 - 0.1 * 0.6/0.6 = 0.9', () => {
    expect(runAdamW(false, [0.5]).matrix[0]).toBeCloseTo(0.9, 6);
  });

  test('five steps match the longhand float64 reference; biases are not decayed', () => {
    const gs = [0.5, -1, 0.25, 2, -0.75];
    for (const decoupled of [true, false]) {
      const got = runAdamW(decoupled, gs);
      const wantMatrix = referenceAdamW(1, gs, 0.1, 0.9, 0.999, 1e-8, 0.1, decoupled);
      const wantBias = referenceAdamW(1, gs, 0.1, 0.9, 0.999, 1e-8, 0, decoupled);
      got.matrix.forEach((p, i) => expect(p).toBeCloseTo(wantMatrix[i], 5));
      got.bias.forEach((p, i) => expect(p).toBeCloseTo(wantBias[i], 5));
      expect(Math.abs(got.matrix[4] - got.bias[4])).toBeGreaterThan(1e-3); // decay really acted on the matrix only
    }
  });

  test('state round-trips: a restored optimizer takes the identical next step', () => {
    const make = () => tf.variable(tf.tensor2d([[0.3, -0.2]]));
    const a = make();
    const optA = new AdamW([{ name: 'w', variable: a }], { beta1: 0.9, beta2: 0.95, epsilon: 1e-8, weightDecay: 0.01, decoupled: true });
    optA.update({ w: tf.tensor2d([[0.1, 0.4]]) }, 0.01);
    const b = tf.variable(a.clone());
    const optB = new AdamW([{ name: 'w', variable: b }], optA.settings);
    optB.load(optA.state());
    const g = { w: tf.tensor2d([[-0.3, 0.2]]) };
    optA.update(g, 0.01);
    optB.update(g, 0.01);
    expect(Array.from(b.dataSync())).toEqual(Array.from(a.dataSync()));
    expect(optB.step).toBe(2);
  });
});

describe('gradient plumbing', () => {
  test('global norm, clipping and accumulation', () => {
    const grads = { a: tf.tensor1d([3, 0]), b: tf.tensor2d([[0, 4]]) };
    expect(globalNorm(grads)).toBeCloseTo(5, 6);
    const clipped = clipByGlobalNorm(grads, 1, 5);
    expect(globalNorm(clipped)).toBeCloseTo(1, 5);
    const untouched = clipByGlobalNorm(grads, 10, 5);
    expect(Array.from(untouched.a.dataSync())).toEqual([3, 0]);
    const acc = new GradientAccumulator();
    acc.add(grads);
    acc.add({ a: tf.tensor1d([1, 2]), b: tf.tensor2d([[2, 0]]) });
    const mean = acc.takeMean();
    expect(Array.from(mean.a.dataSync())).toEqual([2, 1]);
    expect(Array.from(mean.b.dataSync())).toEqual([1, 2]);
  });
});

describe('learning-rate schedule', () => {
  const cfg = { learningRate: 1e-3, minLearningRate: 1e-4, warmupSteps: 10 };
  test('linear warmup, cosine to the floor at the last step', () => {
    expect(learningRateAt(0, cfg, 111)).toBeCloseTo(1e-4, 12); // 1e-3 * 1/10
    expect(learningRateAt(4, cfg, 111)).toBeCloseTo(5e-4, 12);
    expect(learningRateAt(9, cfg, 111)).toBeCloseTo(1e-3, 12);
    expect(learningRateAt(10, cfg, 111)).toBeCloseTo(1e-3, 12);
    expect(learningRateAt(60, cfg, 111)).toBeCloseTo(5.5e-4, 12); // halfway through 100 decay steps: floor + (peak-floor)/2
    expect(learningRateAt(110, cfg, 111)).toBeCloseTo(1e-4, 12);
    expect(learningRateAt(500, cfg, 111)).toBeCloseTo(1e-4, 12);
    expect(learningRateAt(0, { ...cfg, warmupSteps: 0 }, 111)).toBeCloseTo(1e-3, 12);
  });
});

describe('ACT schedule', () => {
  test('halting untrained and no ponder cost during the warmup, then the ponder cost ramps in linearly', () => {
    const cfg = { actWarmupSteps: 4, actPonderRampSteps: 4 };
    expect([0, 3].map((s) => actScheduleAt(s, cfg))).toEqual([
      { trainHalting: false, ponderScale: 0 },
      { trainHalting: false, ponderScale: 0 },
    ]);
    expect([4, 5, 7, 100].map((s) => actScheduleAt(s, cfg))).toEqual(
      [0.25, 0.5, 1, 1].map((ponderScale) => ({ trainHalting: true, ponderScale })),
    );
    expect(actScheduleAt(0, { actWarmupSteps: 0, actPonderRampSteps: 0 })).toEqual({ trainHalting: true, ponderScale: 1 });
  });
});

describe('Rng (common/rng.ts, shared by both pipelines)', () => {
  test('sfc32 reference outputs for state [1,2,3,4] (computed independently from the algorithm definition)', () => {
    const rng = Rng.fromState([1, 2, 3, 4]);
    expect([rng.nextUint32(), rng.nextUint32(), rng.nextUint32(), rng.nextUint32()]).toEqual([7, 34, 56623200, 188882296]);
  });
  test('rejects bad seeds, bounds and states', () => {
    expect(() => new Rng(1.5)).toThrow(/integer/);
    expect(() => new Rng(1).int(0)).toThrow(/1\.\.2\^32/);
    expect(() => Rng.fromState([1, 2, 3] as never)).toThrow(/four 32-bit/);
  });
  test('same seed same stream; state resumes the stream', () => {
    const a = new Rng(42);
    const b = new Rng(42);
    expect(Array.from({ length: 5 }, () => a.int(1000))).toEqual(Array.from({ length: 5 }, () => b.int(1000)));
    const c = Rng.fromState(a.state());
    expect(Array.from({ length: 5 }, () => c.next())).toEqual(Array.from({ length: 5 }, () => a.next()));
    expect(new Rng(43).nextUint32()).not.toBe(new Rng(42).nextUint32());
  });
});

describe('checkpoint files', () => {
  const state = () => ({
    step: 7,
    weights: { w: new Float32Array([1.5, -2.25, Math.PI]) },
    ids: new Int32Array([1, -2, 3]),
    nested: [{ x: new Uint16Array([9, 8]) }, 'text', true, null],
    loss: Number.NaN,
    big: Number.POSITIVE_INFINITY,
    lr: 0.1 + 0.2,
  });

  test('round-trips typed arrays, tensors, NaN and exact doubles', () => {
    const dir = freshDir('ckpt');
    const t = tf.tensor2d([[1, 2]], [1, 2], 'int32');
    saveCheckpoint(dir, 7, { ...state(), tensor: t }, 3);
    const loaded = readCheckpoint<ReturnType<typeof state> & { tensor: tf.Tensor }>(path.join(dir, 'step-00000007.ckpt'));
    expect(loaded.step).toBe(7);
    expect(loaded.state.weights.w).toEqual(new Float32Array([1.5, -2.25, Math.PI]));
    expect(loaded.state.ids).toEqual(new Int32Array([1, -2, 3]));
    expect(loaded.state.nested[0]).toEqual({ x: new Uint16Array([9, 8]) });
    expect(loaded.state.nested.slice(1)).toEqual(['text', true, null]);
    expect(loaded.state.loss).toBeNaN();
    expect(loaded.state.big).toBe(Number.POSITIVE_INFINITY);
    expect(loaded.state.lr).toBe(0.1 + 0.2);
    expect(loaded.state.tensor.dtype).toBe('int32');
    expect(Array.from(loaded.state.tensor.dataSync())).toEqual([1, 2]);
  });

  test('keeps the newest K', () => {
    const dir = freshDir('keep');
    for (const step of [1, 2, 3, 4]) saveCheckpoint(dir, step, { step }, 2);
    expect(listCheckpoints(dir).map((c) => c.step)).toEqual([4, 3]);
  });

  test('truncated and bit-flipped files are detected; loading falls back to the previous one with a warning', () => {
    const dir = freshDir('corrupt');
    for (const step of [10, 20, 30]) saveCheckpoint(dir, step, { step, w: new Float32Array(1000).fill(step) }, 5);
    const newest = path.join(dir, 'step-00000030.ckpt');
    const middle = path.join(dir, 'step-00000020.ckpt');
    fs.truncateSync(newest, fs.statSync(newest).size - 100);
    const bytes = fs.readFileSync(middle);
    bytes[bytes.length - 500] ^= 0x01; // one bit inside the weights
    fs.writeFileSync(middle, bytes);
    expect(() => readCheckpoint(newest)).toThrow(CorruptCheckpointError);
    expect(() => readCheckpoint(middle)).toThrow(/sha256 mismatch/);
    const warnings: string[] = [];
    const loaded = loadLatestCheckpoint<{ step: number; w: Float32Array }>(dir, (w) => warnings.push(w));
    expect(loaded?.step).toBe(10);
    expect(loaded?.state.w[999]).toBe(10);
    expect(warnings).toHaveLength(2);
    expect(warnings[0]).toMatch(/step-00000030\.ckpt is unusable/);
    expect(warnings[1]).toMatch(/step-00000020\.ckpt is unusable: sha256 mismatch/);
    expect(fs.existsSync(`${newest}.corrupt`)).toBe(true);
    expect(listCheckpoints(dir).map((c) => c.step)).toEqual([10]);
  });
});

describe('prepared dataset', () => {
  test('opens, samples deterministic windows and resumes the sampler', () => {
    const dir = freshDir('data');
    writeTinyDataset(dir, { vocabSize: 40, trainDocs: 60, valDocs: 10, seed: 1 });
    const ds = openDataset(dir, 64);
    expect(ds.train.tokens.length).toBe(ds.manifest.splits.train.shards.reduce((n, s) => n + s.tokens, 0));
    const a = new TrainSampler(ds.train, 8, 3, 7);
    const first = a.nextBatch();
    // targets are inputs shifted by one token
    expect(Array.from(first.targets.slice(0, 7))).toEqual(Array.from(first.inputs.slice(1, 8)));
    const b = new TrainSampler(ds.train, 8, 3, 7);
    b.load(a.state());
    expect(b.nextBatch()).toEqual(a.nextBatch());
    expect(a.windowsDrawn).toBe(6);
    const val = validationBatches(ds.validation, 8, 3, 7);
    expect(val.map((v) => v.batchSize)).toEqual([3, 3, 1]);
    expect(validationBatches(ds.validation, 8, 3, 7)).toEqual(val);
  });

  test('a truncated or corrupt shard is named in the error', () => {
    const dir = freshDir('bad-data');
    writeTinyDataset(dir, { vocabSize: 40, trainDocs: 20, valDocs: 5, seed: 2 });
    const shard = path.join(dir, 'train-00001.bin');
    const original = fs.readFileSync(shard);
    fs.writeFileSync(shard, original.subarray(0, original.length - 2));
    expect(() => openDataset(dir, 64)).toThrow(/train shard train-00001\.bin is truncated: \d+ bytes, expected \d+/);
    const flipped = Buffer.from(original);
    flipped[0] ^= 0xff;
    fs.writeFileSync(shard, flipped);
    expect(() => openDataset(dir, 64)).toThrow(/train shard train-00001\.bin is corrupt: sha256/);
    fs.writeFileSync(shard, original);
    expect(() => openDataset(dir, 32)).toThrow(/vocabSize 40 exceeds the model's vocabSize 32/);
  });
});

describe('trainer (tiny model, the backend under test)', () => {
  beforeAll(async () => {
    await useTestBackend();
  });
  // Small enough for a couple of seconds per run, but every part is live: ACT, LTM reads and writes
  // (threshold 0 so the bank fills), gradient accumulation, clipping, GrokFast-EMA, warmup + cosine.
  const config = CognateConfigSchema.parse({
    dModel: 16,
    nLayers: 2,
    nHeads: 2,
    vocabSize: 64,
    maxSeqLen: 16,
    dFF: 32,
    dMem: 8,
    memCapacity: 32,
    memTopK: 2,
    memSurpriseThreshold: 0,
    seqLen: 16,
    batchSize: 2,
    gradientAccumulationSteps: 2,
    maxSteps: 8,
    saveSteps: 2,
    keepCheckpoints: 3,
    evalSteps: 4,
    evalBatches: 4,
    warmupSteps: 2,
    learningRate: 3e-3,
    minLearningRate: 3e-4,
    maxGradNorm: 0.5,
  });
  let dataDir: string;
  beforeAll(() => {
    dataDir = freshDir('train-data');
    writeTinyDataset(dataDir, { vocabSize: 60, trainDocs: 200, valDocs: 20, seed: 3 });
  });

  /** The tiny job in `checkpointDir`, with `overrides` on the config above. */
  const tinyJob = (checkpointDir: string, overrides: Partial<typeof config> = {}): TrainJob => ({
    config: { ...config, ...overrides },
    seed: 11,
    datasetDir: dataDir,
    checkpointDir,
    modelName: 'tiny',
    backend: testBackendChoice(),
    progressIntervalMs: 0,
  });

  interface Run {
    events: TrainEvent[];
    summary: TrainSummary;
  }
  /** Train in this process; stops (like a cancelled activity) once `stopAfterStep` has been reported. */
  async function runTrainer(checkpointDir: string, stopAfterStep?: number): Promise<Run> {
    const events: TrainEvent[] = [];
    const job = tinyJob(checkpointDir);
    const summary = await train(job, {
      emit: (e) => events.push(e),
      stopRequested: () => stopAfterStep !== undefined && events.some((e) => e.kind === 'step' && e.step >= stopAfterStep),
    });
    return { events, summary };
  }
  const stepLosses = (events: TrainEvent[]) => events.flatMap((e) => (e.kind === 'step' ? [[e.step, e.loss, e.gradNorm]] : []));
  const validations = (events: TrainEvent[]) => events.filter((e) => e.kind === 'validation');

  let straight: Run;
  let stoppedDir: string;
  test('a straight run trains: every step reported, loss falls, validation and checkpoints written', async () => {
    const underTest = await useTestBackend();
    const tensorsBefore = tf.memory().numTensors;
    straight = await runTrainer(freshDir('straight'));
    expect(tf.memory().numTensors).toBe(tensorsBefore); // nothing leaks per step (or at all)
    const losses = stepLosses(straight.events);
    expect(losses.map(([s]) => s)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(straight.summary.finalStep).toBe(8);
    expect(straight.summary.stopped).toBe(false);
    expect(straight.summary.finalLoss).toBeLessThan(losses[0][1]);
    expect(validations(straight.events).map((v) => v.step)).toEqual([4, 8]);
    expect(straight.summary.validation?.perplexity).toBeCloseTo(Math.exp(straight.summary.validation?.loss ?? NaN), 10);
    expect(straight.summary.ltm?.writes).toBeGreaterThan(0);
    expect(straight.summary.lossCurve).toHaveLength(8);
    expect(straight.summary.tokensSeen).toBe(8 * 2 * 16 * 2);
    expect(straight.summary.backend.backend).toBe(underTest.backend);
    expect(straight.events.filter((e) => e.kind === 'checkpoint').map((e) => e.step)).toEqual([2, 4, 6, 8]);
  });

  test('stop + resume is exact: 5 steps, stop, resume, 3 more give the same losses bit for bit', async () => {
    stoppedDir = freshDir('stopped');
    const first = await runTrainer(stoppedDir, 5);
    expect(first.summary.stopped).toBe(true);
    expect(first.summary.finalStep).toBe(5);
    // The stop wrote a checkpoint at step 5 (not a multiple of saveSteps); keepCheckpoints=3 kept 2, 4, 5.
    expect(first.events.at(-1)).toMatchObject({ kind: 'checkpoint', step: 5 });
    expect(listCheckpoints(stoppedDir).map((c) => c.step)).toEqual([5, 4, 2]);
    const backup = freshDir('stopped-copy');
    fs.cpSync(stoppedDir, backup, { recursive: true });

    const second = await runTrainer(stoppedDir);
    expect(second.events.find((e) => e.kind === 'resumed')).toMatchObject({ fromStep: 5 });
    const combined = [...stepLosses(first.events), ...stepLosses(second.events)];
    expect(combined).toEqual(stepLosses(straight.events)); // toEqual on numbers is exact (Object.is)
    expect(validations([...first.events, ...second.events])).toEqual(validations(straight.events));
    expect(second.summary.resumes).toBe(1);
    expect(second.summary.lossCurve).toEqual(straight.summary.lossCurve);
    expect(second.summary.ltm).toEqual(straight.summary.ltm);
    stoppedDir = backup;
  });

  test('a checkpoint written before a setting existed resumes without a changed-settings warning; a changed value still warns', async () => {
    /** A copy of the step-5 checkpoint with its stored training config edited by `edit`; returns the resumed run. */
    const resumeEdited = async (edit: (config: Record<string, unknown>) => void): Promise<Run> => {
      const dir = freshDir('edited');
      fs.cpSync(stoppedDir, dir, { recursive: true });
      const file = path.join(dir, 'step-00000005.ckpt');
      const { state } = readCheckpoint<{ config: Record<string, unknown> }>(file);
      edit(state.config);
      saveCheckpoint(dir, 5, state, 10);
      tf.dispose(state as unknown as tf.TensorContainer);
      return runTrainer(dir);
    };
    const settingWarnings = (r: Run) => r.events.filter((e) => e.kind === 'warning' && /changed training settings/.test(e.message));

    const old = await resumeEdited((c) => {
      delete c.actWarmupSteps; // as written before the ACT schedule existed
      delete c.actPonderRampSteps;
    });
    expect(old.events.find((e) => e.kind === 'resumed')).toMatchObject({ fromStep: 5 });
    expect(settingWarnings(old)).toEqual([]);
    expect(stepLosses(old.events)).toEqual(stepLosses(straight.events).slice(5));

    const changed = await resumeEdited((c) => {
      c.actWarmupSteps = 3;
    });
    expect(settingWarnings(changed)).toHaveLength(1);
    expect(settingWarnings(changed)[0]).toMatchObject({ message: expect.stringMatching(/: actWarmupSteps$/) as unknown });
  });

  test('a truncated newest checkpoint is skipped with a warning and training continues exactly from the previous one', async () => {
    const newest = path.join(stoppedDir, 'step-00000005.ckpt');
    fs.truncateSync(newest, Math.floor(fs.statSync(newest).size / 2));
    const resumed = await runTrainer(stoppedDir);
    const warning = resumed.events.find((e) => e.kind === 'warning');
    expect(warning).toBeDefined();
    expect(warning?.kind === 'warning' && warning.message).toMatch(/step-00000005\.ckpt is unusable: sha256 mismatch/);
    expect(resumed.events.find((e) => e.kind === 'resumed')).toMatchObject({ fromStep: 4 });
    expect(stepLosses(resumed.events)).toEqual(stepLosses(straight.events).slice(4));
  });

  test('ACT warmup: halting units keep their start (actHaltingInit) and the ponder cost is 0 until actWarmupSteps, then both train', async () => {
    const dir = freshDir('act-warmup');
    const job = tinyJob(dir, { actWarmupSteps: 4, actPonderRampSteps: 2, actHaltingInit: 0.01, keepCheckpoints: 10 });
    const events: TrainEvent[] = [];
    const tensorsBefore = tf.memory().numTensors;
    await train(job, { emit: (e) => events.push(e), stopRequested: () => false });
    expect(tf.memory().numTensors).toBe(tensorsBefore);
    type Saved = { weights: Record<string, { data: Float32Array }> };
    const halting = (step: number) => {
      const { weights } = readCheckpoint<Saved>(path.join(dir, `step-${String(step).padStart(8, '0')}.ckpt`)).state;
      return [...weights['model.layers.0.halting.weight'].data, ...weights['model.layers.0.halting.bias'].data];
    };
    const start = halting(2);
    expect(start.at(-1)).toBeCloseTo(Math.log(0.01 / 0.99), 5); // the bias, as set by actHaltingInit
    expect(halting(4)).toEqual(start); // untrained through step 4
    expect(halting(6)).not.toEqual(start);
    const ponder = events.flatMap((e) => (e.kind === 'step' ? [e.ponderCost] : []));
    expect(ponder.slice(0, 4)).toEqual([0, 0, 0, 0]);
    expect(ponder[4]).toBeGreaterThan(0); // step 5: half of tau (ramp of 2 steps)
    expect(ponder[4]).toBeLessThan(ponder[5]);
  });

  test('a checkpoint of another architecture is refused, naming the field', async () => {
    const dir = freshDir('other-arch');
    fs.cpSync(stoppedDir, dir, { recursive: true });
    const job = tinyJob(dir, { dFF: 48 });
    await expect(train(job, { emit: () => undefined, stopRequested: () => false })).rejects.toThrow(/dFF \(32 → 48\)/);
  });

  test('runs in a child process via runInChild; a stop request there writes a final checkpoint', async () => {
    const dir = freshDir('child');
    const job = tinyJob(dir, { maxSteps: 200, saveSteps: 1000, evalSteps: 1000 });
    const events: TrainEvent[] = [];
    const handle = runInChild<TrainJob, TrainEvent, TrainSummary>(
      childModulePath(path.join(__dirname, '../activities/cognate/engine'), 'train'),
      job,
      (e) => {
        events.push(e);
        if (e.kind === 'step' && e.step === 3) handle.requestStop();
      },
    );
    const summary = await handle.result;
    expect(summary.stopped).toBe(true);
    expect(summary.finalStep).toBeGreaterThanOrEqual(3);
    expect(summary.finalStep).toBeLessThan(200);
    expect(stepLosses(events).slice(0, 3)).toEqual(stepLosses(straight.events).slice(0, 3)); // same seed, same backend, other process
    expect(listCheckpoints(dir).map((c) => c.step)).toEqual([summary.finalStep]);
    expect(summary.checkpoint?.path).toBe(path.join(dir, `step-${String(summary.finalStep).padStart(8, '0')}.ckpt`));
  });
});
