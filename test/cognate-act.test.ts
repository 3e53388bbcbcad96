// The ACT benchmark's task and depth accounting at a tiny size (bench/act.ts runs the comparison itself):
// every example's pairs describe one cycle whose h-fold successor is the answer at query h, evaluation
// cycles are never drawn in training, a cycle too short for its hop counts is refused, and the depth
// evaluateChase reports is the number of blocks a position ran (nLayers with ACT off or never halting, 1
// when every position halts after the first block). --merge joins per-process result files: a fixed-depth
// process merges with ACT runs of any ACT schedule, two ACT runs of different schedules do not. The halting
// guard leaves a kept first attempt exactly as training without it, reruns a rejected phase on another data
// order, and with every attempt rejected restores the plain model bit for bit. An ACT model continued from a
// fixed-depth model's training (--halting-from-fixed) takes its blocks, optimiser and data stream; its halting
// units keep their start; with --halting-only the halting phase moves nothing but the halting units;
// --ponder-scored changes what the ponder cost counts; --full-depth-loss adds the same weights' full-depth
// loss from the halting start on; --halting-reader-gradient keeps the forward values and gives a halted
// position's halting unit −λ × its readers' gain from its update (a running one's too with
// --reader-gradient-running); --trunk-dir's saved plain phase continues bit for bit.
// evaluateChase reports the halting state's share of ACT's output.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { useTestBackend } from './helpers/backend';
import {
  actModelConfig,
  chaseBatch,
  evaluateChase,
  merge,
  queryToken,
  sequenceLength,
  taskError,
  tensors,
  trainChase,
  trunkCache,
  ChaseTraining,
  type ChaseState,
  type ChaseTask,
  type TrainOptions,
} from '../bench/act';
import { HaltingAccumulator } from '../activities/cognate/engine/act';
import { CognateModel, type ModelConfigInput } from '../activities/cognate/engine/model';
import { Rng } from '../common/rng';

const task: ChaseTask = { symbols: 10, cycle: 7, maxHops: 3 };
/** A smaller task for the tests that train. */
const small: ChaseTask = { symbols: 8, cycle: 5, maxHops: 2 };

/** The 2-block, 16-wide model the tests that train use (ponder cost τ = 1). */
const tinyConfig = (act: boolean) => ({ ...actModelConfig(small, 2, act, 1), dModel: 16, dFF: 32 });
/** 6 plain steps, then 6 of halting with the ponder cost on at once: the schedule of the tests that continue from a fixed model. */
const continued: TrainOptions = {
  steps: 12,
  batch: 8,
  learningRate: 1e-2,
  seed: 5,
  ponderStart: 0.5,
  ponderRamp: 0,
  haltingFrozenUntil: 0.5,
  haltingInit: 0.01,
};

/** Every parameter's values after `steps` steps of ChaseTraining of a new model (`setup` runs after the trainer's halting init). */
function trainedParams(config: ModelConfigInput, o: TrainOptions, steps: number, setup?: (m: CognateModel) => void): number[][] {
  const model = new CognateModel(config, 3);
  const t = new ChaseTraining(model, small, o);
  setup?.(model);
  t.run(steps);
  const params = model.params.map((p) => Array.from(p.variable.dataSync()));
  t.dispose();
  model.dispose();
  return params;
}

beforeAll(async () => {
  await useTestBackend();
});

/** The successor table the pair tokens of one row describe, and the row's queries as (h, x). */
function decode(row: ArrayLike<number>): { next: Map<number, number>; queries: { h: number; x: number }[] } {
  const next = new Map<number, number>();
  for (let j = 0; j < task.cycle; j++) next.set(Math.floor(row[j] / task.symbols), row[j] % task.symbols);
  const queries = [];
  for (let j = task.cycle; j < row.length; j++) {
    const q = row[j] - task.symbols * task.symbols;
    queries.push({ h: Math.floor(q / task.symbols) + 1, x: q % task.symbols });
  }
  return { next, queries };
}

