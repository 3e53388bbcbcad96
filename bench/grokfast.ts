// GrokFast reproduction (Lee et al. 2024, github ironjr/grokfast main.py): modular multiplication
// x·y mod 97 with half the table for training. A 2-layer, width-128, 4-head decoder reads [x, op, y, =]
// and predicts x·y mod 97 at the last position. Adam (lr 1e-3, betas 0.9/0.98, L2 weight decay 0.005 as in
// torch.optim.Adam, 10-step linear warmup), batch 512, reshuffled each epoch (ceil(4656/512) = 10 steps).
// The paper's GrokFast-EMA run uses alpha 0.98, lamb 2.0 and reports 95% validation accuracy after ~910
// iterations against ~39,890 for the baseline.
//
// Two decoders (--model):
//   local   (default) a plain pre-norm decoder close to the paper's: token + learned position embeddings,
//           2 blocks of 4-head causal attention and a SiLU MLP (width 512), RMSNorm, built from the shared
//           layers (engine/layers.ts, engine/embedding.ts). Attention uses tfjs' batched matMul.
//   cognate CognateModel (nLayers 2, dModel 128, nHeads 4, dFF 512, ACT and LTM off). Correct, but on wasm
//           its attention loops over the B·H = 2048 tiny [4 x 32] matrices of a batch one 2-D matMul at a
//           time (tuned for the 25M model's few large ones) and a step takes ~28 s here, against ~1 s for the
//           local decoder, so the reproduction within a bench budget uses the local one. (Measured before the
//           batched attention for T < 64: at this config a CognateModel step now takes ~580 ms on wasm and
//           ~185 ms on native against ~370 / ~100 ms for the local decoder, README "Throughput".)
// Other differences from the paper: RMSNorm instead of LayerNorm, no biases, float32 on the wasm backend,
// our own seeded data split.
//
// Initialisation (--init): the reference uses PyTorch's defaults (default here). A first run with GPT-style
// N(0, 0.02) and weight decay 0.005 for both reached 95% validation at step 700 with GrokFast-EMA and 740
// without: no grokking delay to shorten (commit 6b3d9c3). The baseline uses the reference baseline's weight
// decay, 0 (--baseline-weight-decay).
// Measured with the defaults (bench/results/grokfast.json, common/rng's sfc32, native TensorFlow): GrokFast-EMA
// 95% validation at step 1860 (paper: 910); baseline at its 1500-step budget 98.6% train, 6% validation (paper:
// 95% at 39,890). With the previous PRNG (another data split and init): 1520, and 100% / 34%.
//
//   npm run bench:grokfast [-- --model local --init torch --ema-steps 2500 --baseline-steps 1500 --baseline-weight-decay 0 --eval-every 20 --seed 0]
// Last stdout line: {"ema":{"stepsTo95":N,...},"baseline":{"stepsTo95":N|null,"stepsRun":N,...}}
import fs from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { backendInfo, initBackend } from '../common/backend';
import { GrokFast, type GrokFastMode } from '../activities/cognate/engine/grokfast';
import { embed } from '../activities/cognate/engine/embedding';
import { causalMask, crossEntropyPerRow, linear, rmsNorm, silu } from '../activities/cognate/engine/layers';
import { gaussianMatrix } from '../activities/cognate/engine/ltm';
import { CognateModel } from '../activities/cognate/engine/model';
import type { NamedVariable } from '../common/optim';
import { AdamW } from '../common/optim';
import { Rng } from '../common/rng';
import { learningRateAt } from '../activities/cognate/engine/schedule';

export const PRIME = 97;
const EQ_TOKEN = PRIME;
const OP_TOKEN = PRIME + 1;

export interface ModularSplit {
  /** [n, 4] rows of x, op, y, = */
  inputs: Int32Array;
  /** [n] x·y mod p */
  answers: Int32Array;
  n: number;
}

/** Every equation x·y mod p (0 <= x < p, 0 < y < p), split in half by a seeded shuffle. */
export function modularMultiplicationData(seed: number, trainFraction = 0.5): { train: ModularSplit; validation: ModularSplit } {
  const rows: [number, number][] = [];
  for (let x = 0; x < PRIME; x++) for (let y = 1; y < PRIME; y++) rows.push([x, y]);
  new Rng(seed).shuffle(rows);
  const nTrain = Math.floor(rows.length * trainFraction);
  const split = (part: [number, number][]): ModularSplit => ({
    inputs: Int32Array.from(part.flatMap(([x, y]) => [x, OP_TOKEN, y, EQ_TOKEN])),
    answers: Int32Array.from(part.map(([x, y]) => (x * y) % PRIME)),
    n: part.length,
  });
  return { train: split(rows.slice(0, nTrain)), validation: split(rows.slice(nTrain)) };
}

