// The Cognate model: size of the default config, config errors, gradients (the backend under test against finite
// differences and the cpu backend), ACT, the long-term memory and the export round trip.
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../common/backend';
import { useTestBackend } from './helpers/backend';
import { readSafetensors } from '../common/export/safetensors';
import { embed } from '../activities/cognate/engine/embedding';
import {
  addSame,
  applyRotary,
  attention,
  causalMask,
  crossEntropy,
  linear,
  reshape,
  rmsNorm,
  rotateHalfMatrix,
  select,
  swiglu,
} from '../activities/cognate/engine/layers';
import { exportModel, loadModelFromExport } from '../activities/cognate/engine/export';
import { LongTermMemory, type LtmConfig } from '../activities/cognate/engine/ltm';
import { CognateModel, type ForwardOptions, type ModelConfigInput } from '../activities/cognate/engine/model';
import { microStep } from '../activities/cognate/engine/trainer';
import type { TokenBatch } from '../activities/cognate/engine/data';
import { AdamW } from '../common/optim';

const TINY: ModelConfigInput = {
  dModel: 16,
  nLayers: 3,
  nHeads: 2,
  vocabSize: 23,
  maxSeqLen: 16,
  dFF: 24,
  dMem: 8,
  memCapacity: 16,
  memTopK: 3,
};

/** Deterministic token ids in [0, vocab). */
function tokenBatch(b: number, t: number, vocab: number, salt = 0): { tokens: tf.Tensor2D; targets: tf.Tensor2D } {
  const ids = Array.from({ length: b * (t + 1) }, (_, i) => (i * 7 + salt * 13 + ((i * i) % 5)) % vocab);
  const rows = Array.from({ length: b }, (_, r) => ids.slice(r * (t + 1), (r + 1) * (t + 1)));
  return {
    tokens: tf.tensor2d(
      rows.map((r) => r.slice(0, t)),
      [b, t],
      'int32',
    ),
    targets: tf.tensor2d(
      rows.map((r) => r.slice(1)),
      [b, t],
      'int32',
    ),
  };
}

/** Gradient of the training loss for every parameter, by PyTorch name. */
function gradients(
  model: CognateModel,
  tokens: tf.Tensor2D,
  targets: tf.Tensor2D,
  opts: ForwardOptions = { training: true },
): Map<string, Float32Array> {
  const { value, grads } = tf.variableGrads(() => model.loss(tokens, targets, undefined, opts).loss);
  const out = new Map<string, Float32Array>();
  for (const p of model.params) if (grads[p.variable.name]) out.set(p.name, grads[p.variable.name].dataSync() as Float32Array);
  tf.dispose([value, ...Object.values(grads)]);
  return out;
}

function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]));
  return m;
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/** Fill the model's memory with the memory block's keys/values of a batch (one stream per row), as after a segment. */
function fillMemory(model: CognateModel, tokens: tf.Tensor2D): void {
  tf.tidy(() => {
    const out = model.forward(tokens, { training: false });
    model.writeMemory(out.memoryEntries!);
  });
}

beforeAll(async () => {
  await useTestBackend();
});

describe('config and size', () => {
  test('the default config has 25M ± 5% parameters', () => {
    // Built in a plain node process: jest's sandbox makes global lookups (Math.*) ~100x slower, and 24M seeded draws take 40 s there.
    const script = `
      const { CognateModel } = require('./activities/cognate/engine/model');
      require('./common/backend').initBackend('wasm').then(() => {
        const model = new CognateModel({}, 1);
        const sizes = model.params.reduce((n, p) => n + p.variable.size, 0);
        process.stdout.write(JSON.stringify({ ...model.parameterCount(), sizes, config: model.config }));
        model.dispose();
      });`;
    const out = execFileSync(process.execPath, ['--import', 'tsx', '-e', script], { cwd: path.join(__dirname, '..'), encoding: 'utf8' });
    const { total, breakdown, sizes, config } = JSON.parse(out) as {
      total: number;
      breakdown: Record<string, number>;
      sizes: number;
      config: { dModel: number; nLayers: number };
    };
    console.log(`default Cognate parameters: ${total.toLocaleString('en-US')}`, breakdown);
    expect(config).toMatchObject({ dModel: 216, nLayers: 11 });
    expect(Object.values(breakdown).reduce((a, b) => a + b, 0)).toBe(total);
    expect(sizes).toBe(total);
    expect(Math.abs(total - 25_000_000) / 25_000_000).toBeLessThanOrEqual(0.05);
  });

  test.each([
    [{ dModel: 30, nHeads: 4 }, 'nHeads: must divide dModel'],
    [{ dModel: 12, nHeads: 4 }, 'nHeads: dModel / nHeads (3) must be even'],
    [{ memTopK: 8, memCapacity: 4 }, 'memTopK'],
    [{ nLayers: 0 }, 'nLayers'],
    [{ dFF: -1 }, 'dFF'],
    [{ actThreshold: 1.5 }, 'actThreshold'],
    [{ maxSeqLen: 4 }, 'maxSeqLen'],
    [{ dmodel: 64 }, 'Unrecognized key: "dmodel"'],
  ] as [ModelConfigInput, string][])('invalid config %j names the field', (bad, field) => {
    expect(() => new CognateModel({ ...TINY, ...bad }, 1)).toThrow(field);
  });

  test('the GrokFast benchmark preset builds and trains a step', () => {
    const model = new CognateModel(
      { nLayers: 2, dModel: 128, nHeads: 4, dFF: 512, vocabSize: 99, maxSeqLen: 8, actEnabled: false, memEnabled: false },
      3,
    );
    expect(model.memory).toBeNull();
    expect(model.params.some((p) => p.name.includes('halting') || p.name.includes('memory'))).toBe(false);
    const { tokens, targets } = tokenBatch(32, 4, 99);
    const grads = gradients(model, tokens, targets);
    expect(grads.size).toBe(model.params.length);
    let depth = 0;
    tf.tidy(() => {
      depth = model.forward(tokens, { training: true }).meanDepth;
    });
    expect(depth).toBe(2);
    model.dispose();
  });
});

