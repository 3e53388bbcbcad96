// GrokFast filter math against hand computations, and a few real steps of the paper's modular task.
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../common/backend';
import { useTestBackend } from './helpers/backend';
import { GrokFast, type GrokFastSettings } from '../activities/cognate/engine/grokfast';
import { makeDecoder, modularMultiplicationData, runModularTask } from '../bench/grokfast';

const settings = (over: Partial<GrokFastSettings>): GrokFastSettings => ({
  mode: 'ema',
  alpha: 0.5,
  lamb: 2,
  window: 2,
  warmup: true,
  ...over,
});
const grads = [
  [1, -2],
  [3, 0],
  [-1, 4],
];

function run(filter: GrokFast): number[][] {
  return grads.map((g) => {
    const input = { w: tf.tensor1d(g) };
    const out = filter.apply(input);
    const values = Array.from(out.w.dataSync());
    input.w.dispose();
    out.w.dispose();
    return values;
  });
}

beforeAll(async () => {
  await initBackend('cpu');
});

describe('GrokFast-EMA', () => {
  test('matches the hand-computed sequence (alpha 0.5, lamb 2)', () => {
    // ema1 = g1 = [1,-2]        -> g1 + 2 ema1 = [3,-6]
    // ema2 = .5 ema1 + .5 g2 = [2,-1]   -> [3,0] + [4,-2] = [7,-2]
    // ema3 = .5 ema2 + .5 g3 = [.5,1.5] -> [-1,4] + [1,3] = [0,7]
    expect(run(new GrokFast(settings({})))).toEqual([
      [3, -6],
      [7, -2],
      [0, 7],
    ]);
  });

  test('mode off and lamb 0 leave gradients unchanged', () => {
    expect(run(new GrokFast(settings({ mode: 'off' })))).toEqual(grads);
    expect(run(new GrokFast(settings({ lamb: 0 })))).toEqual(grads);
  });

  test('state round-trips: a restored filter continues exactly', () => {
    const a = new GrokFast(settings({ alpha: 0.98 }));
    const first = { w: tf.tensor1d([0.25, -0.5]) };
    tf.dispose(a.apply(first));
    const b = new GrokFast(settings({ alpha: 0.98 }));
    b.load(a.state());
    const second = { w: tf.tensor1d([1.5, 2]) };
    expect(Array.from(b.apply(second).w.dataSync())).toEqual(Array.from(a.apply(second).w.dataSync()));
    expect(b.steps).toBe(2);
    expect(() => new GrokFast(settings({ alpha: 0.9 })).load(a.state())).toThrow(/GrokFast settings/);
  });

  test('holds no tensors beyond its state', () => {
    const f = new GrokFast(settings({}));
    const before = tf.memory().numTensors;
    run(f);
    expect(tf.memory().numTensors - before).toBe(1); // the EMA of the one parameter
    f.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });
});

describe('GrokFast-MA', () => {
  test('window 2, lamb 1, warmup: untouched until the window is full, then g + mean(window)', () => {
    // step 1: queue [g1] not full -> g1
    // step 2: mean(g1, g2) = [2,-1]  -> [5,-1]
    // step 3: mean(g2, g3) = [1, 2]  -> [0, 6]
    expect(run(new GrokFast(settings({ mode: 'ma', lamb: 1 })))).toEqual([
      [1, -2],
      [5, -1],
      [0, 6],
    ]);
  });

  test('without warmup the partial window is used from the first step', () => {
    // step 1: mean(g1) = g1 -> 2 g1
    expect(run(new GrokFast(settings({ mode: 'ma', lamb: 1, warmup: false })))[0]).toEqual([2, -4]);
  });
});

describe('modular multiplication task (bench/grokfast.ts)', () => {
  test('the data is the full x·y mod 97 table, split in half without overlap', () => {
    const { train, validation } = modularMultiplicationData(0);
    expect(train.n + validation.n).toBe(97 * 96);
    expect(train.n).toBe(4656);
    const key = (s: typeof train, i: number) => `${s.inputs[i * 4]},${s.inputs[i * 4 + 2]}`;
    const seen = new Set(Array.from({ length: train.n }, (_, i) => key(train, i)));
    for (let i = 0; i < validation.n; i++) expect(seen.has(key(validation, i))).toBe(false);
    for (let i = 0; i < 50; i++) {
      const [x, op, y, eq] = Array.from(train.inputs.subarray(i * 4, i * 4 + 4));
      expect([op, eq]).toEqual([98, 97]);
      expect(train.answers[i]).toBe((x * y) % 97);
    }
  });

  test('a few GrokFast-EMA steps of the local decoder run on the backend under test with finite losses near ln(99) and evaluations on schedule', async () => {
    await useTestBackend();
    const result = await runModularTask({ filter: 'ema', maxSteps: 6, evalEvery: 3, seed: 0, batchSize: 64 });
    expect(result.stepsRun).toBe(6);
    expect(result.history.map((h) => h.step)).toEqual([3, 6]);
    expect(result.parameters).toBeGreaterThan(400_000);
    for (const h of result.history) {
      expect(Number.isFinite(h.trainLoss)).toBe(true);
      expect(h.valAccuracy).toBeGreaterThanOrEqual(0);
    }
    // Starting loss is about ln(99) = 4.6 for a near-uniform prediction.
    expect(result.history[0].trainLoss).toBeGreaterThan(4);
    expect(result.history[0].trainLoss).toBeLessThan(5.2);
  });

  test('CognateModel also plugs into the task as a Decoder (--model cognate)', async () => {
    await useTestBackend();
    const model = makeDecoder('cognate', 0);
    const { logits } = model.forward(
      tf.tensor2d(
        [
          [3, 98, 5, 97],
          [0, 98, 1, 97],
        ],
        [2, 4],
        'int32',
      ),
      { training: false },
    );
    expect(logits.shape).toEqual([2, 4, 99]);
    model.dispose();
  });
});