function rowsOf(split: ModularSplit, idx: number[]): { inputs: Int32Array; answers: Int32Array } {
  const inputs = new Int32Array(idx.length * 4);
  const answers = new Int32Array(idx.length);
  idx.forEach((r, i) => {
    inputs.set(split.inputs.subarray(r * 4, r * 4 + 4), i * 4);
    answers[i] = split.answers[r];
  });
  return { inputs, answers };
}

/** What the task needs of a decoder; CognateModel has this shape too. */
export interface Decoder {
  params: NamedVariable[];
  forward(tokens: tf.Tensor2D, opts: { training: boolean }): { logits: tf.Tensor3D };
  dispose(): void;
}

/** A plain pre-norm causal decoder for the [x, op, y, =] task (see the file header). */
export class LocalDecoder implements Decoder {
  readonly params: NamedVariable[] = [];
  private readonly w: Record<string, tf.Variable> = {};
  private readonly mask: tf.Tensor2D;

  /**
   * init "torch": PyTorch's defaults, as in the reference (embeddings N(0, 1), linear weights
   * U(±1/sqrt(fan_in))). init "small": GPT-style N(0, 0.02) everywhere. Grokking depends on it: large
   * initial weight norms memorise first and generalise late (Liu et al. 2023, Omnigrok).
   */
  constructor(
    seed: number,
    readonly init: DecoderInit = 'torch',
    private readonly dims = { vocab: PRIME + 2, seqLen: 4, dModel: 128, nHeads: 4, dFF: 512, nLayers: 2 },
  ) {
    const rng = new Rng(seed);
    const { vocab, seqLen, dModel: C, dFF: F, nLayers } = dims;
    const add = (name: string, shape: number[], kind: 'embedding' | 'linear' | 'ones'): void => {
      const n = shape.reduce((a, b) => a * b, 1);
      let values: tf.Tensor;
      if (kind === 'ones') values = tf.ones(shape);
      else if (init === 'small') values = tf.tensor(gaussianMatrix(rng, n, 0.02), shape);
      else if (kind === 'embedding') values = tf.tensor(gaussianMatrix(rng, n, 1), shape);
      else {
        const bound = 1 / Math.sqrt(shape[0]); // linear weights are [in, out]
        values = tf.tensor(
          Float32Array.from({ length: n }, () => (2 * rng.next() - 1) * bound),
          shape,
        );
      }
      const variable = tf.variable(values, true, `grokfast-local-${seed}-${init}/${name}`);
      values.dispose();
      this.w[name] = variable;
      this.params.push({ name, variable });
    };
    add('tok', [vocab, C], 'embedding');
    add('pos', [seqLen, C], 'embedding');
    for (let l = 0; l < nLayers; l++) {
      add(`${l}.norm1`, [C], 'ones');
      for (const m of ['q', 'k', 'v', 'o']) add(`${l}.${m}`, [C, C], 'linear');
      add(`${l}.norm2`, [C], 'ones');
      add(`${l}.up`, [C, F], 'linear');
      add(`${l}.down`, [F, C], 'linear');
    }
    add('normf', [C], 'ones');
    add('head', [C, vocab], 'linear');
    this.mask = causalMask(seqLen);
  }

  forward(tokens: tf.Tensor2D): { logits: tf.Tensor3D } {
    const [B, T] = tokens.shape;
    const { dModel: C, nHeads: H, nLayers } = this.dims;
    const D = C / H;
    const w = (name: string) => this.w[name] as tf.Tensor;
    let x = tf.add(embed(w('tok') as tf.Tensor2D, tokens), tf.slice(w('pos'), [0, 0], [T, C])); // [B, T, C]
    const heads = (h: tf.Tensor, m: string): tf.Tensor3D =>
      tf.reshape(tf.transpose(tf.reshape(linear(h, w(m) as tf.Tensor2D), [B, T, H, D]), [0, 2, 1, 3]), [B * H, T, D]);
    for (let l = 0; l < nLayers; l++) {
      const h = rmsNorm(x, w(`${l}.norm1`) as tf.Tensor1D);
      const scores = tf.add(tf.mul(tf.matMul(heads(h, `${l}.q`), heads(h, `${l}.k`), false, true), 1 / Math.sqrt(D)), this.mask); // [B·H, T, T]
      const y = tf.matMul(tf.softmax(scores), heads(h, `${l}.v`)); // [B·H, T, D]
      const merged = tf.reshape(tf.transpose(tf.reshape(y, [B, H, T, D]), [0, 2, 1, 3]), [B, T, C]);
      x = tf.add(x, linear(merged, w(`${l}.o`) as tf.Tensor2D));
      const g = rmsNorm(x, w(`${l}.norm2`) as tf.Tensor1D);
      x = tf.add(x, linear(silu(linear(g, w(`${l}.up`) as tf.Tensor2D)), w(`${l}.down`) as tf.Tensor2D));
    }
    const logits = linear(rmsNorm(x, w('normf') as tf.Tensor1D), w('head') as tf.Tensor2D) as tf.Tensor3D;
    return { logits };
  }