describe('gradients', () => {
  test('embedding gradient (no UnsortedSegmentSum on wasm) matches finite differences and the cpu backend', async () => {
    const vocab = 7;
    const dim = 3;
    const weightValues = Array.from({ length: vocab * dim }, (_, i) => Math.sin(i + 1));
    const ids = [2, 5, 2, 0, 6, 2];
    const probeValues = Array.from({ length: ids.length * dim }, (_, i) => Math.cos(3 * i));
    const lossOf = (w: tf.Tensor): tf.Scalar =>
      embed(w as tf.Tensor2D, tf.tensor1d(ids, 'int32'))
        .mul(tf.tensor2d(probeValues, [ids.length, dim]))
        .sum();
    const analytic = tf.tidy(() =>
      tf
        .grad(lossOf)(tf.tensor2d(weightValues, [vocab, dim]))
        .dataSync(),
    );

    const eps = 1e-2;
    const numeric = weightValues.map((_, i) =>
      tf.tidy(() => {
        const plus = weightValues.slice();
        const minus = weightValues.slice();
        plus[i] += eps;
        minus[i] -= eps;
        return (lossOf(tf.tensor2d(plus, [vocab, dim])).dataSync()[0] - lossOf(tf.tensor2d(minus, [vocab, dim])).dataSync()[0]) / (2 * eps);
      }),
    );
    expect(maxAbsDiff(analytic, numeric)).toBeLessThan(1e-3);
    expect(maxAbs(analytic.slice(2 * dim, 3 * dim))).toBeGreaterThan(0.5); // id 2 appears three times: its row is used

    await initBackend('cpu');
    const cpu = tf.tidy(() =>
      tf
        .grad((w: tf.Tensor) =>
          tf
            .gather(w, tf.tensor1d(ids, 'int32'))
            .mul(tf.tensor2d(probeValues, [ids.length, dim]))
            .sum(),
        )(tf.tensor2d(weightValues, [vocab, dim]))
        .dataSync(),
    );
    await useTestBackend();
    expect(maxAbsDiff(analytic, cpu)).toBeLessThan(1e-6);
  });

  test('hand-written op gradients match tfjs autodiff of the plain formulas', () => {
    const rand = (shape: number[], seed: number): tf.Tensor => tf.randomNormal(shape, 0, 1, 'float32', seed);
    const rotateHalfRef = (x: tf.Tensor): tf.Tensor => {
      const d = x.shape[x.rank - 1];
      const [a, b] = tf.split(x, [d / 2, d / 2], -1);
      return tf.concat([b.neg(), a], -1);
    };
    const mask = causalMask(5);
    const longMask = causalMask(64);
    const cos = rand([5, 4], 8);
    const sin = rand([5, 4], 9);
    const targets = tf.tensor1d([0, 3, 6, 1, 2], 'int32');
    const cases: [string, tf.Tensor[], (xs: tf.Tensor[]) => tf.Tensor, (xs: tf.Tensor[]) => tf.Tensor][] = [
      [
        'attention',
        [rand([2, 5, 4], 1), rand([2, 5, 4], 2), rand([2, 5, 4], 3)],
        ([q, k, v]) => attention(q as tf.Tensor3D, k as tf.Tensor3D, v as tf.Tensor3D, mask),
        ([q, k, v]) => tf.matMul(tf.softmax(tf.matMul(q, k, false, true).div(2).add(mask)), v),
      ],
      [
        'attention per head (T >= 64)',
        [rand([3, 64, 4], 21), rand([3, 64, 4], 22), rand([3, 64, 4], 23)],
        ([q, k, v]) => attention(q as tf.Tensor3D, k as tf.Tensor3D, v as tf.Tensor3D, longMask),
        ([q, k, v]) => tf.matMul(tf.softmax(tf.matMul(q, k, false, true).div(2).add(longMask)), v),
      ],
      [
        'rmsNorm',
        [rand([3, 5, 6], 4), rand([6], 5)],
        ([x, w]) => rmsNorm(x, w as tf.Tensor1D),
        ([x, w]) => x.div(x.square().mean(-1, true).add(1e-6).sqrt()).mul(w),
      ],
      ['swiglu', [rand([4, 6], 6), rand([4, 6], 7)], ([g, u]) => swiglu(g, u), ([g, u]) => g.mul(g.sigmoid()).mul(u)],
      [
        'linear+bias',
        [rand([2, 3, 6], 10), rand([6, 4], 11), rand([4], 12)],
        ([x, w, b]) => linear(x, w as tf.Tensor2D, b as tf.Tensor1D),
        ([x, w, b]) =>
          tf
            .matMul(x.reshape([6, 6]), w)
            .add(b)
            .reshape([2, 3, 4]),
      ],
      [
        'rotary',
        [rand([5, 3, 4], 13)],
        ([x]) => applyRotary(x, cos as tf.Tensor2D, sin as tf.Tensor2D, rotateHalfMatrix(4)),
        ([x]) => x.mul(cos.expandDims(1)).add(rotateHalfRef(x).mul(sin.expandDims(1))),
      ],
      [
        'select',
        [rand([2, 5, 3], 14), rand([2, 5, 3], 15)],
        ([a, b]) =>
          select(
            tf.tensor2d([
              [1, 0, 1, 1, 0],
              [0, 0, 1, 0, 1],
            ]),
            a,
            b,
          ),
        ([a, b]) => tf.where(tf.tensor3d([1, 0, 1, 1, 0, 0, 0, 1, 0, 1], [2, 5, 1]).cast('bool').tile([1, 1, 3]), a, b),
      ],
      [
        'addSame+reshape',
        [rand([4, 6], 16), rand([4, 6], 17)],
        ([a, b]) => reshape(addSame(a, b), [2, 12]),
        ([a, b]) => a.add(b).reshape([2, 12]),
      ],
      [
        'crossEntropy',
        [rand([5, 7], 18)],
        ([z]) => crossEntropy(z, targets),
        ([z]) => tf.logSumExp(z, -1).sub(z.mul(tf.oneHot(targets, 7).toFloat()).sum(-1)),
      ],
    ];
    // Both op styles (engine/layers.ts opStyle) on the backend under test: each backend runs one by default,
    // the benchmark runs the other on native too.
    const cases2 = (['native', 'wasm'] as const).flatMap((style) =>
      cases.map(([name, inputs, mine, reference]) => {
        const styled = (xs: tf.Tensor[]): tf.Tensor => {
          process.env.FORGE_COGNATE_OPS = style;
          try {
            return mine(xs);
          } finally {
            delete process.env.FORGE_COGNATE_OPS;
          }
        };
        return [`${name} (${style} ops)`, inputs, styled, reference] as (typeof cases)[number];
      }),
    );
    for (const [name, inputs, mine, reference] of cases2) {
      const probe = tf.tidy(() => rand(mine(inputs).shape, 99));
      const gradValues = (f: (xs: tf.Tensor[]) => tf.Tensor): Float32Array[] =>
        tf.tidy(() =>
          tf
            .grads((...xs: tf.Tensor[]) => f(xs).mul(probe).sum())(inputs)
            .map((g) => g.dataSync() as Float32Array),
        );
      const ours = gradValues(mine);
      const theirs = gradValues(reference);
      const values = tf.tidy(() => maxAbsDiff(mine(inputs).dataSync(), reference(inputs).dataSync()));
      expect({ name, values: values < 1e-5 }).toEqual({ name, values: true });
      ours.forEach((g, i) =>
        expect({ name, input: i, close: maxAbsDiff(g, theirs[i]) < 1e-4 * Math.max(1, maxAbs(theirs[i])) }).toEqual({
          name,
          input: i,
          close: true,
        }),
      );
    }
  });

  test('every parameter gradient of a tiny model (ACT + LTM) on the backend under test matches the cpu backend', async () => {
    const { tokens, targets } = tokenBatch(2, 6, 23);
    const testedModel = new CognateModel(TINY, 7);
    fillMemory(testedModel, tokens);
    const bank = testedModel.memory!.state();
    expect(testedModel.memory!.size).toBe(12); // 2 rows x 6 positions
    const onTested = gradients(testedModel, tokens, targets);
    testedModel.dispose();

    await initBackend('cpu');
    const cpuModel = new CognateModel(TINY, 7);
    cpuModel.memory!.load(bank);
    const onCpu = gradients(cpuModel, tokens, targets);
    cpuModel.dispose();
    await useTestBackend();

    expect([...onTested.keys()]).toEqual(cpuModel.params.map((p) => p.name)); // every parameter got a gradient
    let worst = { name: '', relErr: 0 };
    for (const [name, g] of onTested) {
      const scale = Math.max(maxAbs(onCpu.get(name)!), 1e-6);
      const relErr = maxAbsDiff(g, onCpu.get(name)!) / scale;
      if (relErr > worst.relErr) worst = { name, relErr };
      expect(relErr).toBeLessThan(2e-3);
    }
    console.log(
      `${tf.getBackend()} vs cpu: ${onTested.size} parameter gradients, worst relative error ${worst.relErr.toExponential(2)} (${worst.name})`,
    );
    tf.dispose([tokens, targets]);
  });

  test('tiny model gradients on the backend under test match central finite differences', () => {
    const { tokens, targets } = tokenBatch(1, 5, 23, 1);
    const model = new CognateModel({ ...TINY, memEnabled: false }, 11);
    const grads = gradients(model, tokens, targets);
    const lossValue = (): number => tf.tidy(() => model.loss(tokens, targets).loss.dataSync()[0]);
    const checked: string[] = [];
    for (const name of [
      'model.layers.0.self_attn.q_proj.weight',
      'model.layers.1.mlp.down_proj.weight',
      'model.embed_tokens.weight',
      'lm_head.weight',
      'model.layers.0.halting.bias',
    ]) {
      const param = model.params.find((p) => p.name === name)!;
      const g = grads.get(name)!;
      const i = g.reduce((best, v, j) => (Math.abs(v) > Math.abs(g[best]) ? j : best), 0); // the largest entry: best signal over float32 noise
      const values = param.variable.dataSync() as Float32Array;
      const eps = 1e-2;
      const at = (delta: number): number => {
        const changed = values.slice();
        changed[i] += delta;
        param.variable.assign(tf.tensor(changed, param.variable.shape));
        return lossValue();
      };
      const numeric = (at(eps) - at(-eps)) / (2 * eps);
      param.variable.assign(tf.tensor(values, param.variable.shape));
      expect(Math.abs(numeric - g[i]) / Math.max(Math.abs(g[i]), 1e-3)).toBeLessThan(0.05);
      checked.push(`${name}[${i}] analytic ${g[i].toExponential(3)} numeric ${numeric.toExponential(3)}`);
    }
    console.log(checked.join('\n'));
    model.dispose();
  });
});