describe('ACT benchmark task', () => {
  test('pairs describe one cycle through `cycle` symbols; query h of x comes h-th and its answer is the h-fold successor of x', () => {
    const b = chaseBatch(task, new Rng(3), 60, true);
    const L = sequenceLength(task);
    expect(L).toBe(task.cycle + task.maxHops);
    for (let i = 0; i < b.batch; i++) {
      const row = b.inputs.subarray(i * L, (i + 1) * L);
      const { next, queries } = decode(row);
      expect(next.size).toBe(task.cycle); // every member once as a source
      let y = queries[0].x;
      const seen = new Set<number>();
      for (let s = 0; s < task.cycle; s++) {
        seen.add(y);
        y = next.get(y)!;
      }
      expect(y).toBe(queries[0].x); // one cycle through all members
      expect(seen.size).toBe(task.cycle);
      expect(queries.map((q) => q.h)).toEqual([1, 2, 3]);
      let answer = queries[0].x;
      for (const [k, q] of queries.entries()) {
        expect(q.x).toBe(queries[0].x); // one x per example
        expect(row[task.cycle + k]).toBe(queryToken(task, q.h, q.x));
        answer = next.get(answer)!;
        expect(b.answers[i * task.maxHops + k]).toBe(answer);
      }
      // Every answer differs from x and from the others: fewer hops never give the right answer by accident.
      expect(new Set([queries[0].x, ...b.answers.subarray(i * task.maxHops, (i + 1) * task.maxHops)]).size).toBe(task.maxHops + 1);
    }
  });

  test('a cycle of at most 2 x hops is refused (backward lookups would be shorter), as is one longer than the vocabulary', () => {
    expect(taskError(task)).toBeNull();
    expect(taskError({ symbols: 10, cycle: 6, maxHops: 3 })).toMatch(/--cycle must exceed 2 x --hops/);
    expect(taskError({ symbols: 10, cycle: 5, maxHops: 3 })).toMatch(/--cycle/);
    expect(taskError({ symbols: 6, cycle: 7, maxHops: 3 })).toMatch(/--cycle must be at most --symbols/);
  });

  test('training never draws an evaluation cycle', () => {
    const key = (row: ArrayLike<number>): string => {
      const { next } = decode(row);
      const start = Math.min(...next.keys());
      const order = [start];
      while (order.length < task.cycle) order.push(next.get(order[order.length - 1])!);
      return order.join(',');
    };
    const L = sequenceLength(task);
    const rows = (heldOut: boolean, seed: number) => {
      const b = chaseBatch(task, new Rng(seed), 1500, heldOut);
      return new Set(Array.from({ length: b.batch }, (_, i) => key(b.inputs.subarray(i * L, (i + 1) * L))));
    };
    const train = rows(false, 5);
    const held = rows(true, 6);
    expect(held.size).toBeGreaterThan(100); // many distinct cycles on both sides
    expect(train.size).toBeGreaterThan(100);
    expect([...held].filter((k) => train.has(k))).toEqual([]);
  });

  test('evaluateChase counts the blocks each position ran: all with ACT off or never halting, one when all halt at once', () => {
    const tensorsBefore = tf.memory().numTensors;
    const depthWith = (act: boolean, haltingBias: number) => {
      const model = new CognateModel({ ...actModelConfig(task, 3, act), dModel: 32, dFF: 32 }, 1);
      tf.tidy(() => {
        for (const p of model.params) {
          if (p.name.endsWith('halting.weight')) p.variable.assign(tf.zerosLike(p.variable));
          if (p.name.endsWith('halting.bias')) p.variable.assign(tf.fill(p.variable.shape, haltingBias));
        }
      });
      const r = evaluateChase(model, task, 24, 9, 8);
      model.dispose();
      return r;
    };
    const off = depthWith(false, 0);
    const never = depthWith(true, -10); // p ≈ 5e-5 per block: nobody reaches the threshold
    const once = depthWith(true, 10); // p ≈ 1 after the first block
    const twice = depthWith(true, 0); // p = 0.5 per block: Σp reaches 1 ≥ 0.99 at the second, R = 1 − 0.5
    for (const r of [off, never]) {
      expect(r.meanDepth).toBe(3);
      expect(r.meanDepthAllPositions).toBe(3);
    }
    expect(once.meanDepth).toBe(1);
    expect(once.meanDepthAllPositions).toBe(1);
    for (const h of [1, 2, 3]) {
      expect(once.byHops[h].meanDepth).toBe(1);
      // the halting state's share of the output: all of it when halting at once, half at the second block
      expect(once.byHops[h].haltingStateWeight).toBeCloseTo(1, 4);
      expect(never.byHops[h].haltingStateWeight).toBeCloseTo(1, 3);
      expect(twice.byHops[h].meanDepth).toBe(2);
      expect(twice.byHops[h].haltingStateWeight).toBeCloseTo(0.5, 5);
      expect(once.byHops[h].haltingStateAccuracy).toBe(once.byHops[h].accuracy); // the output is the halting state
      expect(off.byHops[h].haltingStateWeight).toBeUndefined(); // ACT off: no halting state to speak of
      // never halting, the output is the last state's up to 1e-4 of earlier ones: as the full-depth readout
      expect(never.byHops[h].fullDepthAccuracy).toBe(never.byHops[h].accuracy);
    }
    expect(tf.memory().numTensors).toBe(tensorsBefore);
  });

  test('--merge: fixed-depth files join ACT runs of any ACT schedule; ACT runs of different schedules, or other shared settings, are refused', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'act-merge-'));
    const arm = (accuracy: number) => ({ layers: 4, accuracy, meanDepth: 3, meanDepthAllPositions: 2, byHops: {} });
    const file = (name: string, runs: object[], ponder: string, batch = 128) => {
      const at = path.join(dir, name);
      const result = {
        task: { symbols: 12 },
        model: { nLayers: 4, ponderCost: 0.05, actThreshold: 0.99 },
        training: { steps: 6000, batch, ponder, halting: 'h', haltingInit: 'p' },
        evaluation: { examples: 8 },
        backend: { backend: 'tensorflow' },
        conditions: {},
        seconds: 1,
        runs,
      };
      fs.writeFileSync(at, JSON.stringify(result));
      return at;
    };
    const fixed = file('fixed.json', [{ seed: 0, fixedFull: arm(0.99) }], 'schedule A');
    const actLate = file('act-late.json', [{ seed: 0, act: arm(0.97) }], 'schedule B');
    const actEarly = file('act-early.json', [{ seed: 1, act: arm(0.96) }], 'schedule A');
    const otherBatch = file('fixed-b64.json', [{ seed: 1, fixedFull: arm(0.98) }], 'schedule B', 64);
    const out = path.join(dir, 'merged.json');
    const log = jest.spyOn(console, 'log').mockImplementation(() => undefined);
    const error = jest.spyOn(console, 'error').mockImplementation(() => undefined);
    try {
      merge([fixed, actLate], out);
      const merged = JSON.parse(fs.readFileSync(out, 'utf8'));
      expect(merged.training.ponder).toBe('schedule B'); // the ACT run's schedule, not the fixed file's
      expect(merged.runs).toEqual([{ seed: 0, fixedFull: arm(0.99), act: arm(0.97) }]);
      expect(merged.headline).toMatchObject({ accuracyAct: 0.97, accuracyFixedFull: 0.99 });
      expect(() => merge([actLate, actEarly], out)).toThrow(/act-early\.json: settings differ from .*act-late\.json/);
      expect(() => merge([actLate, otherBatch], out)).toThrow(/fixed-b64\.json: settings differ/);
    } finally {
      log.mockRestore();
      error.mockRestore();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test('halting guard: a kept first attempt trains exactly as without the guard; rejected attempts rerun on another data order; none kept restores the plain model', () => {
    const tensorsBefore = tf.memory().numTensors;
    // 24 plain steps, then a 16-step halting phase (ponder cost on at once)
    const schedule: TrainOptions = {
      steps: 40,
      batch: 16,
      learningRate: 1e-2,
      seed: 5,
      ponderStart: 0.6,
      ponderRamp: 0,
      haltingFrozenUntil: 0.6,
      haltingInit: 0.01,
    };
    const train = (o: Partial<TrainOptions>) => {
      const model = new CognateModel(tinyConfig(true), 3);
      const r = trainChase(model, small, { ...schedule, ...o });
      const weights = model.params.map((p) => Array.from(p.variable.dataSync()));
      model.dispose();
      return { ...r, weights };
    };
    const guard = { restarts: 1, examples: 16, seed: 7 };
    const log = jest.spyOn(console, 'error').mockImplementation(() => undefined);
    try {
      const plainOnly = train({ steps: 24, ponderStart: 1, haltingFrozenUntil: 1 }); // the same first 24 steps, no halting phase
      const unguarded = train({});
      const keptFirst = train({ guard: { ...guard, tolerance: 1 } }); // any accuracy is kept
      // a tolerance below zero asks for more than the plain model scores plus one: every attempt is rejected
      const noneKept = train({ guard: { ...guard, tolerance: -1 } });
      expect(keptFirst.guard).toMatchObject({ kept: 0, attempts: [{ attempt: 0, kept: true }] });
      expect(keptFirst.weights).toEqual(unguarded.weights);
      expect(keptFirst.finalLoss).toBe(unguarded.finalLoss);
      expect(noneKept.guard?.kept).toBe('plain');
      expect(noneKept.guard?.attempts.map((a) => a.kept)).toEqual([false, false]);
      expect(noneKept.guard?.attempts[0].finalTrainLoss).toBe(unguarded.finalLoss); // attempt 0 is the unguarded phase
      expect(noneKept.guard?.attempts[1].finalTrainLoss).not.toBe(unguarded.finalLoss); // attempt 1 saw other batches
      expect(noneKept.weights).toEqual(plainOnly.weights);
      expect(unguarded.weights).not.toEqual(plainOnly.weights);
    } finally {
      log.mockRestore();
    }
    expect(tf.memory().numTensors).toBe(tensorsBefore);
  });

  test('an ACT model continued from a fixed model trains on from its weights, optimiser and data stream; its halting units keep their start', () => {
    const tensorsBefore = tf.memory().numTensors;
    const o = continued;
    const fixed = new CognateModel(tinyConfig(false), 3);
    const act = new CognateModel(tinyConfig(true), 4); // another init: every block weight must come from the fixed model
    const plain = new ChaseTraining(fixed, small, o);
    const onAct = new ChaseTraining(act, small, o);
    try {
      plain.run(plain.haltingStart);
      const trunk = plain.state();
      onAct.load(trunk);
      expect(onAct.step).toBe(6);
      expect(onAct.rng.state()).toEqual(plain.rng.state());
      for (const p of act.params) {
        if (p.name.includes('halting.')) continue;
        expect(Array.from(p.variable.dataSync())).toEqual(Array.from(trunk.params[p.name].data));
      }
      const bias = act.params.find((p) => p.name.endsWith('halting.bias'));
      expect(bias?.variable.dataSync()[0]).toBeCloseTo(Math.log(0.01 / 0.99), 5);
      onAct.run(o.steps);
      expect(Number.isFinite(onAct.finalLoss)).toBe(true);
      expect(Array.from((bias as { variable: tf.Variable }).variable.dataSync())[0]).not.toBeCloseTo(Math.log(0.01 / 0.99), 5); // halting trained after the start
      const { ['model.layers.0.mlp.up_proj.weight']: dropped, ...partial } = trunk.params;
      expect(dropped).toBeDefined();
      expect(() => onAct.load({ ...trunk, params: partial })).toThrow(
        'training state has no parameter "model.layers.0.mlp.up_proj.weight"',
      );
    } finally {
      for (const x of [plain, onAct, fixed, act]) x.dispose();
    }
    expect(tf.memory().numTensors).toBe(tensorsBefore);
  });

  test('--ponder-scored: the ponder cost counts the query positions only, so training differs from the cost over every position', () => {
    const tensorsBefore = tf.memory().numTensors;
    const o: TrainOptions = { steps: 6, batch: 8, learningRate: 1e-2, seed: 5, ponderStart: 0, ponderRamp: 0, haltingInit: 0.3 };
    const finalLoss = (ponderScored: boolean) => {
      const model = new CognateModel(tinyConfig(true), 3);
      const r = trainChase(model, small, { ...o, ponderScored });
      model.dispose();
      return r.finalLoss;
    };
    const [every, scored] = [finalLoss(false), finalLoss(true)];
    expect(Number.isFinite(scored)).toBe(true);
    expect(scored).not.toBeCloseTo(every, 4);
    expect(tf.memory().numTensors).toBe(tensorsBefore);
  });

  test('--halting-only: the halting phase moves the halting units and nothing else', () => {
    const tensorsBefore = tf.memory().numTensors;
    const o = continued;
    const fixed = new CognateModel(tinyConfig(false), 3);
    const plain = new ChaseTraining(fixed, small, o);
    try {
      plain.run(plain.haltingStart);
      const trunk = plain.state();
      const haltingPhase = (haltingOnly: boolean) => {
        const act = new CognateModel(tinyConfig(true), 4);
        const t = new ChaseTraining(act, small, { ...o, haltingOnly });
        t.load(trunk);
        t.run(o.steps);
        const moved = act.params
          .filter((p) => !trunk.params[p.name] || p.variable.dataSync().some((x, i) => x !== trunk.params[p.name].data[i]))
          .map((p) => p.name);
        t.dispose();
        act.dispose();
        return moved;
      };
      const movedOnly = haltingPhase(true);
      expect(movedOnly.length).toBeGreaterThan(0);
      expect(movedOnly.every((name) => name.includes('halting.'))).toBe(true);
      expect(haltingPhase(false).some((name) => !name.includes('halting.'))).toBe(true); // without the flag the blocks train on
    } finally {
      plain.dispose();
      fixed.dispose();
    }
    expect(tf.memory().numTensors).toBe(tensorsBefore);
  });

  test('--full-depth-loss: the fullDepth forward is the same weights with ACT off; the loss changes the halting phase only', () => {
    const tensorsBefore = tf.memory().numTensors;
    const act = new CognateModel(tinyConfig(true), 3);
    const plainModel = new CognateModel(tinyConfig(false), 4);
    tf.tidy(() => {
      for (const p of plainModel.params) p.variable.assign(act.params.find((q) => q.name === p.name)!.variable);
      const b = chaseBatch(small, new Rng(1), 4, false);
      const tokens = tf.tensor2d(b.inputs, [b.batch, b.length], 'int32');
      const full = act.forward(tokens, { training: true, fullDepth: true });
      expect(Array.from(full.logits.dataSync())).toEqual(Array.from(plainModel.forward(tokens, { training: true }).logits.dataSync()));
      expect(full.ponder).toBeNull();
      const withAct = act.forward(tokens, { training: true }).logits;
      expect(tf.abs(withAct.sub(full.logits)).max().dataSync()[0]).toBeGreaterThan(0); // ACT's output is another mixture
    });
    plainModel.dispose();
    act.dispose();
    const paramsAfter = (fullDepthLoss: number, steps: number) => trainedParams(tinyConfig(true), { ...continued, fullDepthLoss }, steps);
    // before the halting start the term is not charged; after it, it moves the weights
    expect(paramsAfter(1, 6)).toEqual(paramsAfter(0, 6));
    expect(paramsAfter(1, 12)).not.toEqual(paramsAfter(0, 12));
    expect(tf.memory().numTensors).toBe(tensorsBefore);
  });

  test("--halting-reader-gradient: the kept state is the same; a halted position gets −λ × its readers' gain from its update; training changes from the halting start", () => {
    const tensorsBefore = tf.memory().numTensors;
    tf.tidy(() => {
      // position 0 halts after the first step (0.995 ≥ 0.99), position 1 runs on
      const before = tf.randomNormal<tf.Rank.R3>([1, 2, 3], 0, 1, 'float32', 1);
      const after = tf.randomNormal<tf.Rank.R3>([1, 2, 3], 0, 1, 'float32', 2);
      const reader = tf.randomNormal<tf.Rank.R3>([1, 2, 3], 0, 1, 'float32', 3); // dL/d(kept state)
      const kept = (p: tf.Tensor2D, lambda: number, alsoRunning = false) => {
        const acc = new HaltingAccumulator([1, 2], 0.99);
        acc.step(p, before, false);
        return acc.keep(after, before, lambda, alsoRunning);
      };
      const p = tf.tensor2d([[0.995, 0.1]]);
      expect(Array.from(kept(p, 1).dataSync())).toEqual(Array.from(kept(p, 0).dataSync()));
      expect(Array.from(kept(p, 1, true).dataSync())).toEqual(Array.from(kept(p, 0).dataSync()));
      // the halted position keeps its state, the running one takes the block's (up to rounding: before + (after − before))
      const expected = before.slice([0, 0], [1, 1]).concat(after.slice([0, 1], [1, 1]), 1);
      expect(tf.abs(kept(p, 0).sub(expected)).max().dataSync()[0]).toBeLessThan(1e-6);
      // (+ 0·Σq: tf.grad needs a path from q, and with λ = 0 the kept state has none)
      const gradOf = (lambda: number, alsoRunning = false) =>
        tf
          .grad((q) =>
            kept(q as tf.Tensor2D, lambda, alsoRunning)
              .mul(reader)
              .sum()
              .add(q.sum().mul(0)),
          )(p)
          .dataSync();
      expect(gradOf(0)[0]).toBe(0); // a constant mask: the halted position's p gets nothing from its readers
      const gain = after.sub(before).mul(reader).sum(-1).dataSync(); // Σ_c (after − before)·dL/dkept per position
      expect(gradOf(2)[0]).toBeCloseTo(-2 * gain[0], 5);
      expect(gradOf(2)[1]).toBe(0); // a running one's p is left to the output mixture
      expect(gradOf(2, true)[0]).toBeCloseTo(-2 * gain[0], 5);
      expect(gradOf(2, true)[1]).toBeCloseTo(-2 * gain[1], 5); // alsoRunning: its update as if scaled by the mass left
    });
    const model = new CognateModel(tinyConfig(true), 3);
    model.initHalting(0.6);
    tf.tidy(() => {
      const { tokens } = tensors(small, chaseBatch(small, new Rng(1), 4, false));
      const logits = (haltingReaderGradient: number) => model.forward(tokens, { training: true, haltingReaderGradient }).logits.dataSync();
      expect(Array.from(logits(1))).toEqual(Array.from(logits(0)));
    });
    model.dispose();
    // 3 blocks; p spread around 0.99 after block 1 halts some positions there, p ≈ 0.001 after block 2 keeps
    // the others running, and in block 3 they read the halted ones' states, kept through the gate at block 2
    const spreadHalting = (m: CognateModel) =>
      tf.tidy(() => {
        const unit = (name: string) => m.params.find((q) => q.name === `model.layers.${name}`)!.variable;
        unit('0.halting.weight').assign(unit('0.halting.weight').mul(100));
        unit('0.halting.bias').assign(tf.fill([1], Math.log(0.99 / 0.01)));
        unit('1.halting.bias').assign(tf.fill([1], Math.log(0.001 / 0.999)));
      });
    const paramsAfter = (haltingReaderGradient: number, steps: number) =>
      trainedParams({ ...tinyConfig(true), nLayers: 3 }, { ...continued, haltingReaderGradient }, steps, spreadHalting);
    // before the halting start the gate is off; after it, it moves the weights
    expect(paramsAfter(1, 6)).toEqual(paramsAfter(0, 6));
    expect(paramsAfter(1, 12)).not.toEqual(paramsAfter(0, 12));
    expect(tf.memory().numTensors).toBe(tensorsBefore);
  });

  test('--trunk-dir: a saved plain phase continues bit for bit; other settings get another folder', () => {
    const tensorsBefore = tf.memory().numTensors;
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'act-trunks-'));
    const settings = { task: small, seed: 0, haltingStart: 6 };
    const train = (from?: ChaseState) => {
      const model = new CognateModel(tinyConfig(false), 3);
      const t = new ChaseTraining(model, small, continued);
      if (from) t.load(from);
      else t.run(t.haltingStart);
      const at = t.state();
      t.run(continued.steps);
      const params = model.params.map((p) => Array.from(p.variable.dataSync()));
      t.dispose();
      model.dispose();
      return { at, params };
    };
    try {
      const cache = trunkCache(dir, settings);
      expect(cache.load()).toBeNull();
      const uninterrupted = train();
      cache.save(uninterrupted.at, 12.5);
      const loaded = trunkCache(dir, { ...settings }).load();
      expect(loaded?.seconds).toBe(12.5);
      expect(train(loaded!.state).params).toEqual(uninterrupted.params);
      const other = trunkCache(dir, { ...settings, seed: 1 });
      expect(other.folder).not.toBe(cache.folder);
      expect(other.load()).toBeNull();
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
    expect(tf.memory().numTensors).toBe(tensorsBefore);
  });
});