  dispose(): void {
    for (const p of this.params) p.variable.dispose();
    this.mask.dispose();
  }
}

export type DecoderKind = 'local' | 'cognate';
export type DecoderInit = 'torch' | 'small';

export function makeDecoder(kind: DecoderKind, seed: number, init: DecoderInit = 'torch'): Decoder {
  if (kind === 'local') return new LocalDecoder(seed, init);
  return new CognateModel(
    { nLayers: 2, dModel: 128, nHeads: 4, dFF: 512, vocabSize: PRIME + 2, maxSeqLen: 8, actEnabled: false, memEnabled: false },
    seed,
  );
}

/** Logits of the answer, read at the last position ("=") of each row: [n, vocab]. */
function answerLogits(model: Decoder, inputs: Int32Array, n: number, training: boolean): tf.Tensor2D {
  const { logits } = model.forward(tf.tensor2d(inputs, [n, 4], 'int32'), { training });
  return tf.reshape<tf.Rank.R2>(tf.slice(logits, [0, 3, 0], [n, 1, -1]), [n, -1]);
}

export interface ModularRunOptions {
  filter: GrokFastMode;
  model?: DecoderKind;
  /** Local decoder initialisation (default torch, as in the reference). */
  init?: DecoderInit;
  maxSteps: number;
  evalEvery: number;
  seed: number;
  alpha?: number;
  lamb?: number;
  weightDecay?: number;
  learningRate?: number;
  batchSize?: number;
  /** Keep training this many steps after first reaching the target accuracy (0: stop at once). */
  stepsAfterTarget?: number;
  targetAccuracy?: number;
  log?: (line: string) => void;
}

export interface EvalPoint {
  step: number;
  trainLoss: number;
  trainAccuracy: number;
  valLoss: number;
  valAccuracy: number;
}

export interface ModularRunResult {
  filter: GrokFastMode;
  model: DecoderKind;
  init: DecoderInit | null;
  parameters: number;
  settings: {
    alpha: number;
    lamb: number;
    weightDecay: number;
    learningRate: number;
    betas: [number, number];
    batchSize: number;
    warmupSteps: number;
    optimizer: string;
  };
  stepsTo95: number | null;
  secondsTo95: number | null;
  stepsRun: number;
  bestValAccuracy: number;
  finalValAccuracy: number;
  finalTrainAccuracy: number;
  msPerStep: number;
  seconds: number;
  history: EvalPoint[];
}