describe('learning', () => {
  test('a tiny model with ACT and LTM memorises one batch with AdamW', () => {
    const { tokens, targets } = tokenBatch(2, 12, 23, 7);
    const model = new CognateModel(TINY, 12);
    const optimizer = new AdamW(model.params, { beta1: 0.9, beta2: 0.95, epsilon: 1e-8, weightDecay: 0, decoupled: true });
    const losses: number[] = [];
    for (let step = 0; step < 60; step++) {
      let entries: { keys: tf.Tensor4D; values: tf.Tensor4D } | null = null;
      const { value, grads } = tf.variableGrads(() => {
        const out = model.loss(tokens, targets);
        entries = { keys: tf.keep(out.memoryEntries!.keys), values: tf.keep(out.memoryEntries!.values) };
        return out.ce;
      });
      losses.push(value.dataSync()[0]);
      const byName: tf.NamedTensorMap = {};
      for (const p of model.params) if (grads[p.variable.name]) byName[p.name] = grads[p.variable.name];
      optimizer.update(byName, 1e-2);
      const kept = entries!;
      model.memory!.clear(); // the bank holds the previous step's segment, as when a document is read segment by segment
      model.writeMemory(kept);
      tf.dispose([value, kept.keys, kept.values, ...Object.values(grads)]);
    }
    console.log(
      `memorise one batch: cross-entropy ${losses[0].toFixed(3)} -> ${losses[losses.length - 1].toFixed(3)} in 60 steps; LTM`,
      model.memory!.stats(),
    );
    expect(losses[0]).toBeGreaterThan(Math.log(23) - 0.5); // starts near uniform
    expect(losses[losses.length - 1]).toBeLessThan(0.5);
    expect(model.memory!.size).toBeGreaterThan(0);
    optimizer.dispose();
    model.dispose();
  });
});

