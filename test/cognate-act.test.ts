// The ACT benchmark's task and depth accounting at a tiny size (bench/act.ts runs the comparison itself):
// every example's pairs describe one cycle whose h-fold successor is the scored answer, evaluation cycles
// are never drawn in training, and the depth evaluateChase reports is the number of blocks a position ran
// (nLayers with ACT off or never halting, 1 when every position halts after the first block).
import * as tf from '@tensorflow/tfjs-core';
import { useTestBackend } from './helpers/backend';
import { actModelConfig, chaseBatch, evaluateChase, queryToken, sequenceLength, type ChaseTask } from '../bench/act';
import { CognateModel } from '../activities/cognate/engine/model';
import { Rng } from '../common/rng';

const task: ChaseTask = { symbols: 10, cycle: 5, maxHops: 3, format: 'pair' };

beforeAll(async () => {
  await useTestBackend();
});

/** The successor table the pair tokens of one row describe, and the row's query. */
function decode(row: ArrayLike<number>): { next: Map<number, number>; h: number; x: number } {
  const next = new Map<number, number>();
  for (let j = 0; j < task.cycle; j++) next.set(Math.floor(row[j] / task.symbols), row[j] % task.symbols);
  const q = row[task.cycle] - task.symbols * task.symbols;
  return { next, h: Math.floor(q / task.symbols) + 1, x: q % task.symbols };
}

describe('ACT benchmark task', () => {
  test('pairs describe one cycle through `cycle` symbols; the answer is the h-fold successor; evaluation hops are stratified', () => {
    const b = chaseBatch(task, new Rng(3), 60, true, true);
    const L = sequenceLength(task);
    expect(L).toBe(task.cycle + 1);
    for (let i = 0; i < b.batch; i++) {
      const row = b.inputs.subarray(i * L, (i + 1) * L);
      const { next, h, x } = decode(row);
      expect(row[task.cycle]).toBe(queryToken(task, h, x));
      expect(next.size).toBe(task.cycle); // every member once as a source
      let y = x;
      const seen = new Set<number>();
      for (let s = 0; s < task.cycle; s++) {
        seen.add(y);
        y = next.get(y)!;
      }
      expect(y).toBe(x); // one cycle through all members
      expect(seen.size).toBe(task.cycle);
      let answer = x;
      for (let s = 0; s < h; s++) answer = next.get(answer)!;
      expect(b.answers[i]).toBe(answer);
      expect(b.hops[i]).toBe((i % task.maxHops) + 1);
    }
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
    for (const r of [off, never]) {
      expect(r.meanDepth).toBe(3);
      expect(r.meanDepthAllPositions).toBe(3);
    }
    expect(once.meanDepth).toBe(1);
    expect(once.meanDepthAllPositions).toBe(1);
    for (const h of [1, 2, 3]) expect(once.byHops[h].meanDepth).toBe(1);
    expect(tf.memory().numTensors).toBe(tensorsBefore);
  });
});