export async function runModularTask(opts: ModularRunOptions): Promise<ModularRunResult> {
  const alpha = opts.alpha ?? 0.98;
  const lamb = opts.lamb ?? 2.0;
  const weightDecay = opts.weightDecay ?? 0.005;
  const learningRate = opts.learningRate ?? 1e-3;
  const batchSize = opts.batchSize ?? 512;
  const target = opts.targetAccuracy ?? 0.95;
  const warmupSteps = 10;
  const log = opts.log ?? (() => undefined);

  const { train, validation } = modularMultiplicationData(opts.seed);
  const model = makeDecoder(opts.model ?? 'local', opts.seed, opts.init ?? 'torch');
  // torch.optim.Adam(weight_decay=wd) as in the reference: L2 added to the (filtered) gradient, on every parameter.
  const optimizer = new AdamW(model.params, { beta1: 0.9, beta2: 0.98, epsilon: 1e-8, weightDecay, decoupled: false, decays: () => true });
  const grokfast = new GrokFast({ mode: opts.filter, alpha, lamb, window: 100, warmup: true });
  const varList = model.params.map((p) => p.variable);
  const parameters = varList.reduce((n, v) => n + v.size, 0);
  const orderRng = new Rng(opts.seed + 1);

  const evaluate = (split: ModularSplit): { loss: number; accuracy: number } => {
    let lossSum = 0;
    let hits = 0;
    const chunk = 1164;
    for (let start = 0; start < split.n; start += chunk) {
      const idx = Array.from({ length: Math.min(chunk, split.n - start) }, (_, i) => start + i);
      const { inputs, answers } = rowsOf(split, idx);
      const [l, h] = tf.tidy(() => {
        const logits = answerLogits(model, inputs, idx.length, false);
        const targets = tf.tensor1d(answers, 'int32');
        return [
          tf.sum(crossEntropyPerRow(logits, targets)).dataSync()[0],
          tf.sum(tf.cast(tf.equal(tf.argMax(logits, -1), targets), 'int32')).dataSync()[0],
        ];
      });
      lossSum += l;
      hits += h;
    }
    return { loss: lossSum / split.n, accuracy: hits / split.n };
  };

  const history: EvalPoint[] = [];
  let stepsTo95: number | null = null;
  let secondsTo95: number | null = null;
  let trainSeconds = 0;
  let step = 0;
  let epochOrder: number[] = [];
  let trainLossSum = 0;
  let trainHits = 0;
  let trainSeen = 0;
  const started = performance.now();
  while (step < opts.maxSteps) {
    if (epochOrder.length === 0) epochOrder = orderRng.shuffle(Array.from({ length: train.n }, (_, i) => i)); // a new epoch
    const idx = epochOrder.splice(0, batchSize); // the last batch of an epoch is the remainder (48 rows), as in the reference
    const { inputs, answers } = rowsOf(train, idx);
    const t0 = performance.now();
    let hits = 0;
    const { value, grads } = tf.variableGrads(() => {
      const logits = answerLogits(model, inputs, idx.length, true);
      const targets = tf.tensor1d(answers, 'int32');
      hits = tf.tidy(() => tf.sum(tf.cast(tf.equal(tf.argMax(logits, -1), targets), 'int32')).dataSync()[0]);
      return tf.mean<tf.Scalar>(crossEntropyPerRow(logits, targets));
    }, varList);
    const byName: tf.NamedTensorMap = {};
    model.params.forEach((p) => {
      if (grads[p.variable.name]) byName[p.name] = grads[p.variable.name];
    });
    const filtered = grokfast.apply(byName);
    optimizer.update(filtered, learningRateAt(step, { learningRate, minLearningRate: learningRate, warmupSteps }, opts.maxSteps));
    const loss = value.dataSync()[0];
    tf.dispose([value, grads, filtered]);
    trainSeconds += (performance.now() - t0) / 1000;
    step++;
    trainLossSum += loss * idx.length;
    trainHits += hits;
    trainSeen += idx.length;

    if (step % opts.evalEvery === 0 || step === opts.maxSteps) {
      const val = evaluate(validation);
      const point: EvalPoint = {
        step,
        trainLoss: trainLossSum / trainSeen,
        trainAccuracy: trainHits / trainSeen,
        valLoss: val.loss,
        valAccuracy: val.accuracy,
      };
      history.push(point);
      trainLossSum = trainHits = trainSeen = 0;
      log(
        `${opts.filter} step ${step}: train loss ${point.trainLoss.toFixed(4)} acc ${point.trainAccuracy.toFixed(3)} | val loss ${val.loss.toFixed(4)} acc ${val.accuracy.toFixed(3)} | ${((1000 * trainSeconds) / step).toFixed(0)} ms/step`,
      );
      if (stepsTo95 === null && val.accuracy >= target) {
        stepsTo95 = step;
        secondsTo95 = (performance.now() - started) / 1000;
      }
      if (stepsTo95 !== null && step >= stepsTo95 + (opts.stepsAfterTarget ?? 0)) break;
    }
    await new Promise((resolve) => setImmediate(resolve));
  }
  const last = history.at(-1);
  const result: ModularRunResult = {
    filter: opts.filter,
    model: opts.model ?? 'local',
    init: (opts.model ?? 'local') === 'local' ? (opts.init ?? 'torch') : null,
    parameters,
    settings: {
      alpha,
      lamb,
      weightDecay,
      learningRate,
      betas: [0.9, 0.98],
      batchSize,
      warmupSteps,
      optimizer: 'Adam (L2 weight decay, as torch.optim.Adam)',
    },
    stepsTo95,
    secondsTo95,
    stepsRun: step,
    bestValAccuracy: Math.max(0, ...history.map((h) => h.valAccuracy)),
    finalValAccuracy: last?.valAccuracy ?? 0,
    finalTrainAccuracy: last?.trainAccuracy ?? 0,
    msPerStep: (1000 * trainSeconds) / Math.max(1, step),
    seconds: (performance.now() - started) / 1000,
    history,
  };
  grokfast.dispose();
  optimizer.dispose();
  model.dispose();
  return result;
}