describe('adaptive computation time', () => {
  /** A model whose halting units produce p spread around 0.5 across positions. */
  function haltingModel(actThreshold: number, memEnabled = false): CognateModel {
    const model = new CognateModel({ ...TINY, nLayers: 4, memEnabled, actThreshold }, 5);
    for (const p of model.params) {
      if (p.name.endsWith('halting.weight')) p.variable.assign(tf.randomNormal(p.variable.shape, 0, 20, 'float32', 99));
      if (p.name.endsWith('halting.bias')) p.variable.assign(tf.zeros(p.variable.shape));
    }
    return model;
  }

  test('a high threshold runs positions deeper than a low one; inference skips blocks and matches training', () => {
    const { tokens } = tokenBatch(2, 8, 23);
    const depth = (threshold: number): { train: number; infer: number; maxLogitDiff: number } => {
      const model = haltingModel(threshold);
      const result = tf.tidy(() => {
        const train = model.forward(tokens, { training: true });
        const infer = model.forward(tokens, { training: false });
        return { train: train.meanDepth, infer: infer.meanDepth, maxLogitDiff: train.logits.sub(infer.logits).abs().max().dataSync()[0] };
      });
      model.dispose();
      return result;
    };
    const low = depth(0.3);
    const high = depth(0.999);
    console.log('mean depth at threshold 0.3', low, 'at 0.999', high);
    expect(high.infer).toBeGreaterThan(low.infer);
    expect(low.infer).toBeLessThan(4);
    expect(low.infer).toBeCloseTo(low.train, 6); // the same halting decisions with and without skipping
    expect(low.maxLogitDiff).toBeLessThan(1e-4); // skipping halted rows gives the same outputs as masking them
    expect(high.maxLogitDiff).toBeLessThan(1e-4);
  });

  test('with the memory read on, skipping halted rows still matches the masked training path', () => {
    const { tokens } = tokenBatch(2, 8, 23, 6);
    const model = haltingModel(0.5, true);
    fillMemory(model, tokens);
    const r = tf.tidy(() => {
      const train = model.forward(tokens, { training: true });
      const infer = model.forward(tokens, { training: false });
      return { train: train.meanDepth, infer: infer.meanDepth, diff: train.logits.sub(infer.logits).abs().max().dataSync()[0] };
    });
    expect(model.memory!.size).toBeGreaterThan(3);
    expect(r.infer).toBeLessThan(4);
    expect(r.infer).toBeCloseTo(r.train, 6);
    expect(r.diff).toBeLessThan(1e-4);
    model.dispose();
  });

  test('training with skipHalted (blocks on running rows only) gives the loss and every gradient of the masked path', () => {
    const { tokens, targets } = tokenBatch(2, 8, 23, 4);
    const model = haltingModel(0.6);
    const depth = tf.tidy(() => model.forward(tokens, { training: true }).meanDepth);
    const lossOf = (skipHalted: boolean) =>
      tf.tidy(() => model.loss(tokens, targets, undefined, { training: true, skipHalted }).loss.dataSync()[0]);
    const masked = gradients(model, tokens, targets, { training: true });
    const skipped = gradients(model, tokens, targets, { training: true, skipHalted: true });
    console.log(`skipHalted: mean depth ${depth} of 4, loss ${lossOf(false)} vs ${lossOf(true)}`);
    expect(depth).toBeGreaterThan(1); // some positions run on, some halt early: both paths are exercised
    expect(depth).toBeLessThan(3.5);
    expect(Math.abs(lossOf(true) - lossOf(false))).toBeLessThan(1e-5);
    expect([...skipped.keys()].sort()).toEqual([...masked.keys()].sort());
    const auto = gradients(model, tokens, targets, { training: true, skipHalted: 'auto' }); // the trainer's setting
    for (const [name, g] of masked) {
      expect(maxAbsDiff(skipped.get(name)!, g)).toBeLessThanOrEqual(1e-5 * Math.max(1e-3, maxAbs(g)) + 1e-7);
      expect(maxAbsDiff(auto.get(name)!, g)).toBeLessThanOrEqual(1e-5 * Math.max(1e-3, maxAbs(g)) + 1e-7);
    }
    model.dispose();
  });

  test('halted positions keep their state unchanged through later blocks', () => {
    const model = haltingModel(0.9);
    const { tokens } = tokenBatch(2, 8, 23, 2);
    let halted = 0;
    let running = 0;
    for (const training of [true, false]) {
      tf.tidy(() => {
        model.forward(tokens, {
          training,
          onBlock: ({ before, after, runningBefore }) => {
            if (!runningBefore) return;
            const flags = runningBefore.dataSync();
            const b = before.dataSync();
            const a = after.dataSync();
            const C = before.shape[2];
            flags.forEach((r, pos) => {
              const changed = maxAbsDiff(a.subarray(pos * C, (pos + 1) * C), b.subarray(pos * C, (pos + 1) * C));
              if (r === 0) {
                halted++;
                expect(changed).toBe(0);
              } else {
                running++;
                expect(changed).toBeGreaterThan(0);
              }
            });
          },
        });
      });
    }
    expect(halted).toBeGreaterThan(0); // the test saw both kinds of position
    expect(running).toBeGreaterThan(0);
    model.dispose();
  });

  test('the ponder cost tau * mean(N + R) is part of the loss and trains the halting units', () => {
    const { tokens, targets } = tokenBatch(2, 8, 23, 3);
    const results = [0.01, 0.5].map((tau) => {
      const model = new CognateModel({ ...TINY, memEnabled: false, ponderCost: tau }, 5);
      const r = tf.tidy(() => {
        const out = model.loss(tokens, targets);
        // the per-position N + R it is the mean of (bench:act --ponder-scored weights it by the loss mask)
        expect(out.ponder?.shape).toEqual([2, 8]);
        expect(out.ponder!.mean().dataSync()[0] * tau).toBeCloseTo(out.ponderCost.dataSync()[0], 6);
        return { loss: out.loss.dataSync()[0], ce: out.ce.dataSync()[0], ponder: out.ponderCost.dataSync()[0], depth: out.meanDepth };
      });
      const haltingGrad = maxAbs(gradients(model, tokens, targets).get('model.layers.0.halting.bias')!);
      model.dispose();
      return { tau, ...r, haltingGrad };
    });
    console.log('ponder', results);
    for (const r of results) {
      expect(r.loss).toBeCloseTo(r.ce + r.ponder, 5);
      // at initialisation p ≈ σ(−ln 5) = 1/6, so every position runs all 3 blocks: N = 3, R ≈ 1 − 2/6
      expect(r.ponder / r.tau).toBeGreaterThan(3);
      expect(r.ponder / r.tau).toBeLessThan(4);
      expect(r.haltingGrad).toBeGreaterThan(0);
    }
    expect(results[1].ce).toBeCloseTo(results[0].ce, 6); // same seed: only the ponder term differs
    expect(results[1].haltingGrad).toBeGreaterThan(results[0].haltingGrad);
  });

  test('haltingDetached: the ponder cost trains only the halting units, with the same halting gradient as without', () => {
    const { tokens, targets } = tokenBatch(2, 8, 23, 4);
    const model = new CognateModel({ ...TINY, memEnabled: false, ponderCost: 0.5 }, 5);
    /** Gradients of the ponder cost alone, by parameter name (absent or all zero: no gradient). */
    const ponderGrads = (haltingDetached: boolean) => {
      const { value, grads } = tf.variableGrads(
        () => model.loss(tokens, targets, undefined, { training: true, haltingDetached }).ponderCost,
      );
      const out = new Map<string, Float32Array>();
      for (const p of model.params) if (grads[p.variable.name]) out.set(p.name, grads[p.variable.name].dataSync() as Float32Array);
      tf.dispose([value, ...Object.values(grads)]);
      return out;
    };
    const attached = ponderGrads(false);
    const detached = ponderGrads(true);
    const blockGrad = (g: Map<string, Float32Array>) =>
      Math.max(0, ...[...g].filter(([name]) => !name.includes('halting.')).map(([, v]) => maxAbs(v)));
    expect(blockGrad(attached)).toBeGreaterThan(1e-6); // the ponder cost reshapes the blocks' features...
    expect(blockGrad(detached)).toBe(0); // ...unless the halting units read through a stop-gradient
    for (const [name, g] of attached) {
      if (!name.includes('halting.')) continue;
      expect(maxAbs(g)).toBeGreaterThan(0);
      expect(maxAbsDiff(g, detached.get(name)!)).toBeLessThan(1e-6);
    }
    model.dispose();
  });

  test("the trainer charges the ponder cost at a batch's real positions only: padding content changes nothing", () => {
    const tau = 0.5;
    const model = new CognateModel({ ...TINY, memEnabled: false, ponderCost: tau }, 5);
    // Large halting weights: p varies from position to position, so does N + R (at initialisation it hardly does).
    for (const p of model.params.filter((q) => q.name.includes('.halting.weight')))
      p.variable.assign(tf.randomNormal(p.variable.shape, 0, 1, 'float32', 3));
    const [B, T] = [2, 8];
    const { tokens, targets } = tokenBatch(B, T, 23, 6);
    // row 1 ends after 3 real tokens, as a long document's last segment does (TrainSampler's segments mode)
    const mask = Float32Array.from({ length: B * T }, (_, i) => (i < T || i % T < 3 ? 1 : 0));
    const batch = (padToken: number): TokenBatch => {
      const inputs = tokens.dataSync() as Int32Array;
      return {
        batchSize: B,
        seqLen: T,
        inputs: inputs.map((v, i) => (mask[i] ? v : padToken)),
        targets: (targets.dataSync() as Int32Array).map((v, i) => (mask[i] ? v : padToken)),
        mask,
      };
    };
    const charged = (padToken: number) => {
      const { grads, scalars } = microStep(
        model,
        batch(padToken),
        model.params.map((p) => p.variable.name),
        { trainHalting: true, ponderScale: 1 },
      );
      tf.dispose(Object.values(grads));
      return scalars.ponderCost;
    };
    // By hand: N + R per position from the forward pass, averaged over the real positions.
    const { perPosition, allPositions } = tf.tidy(() => {
      const out = model.forward(tf.tensor2d(batch(1).inputs, [B, T], 'int32'), { training: true });
      return { perPosition: out.ponder!.dataSync(), allPositions: out.ponderCost.dataSync()[0] };
    });
    const real = [...perPosition].filter((_, i) => mask[i] > 0);
    const expected = (tau * real.reduce((a, b) => a + b, 0)) / real.length;
    console.log('ponder cost over the real positions', expected, 'over every position', allPositions);
    expect(Math.abs(expected - allPositions)).toBeGreaterThan(1e-3); // the two averages differ on this batch
    expect(charged(1)).toBeCloseTo(expected, 5);
    expect(charged(17)).toBeCloseTo(expected, 5); // other padding tokens: the same cost (causal: padding comes last)
    tokens.dispose();
    targets.dispose();
    model.dispose();
  });
});

describe('long-term memory', () => {
  const config: LtmConfig = { nHeads: 2, headDim: 2, capacity: 3, topK: 1, surpriseThreshold: null };
  /** Entries [B, H, T, D] where entry (b, h, t) = [100b + 10h + t, −that]. */
  const entries = (B: number, T: number, offset = 0): Float32Array =>
    Float32Array.from({ length: B * 2 * T * 2 }, (_, i) => {
      const [b, h, t, d] = [Math.floor(i / (4 * T)), Math.floor(i / (2 * T)) % 2, Math.floor(i / 2) % T, i % 2];
      const id = 100 * b + 10 * h + t + offset;
      return d === 0 ? id : -id;
    });
  const slotIds = (m: LongTermMemory, stream: number, head: number): number[] => {
    const s = m.state().streams[stream];
    return Array.from({ length: s.fill }, (_, slot) => s.keys[(head * 3 + slot) * 2]);
  };

  test('one stream per batch row; a full stream overwrites its oldest entry first (FIFO)', () => {
    const memory = new LongTermMemory(config);
    memory.write(entries(2, 2), entries(2, 2), [2, 2, 2, 2]);
    expect(memory.size).toBe(4);
    expect(slotIds(memory, 0, 1)).toEqual([10, 11]); // head 1 of row 0, positions 0 and 1
    expect(slotIds(memory, 1, 0)).toEqual([100, 101]);
    memory.write(entries(1, 2, 5), entries(1, 2, 5), [1, 2, 2, 2]); // row 0 gets positions 5, 6: slot 0 (the oldest) is overwritten
    expect(slotIds(memory, 0, 0)).toEqual([6, 1, 5]);
    expect(memory.stats()).toMatchObject({ fill: 5, streams: 2, writes: 6, evictions: 1, offered: 6 });
    // read tensors: [B, H, S, D] padded to the fullest stream, with −1e9 on the padding
    tf.tidy(() => {
      const t = memory.tensors(2)!;
      expect(t.keys.shape).toEqual([2, 2, 3, 2]);
      expect(Array.from(t.mask!.dataSync())).toEqual([0, 0, 0, 0, 0, -1e9]);
    });
    expect(memory.tensors(3)!.keys.shape).toEqual([3, 2, 3, 2]); // a row without a stream reads nothing (all padding)
    memory.clear();
    expect(memory.size).toBe(0);
    expect(memory.tensors(2)).toBeNull();
    memory.dispose();
  });

  test('the surprise filter (when set) writes only positions whose token was surprising; masked positions are never offered', () => {
    const memory = new LongTermMemory({ ...config, capacity: 8, surpriseThreshold: 1.0 });
    const T = 8;
    const losses = Float32Array.from([2, 2.1, 1.9, 2, 2.05, 1.95, 9, 2]); // loss at t predicts token t + 1: token 7 is the surprise
    expect(memory.write(entries(1, T), entries(1, T), [1, 2, T, 2], losses)).toEqual({ written: 1 });
    expect(slotIds(memory, 0, 0)).toEqual([7]);
    expect(memory.write(entries(1, T), entries(1, T), [1, 2, T, 2], losses, Float32Array.from([1, 1, 1, 1, 1, 1, 1, 0])).written).toBe(0);
    expect(() => memory.write(entries(1, T), entries(1, T), [1, 2, T, 2])).toThrow('surprise');
    expect(() => memory.write(entries(1, T), entries(1, T), [1, 3, T, 2])).toThrow('heads');
    memory.dispose();
  });

  test('state() and load() round-trip the streams, the counters and the loss statistics', () => {
    const memory = new LongTermMemory({ ...config, surpriseThreshold: -1 });
    memory.write(
      entries(2, 4),
      entries(2, 4, 1),
      [2, 2, 4, 2],
      Float32Array.from({ length: 8 }, (_, i) => Math.sin(i)),
    );
    const state = memory.state();
    const copy = new LongTermMemory({ ...config, surpriseThreshold: -1 });
    copy.load(state);
    expect(copy.state()).toEqual(state);
    expect(copy.stats()).toEqual(memory.stats());
    const other = new LongTermMemory({ ...config, capacity: 5 });
    expect(() => other.load(state)).toThrow('capacity');
    [memory, copy, other].forEach((m) => m.dispose());
  });

  test('gradients reach the memory gate, scale and value shift, and the entries when they are on the tape; never the bank', () => {
    const { tokens, targets } = tokenBatch(2, 6, 23, 4);
    const model = new CognateModel({ ...TINY, actEnabled: false }, 8);
    const memoryParams = model.params.filter((p) => /memory_gate|memory_log_scale/.test(p.name));
    expect(memoryParams.map((p) => p.name)).toEqual([
      'model.layers.1.self_attn.memory_gate.weight',
      'model.layers.1.self_attn.memory_gate.bias',
      'model.layers.1.self_attn.memory_log_scale',
    ]);
    const before = gradients(model, tokens, targets);
    expect(memoryParams.every((p) => !before.has(p.name))).toBe(true); // empty bank: the read contributes nothing
    fillMemory(model, tokens);
    const bank = model.memory!.state();
    const after = gradients(model, tokens, targets);
    for (const p of memoryParams) expect(maxAbs(after.get(p.name)!)).toBeGreaterThan(0);
    expect(model.memory!.state().streams).toEqual(bank.streams); // the backward pass did not touch the bank (only the read counter moved)
    expect(maxAbs(before.get('model.layers.1.self_attn.v_prev_proj.weight')!)).toBeGreaterThan(0); // the value shift trains with or without a bank
    // Entries computed in the same step (memory: tensors) pass gradients back into the segment that wrote them.
    const other = tokenBatch(2, 6, 23, 9);
    const kProj = model.params.find((p) => p.name === 'model.layers.1.self_attn.k_proj.weight')!.variable;
    const gradK = (onTape: boolean): Float32Array =>
      tf.tidy(() => {
        const f = (k: tf.Tensor): tf.Scalar => {
          void k;
          const e = model.forward(other.tokens, { training: true, memory: 'none' }).memoryEntries!;
          const keys = onTape ? e.keys : tf.tensor4d(e.keys.dataSync() as Float32Array, e.keys.shape);
          return model.loss(tokens, targets, undefined, { training: true, memory: { keys, values: e.values, mask: null } }).ce;
        };
        const { grads } = tf.variableGrads(() => f(kProj), [kProj]);
        return grads[kProj.name].dataSync() as Float32Array;
      });
    expect(maxAbsDiff(gradK(true), gradK(false))).toBeGreaterThan(0); // the written keys' own path contributes
    model.dispose();
  });
});