function argValue(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}

async function main(): Promise<void> {
  const backend = await initBackend();
  const seed = argValue('seed', 0);
  const modelArg = process.argv.indexOf('--model');
  const model = (modelArg >= 0 ? process.argv[modelArg + 1] : 'local') as DecoderKind;
  if (model !== 'local' && model !== 'cognate') throw new Error(`--model must be local or cognate (got ${model})`);
  const initArg = process.argv.indexOf('--init');
  const init = (initArg >= 0 ? process.argv[initArg + 1] : 'torch') as DecoderInit;
  if (init !== 'torch' && init !== 'small') throw new Error(`--init must be torch or small (got ${init})`);
  // The reference's baseline command (python main.py) runs with its default weight decay 0; the EMA run with 0.005.
  const baselineWeightDecay = argValue('baseline-weight-decay', 0);
  const evalEvery = argValue('eval-every', 20);
  const emaSteps = argValue('ema-steps', 2500);
  const baselineSteps = argValue('baseline-steps', 1500);
  const log = (line: string): void => console.error(line);
  const outFile = path.join(__dirname, 'results', 'grokfast.json');
  const write = (body: Record<string, unknown>): void => {
    fs.mkdirSync(path.dirname(outFile), { recursive: true });
    fs.writeFileSync(outFile, JSON.stringify(body, null, 2) + '\n');
  };
  const common = {
    task: `x*y mod ${PRIME}, x in [0,${PRIME}), y in [1,${PRIME}), 50% train (${Math.floor((PRIME * (PRIME - 1)) / 2)} equations)`,
    model:
      model === 'local'
        ? `local pre-norm decoder (${init} init): 2 layers, width 128, 4 heads, SiLU MLP 512, learned positions, vocab 99; loss on the answer position`
        : 'CognateModel nLayers 2, dModel 128, nHeads 4, dFF 512, vocab 99, ACT off, LTM off; loss on the answer position',
    paper: {
      emaStepsTo95: 910,
      baselineStepsTo95: 39890,
      source: 'github.com/ironjr/grokfast README (Grokfast-EMA alpha 0.98, lamb 2.0, weight decay 0.005)',
    },
    backend: backendInfo(),
    seed,
    evalEvery,
  };
  log(
    `GrokFast bench on ${backend.backend} (${backend.device}); EMA up to ${emaSteps} steps, baseline budget ${baselineSteps} steps, eval every ${evalEvery}`,
  );
  // EMA runs until 95% plus 10% more steps (to show it holds), baseline for its whole budget.
  const ema = await runModularTask({ filter: 'ema', model, init, maxSteps: emaSteps, evalEvery, seed, stepsAfterTarget: 100, log });
  write({ ...common, complete: false, ema });
  const baseline = await runModularTask({
    filter: 'off',
    model,
    init,
    weightDecay: baselineWeightDecay,
    maxSteps: baselineSteps,
    evalEvery,
    seed,
    stepsAfterTarget: 0,
    log,
  });
  const budgetNote = `baseline capped at ${baselineSteps} steps (${((baselineSteps * baseline.msPerStep) / 60000).toFixed(1)} min at ${baseline.msPerStep.toFixed(0)} ms/step); the paper's 39,890 would take ~${((39890 * baseline.msPerStep) / 3600000).toFixed(1)} h here`;
  write({ ...common, complete: true, budgetNote, ema, baseline });
  const brief = (r: ModularRunResult) => ({
    stepsTo95: r.stepsTo95,
    stepsRun: r.stepsRun,
    secondsTo95: r.secondsTo95 === null ? null : Math.round(r.secondsTo95),
    bestValAccuracy: r.bestValAccuracy,
    finalValAccuracy: r.finalValAccuracy,
    finalTrainAccuracy: r.finalTrainAccuracy,
    msPerStep: Math.round(r.msPerStep),
  });
  log(budgetNote);
  console.log(
    JSON.stringify({
      ema: brief(ema),
      baseline: { ...brief(baseline), budgetSteps: baselineSteps },
      paper: common.paper,
      backend: backend.backend,
    }),
  );
}

if (require.main === module) {
  main().catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
}