describe('export', () => {
  const pythonHasPackages = spawnSync('python3', ['-c', 'import numpy, safetensors, torch'], { encoding: 'utf8' }).status === 0;

  test('safetensors + torch + tfjs + config.json + LTM bank; tfjs reload equals the original; verify_weights.py passes', () => {
    const outDir = fs.mkdtempSync(path.join(os.tmpdir(), 'cognate-export-'));
    const { tokens } = tokenBatch(2, 6, 23, 5);
    const model = new CognateModel(TINY, 21);
    fillMemory(model, tokens);
    const artifact = path.join(outDir, 'cognate_tiny');
    const { config } = exportModel(model, artifact, { config: { name: 'cognate_tiny' }, files: { 'metrics.json': { steps: 0 } } });

    // config.json: Hugging Face keys, and parameter_count equal to what the safetensors file holds
    const onDisk = JSON.parse(fs.readFileSync(path.join(artifact, 'config.json'), 'utf8')) as Record<string, unknown>;
    expect(onDisk).toMatchObject({
      architectures: ['CognateForCausalLM'],
      model_type: 'cognate',
      hidden_size: 16,
      num_hidden_layers: 3,
      name: 'cognate_tiny',
      backend: tf.getBackend(),
    });
    const safetensors = readSafetensors(path.join(artifact, 'model.safetensors')).tensors;
    expect(onDisk.parameter_count).toBe(safetensors.reduce((n, t) => n + t.data.length, 0));
    expect(config.parameter_count).toBe(model.parameterCount().total);
    const qProj = safetensors.find((t) => t.name === 'model.layers.0.self_attn.q_proj.weight')!;
    expect(qProj.shape).toEqual([16, 16]);
    expect(safetensors.find((t) => t.name === 'lm_head.weight')!.shape).toEqual([23, 16]); // [out, in] like nn.Linear
    expect(safetensors.find((t) => t.name === 'model.layers.0.mlp.up_proj.weight')!.shape).toEqual([24, 16]);

    // tfjs reload: bit-identical weights, the same LTM, the same logits
    const reloaded = loadModelFromExport(artifact);
    for (const [i, p] of model.params.entries()) {
      expect(reloaded.params[i].name).toBe(p.name);
      expect(
        Buffer.from((reloaded.params[i].variable.dataSync() as Float32Array).buffer).equals(
          Buffer.from((p.variable.dataSync() as Float32Array).buffer),
        ),
      ).toBe(true);
    }
    expect(reloaded.memory!.state()).toEqual(model.memory!.state());
    const diff = tf.tidy(
      () =>
        model
          .forward(tokens, { training: false })
          .logits.sub(reloaded.forward(tokens, { training: false }).logits)
          .abs()
          .max()
          .dataSync()[0],
    );
    expect(diff).toBe(0);

    // a corrupted file is refused
    const weightsBin = path.join(artifact, 'tfjs', 'weights.bin');
    const bytes = fs.readFileSync(weightsBin);
    bytes[100] ^= 0xff;
    fs.writeFileSync(weightsBin, bytes);
    expect(() => loadModelFromExport(artifact)).toThrow('manifest');
    bytes[100] ^= 0xff;
    fs.writeFileSync(weightsBin, bytes);

    if (pythonHasPackages) {
      const verify = spawnSync(
        'python3',
        [path.join(__dirname, '..', 'scripts', 'verify_weights.py'), artifact, '--skip', 'ltm.safetensors', '--json'],
        { encoding: 'utf8' },
      );
      console.log('verify_weights.py:', verify.stdout.trim(), verify.stderr.trim());
      expect(verify.status).toBe(0);
      const ltm = spawnSync(
        'python3',
        [
          '-c',
          `from safetensors.numpy import load_file; d = load_file(${JSON.stringify(path.join(artifact, 'ltm.safetensors'))}); print(sorted((k, v.shape) for k, v in d.items()))`,
        ],
        { encoding: 'utf8' },
      );
      expect(ltm.stdout).toContain("('keys', (2, 2, 16, 8))"); // [streams, heads, capacity, head_dim]
    } else {
      console.log('python3 with numpy, safetensors and torch not found: verify_weights.py not run');
    }
    model.dispose();
    reloaded.dispose();
    fs.rmSync(outDir, { recursive: true, force: true });
  });
});
