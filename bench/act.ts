// ACT benchmark: does adaptive computation time spend fewer blocks where a position needs fewer, without
// losing accuracy, and does a fixed-depth model of the same average compute do worse?
//
// Task: in-context pointer chasing (difficulty = hops h ∈ 1..maxHops). Every example draws its own random
// cycle σ through `cycle` symbols picked from a vocabulary of `symbols` (one n-cycle, so σ^1(x) … σ^(n−1)(x)
// are all different and fewer hops never give the right answer by accident) and lists it as n pair tokens
// "a→σ(a)" in random order, then one query token "HOP_h·x"; the answer σ^h(x) is scored at the query
// position only:
//
//   [a₁→b₁, a₂→b₂, …, aₙ→bₙ, HOP_h·x]  →  σ^h(x)
//
// A pair is one token (vocabulary symbols² pairs + maxHops·symbols queries) so that no block is needed to
// bind a to b: each hop is one attention lookup from the query position (find the pair whose a is the
// current symbol, read its b), h hops need h blocks in sequence, and the pair positions need none
// (`--format symbol` writes "a b" and "HOP_h x" as two tokens each instead; it learnt more slowly here).
// Nothing about σ can be memorised: training examples are fresh every step, and the evaluation cycles are
// a held-out fifth of all cycles (by a hash of the cycle) that training never draws. The symbol subset per
// example is what makes that matter: with all 5 of 5 symbols in every example (24 cycles) a fixed 5-block
// model memorised the training cycles (loss 0.002) and stayed at chance on held-out ones for h ≥ 2.
//
// Arms, same width, data stream, steps and optimiser:
//   act          nLayers blocks with ACT (per-position halting, ponder cost τ·mean(N + R) over all positions)
//   fixedFull    nLayers blocks, ACT off
//   fixedEqual   round(ACT's mean depth at the answer position) blocks, ACT off: equal average compute
//                where it is scored. Over all positions ACT runs fewer blocks still (the pair positions
//                halt early), so this comparison is the one kinder to the fixed model; both depths are reported.
// Depth is counted at inference, where a halted position skips its remaining blocks.
//
//   npx tsx bench/act.ts [--steps 2500 --seeds 2 --tau 0.05 --layers 5 --symbols 10 --cycle 5 --hops 3 --width 64 --ffn 128
//                         --batch 64 --eval 1024 --ponder-start 0.3 --ponder-ramp 0.3 --format pair --arms act,fixedFull,fixedEqual
//                         --log 0 --out bench/results/act.json]
// Last stdout line: {"accuracyAct":…,"meanDepthAct":…,"accuracyFixedFull":…,"fullDepth":…,"accuracyFixedEqualCompute":…}
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { backendInfo, initBackend, type BackendChoice } from '../common/backend';
import { writeJsonAtomic } from '../common/export/files';
import { CognateModel, type ModelConfigInput } from '../activities/cognate/engine/model';
import { AdamW, clipByGlobalNorm, globalNorm } from '../common/optim';
import { hashSeed, Rng } from '../common/rng';

export interface ChaseTask {
  /** Symbols in the vocabulary. */
  symbols: number;
  /** Symbols per example (the cycle length n ≤ symbols): a fresh subset of the vocabulary every example. */
  cycle: number;
  maxHops: number;
  /** 'pair': one token per pair and per query (n² + maxHops·n tokens); 'symbol': "a b" and "HOP_h x" as two tokens each (n + maxHops tokens). */
  format: 'pair' | 'symbol';
}

export interface ChaseBatch {
  /** [B, n + 1]: n pair tokens, then the query token. */
  inputs: Int32Array;
  /** σ^h(x) per example [B]. */
  answers: Int32Array;
  hops: number[];
  batch: number;
  length: number;
}

export const pairToken = (task: ChaseTask, a: number, b: number): number => a * task.symbols + b;
export const queryToken = (task: ChaseTask, h: number, x: number): number => task.symbols * task.symbols + (h - 1) * task.symbols + x;
export const vocabSize = (task: ChaseTask): number =>
  task.format === 'pair' ? task.symbols * task.symbols + task.maxHops * task.symbols : task.symbols + task.maxHops;
export const sequenceLength = (task: ChaseTask): number => (task.format === 'pair' ? task.cycle + 1 : 2 * task.cycle + 2);

/**
 * A random cycle through `n` symbols of 0..symbols−1, as its members (in random order) and a successor table
 * (−1 off the cycle). The cycle is held out (evaluation only) when the hash of its members in cycle order
 * from its smallest one is 0 mod 5.
 */
function drawCycle(rng: Rng, symbols: number, n: number, heldOut: boolean): { members: number[]; next: number[] } {
  for (;;) {
    const order = rng.permutation(symbols).slice(0, n);
    const start = order.indexOf(Math.min(...order));
    const canonical = [...order.slice(start), ...order.slice(0, start)];
    if ((hashSeed(symbols, ...canonical) % 5 === 0) !== heldOut) continue;
    const next = new Array<number>(symbols).fill(-1);
    for (let i = 0; i < n; i++) next[order[i]] = order[(i + 1) % n];
    return { members: rng.shuffle(order), next };
  }
}

/**
 * `batch` examples from `rng`: training cycles (heldOut false) or held-out ones; hops uniform in
 * 1..maxHops, or cycling through them in order when `stratified` (evaluation: equal counts per h).
 */
export function chaseBatch(task: ChaseTask, rng: Rng, batch: number, heldOut: boolean, stratified = false): ChaseBatch {
  const n = task.cycle;
  const length = sequenceLength(task);
  const inputs = new Int32Array(batch * length);
  const answers = new Int32Array(batch);
  const hops: number[] = [];
  for (let i = 0; i < batch; i++) {
    const { members: order, next } = drawCycle(rng, task.symbols, n, heldOut);
    const h = stratified ? (i % task.maxHops) + 1 : 1 + rng.int(task.maxHops);
    const x = order[rng.int(n)];
    const row = inputs.subarray(i * length, (i + 1) * length);
    if (task.format === 'pair') {
      for (let j = 0; j < n; j++) row[j] = pairToken(task, order[j], next[order[j]]);
      row[n] = queryToken(task, h, x);
    } else {
      for (let j = 0; j < n; j++) row.set([order[j], next[order[j]]], 2 * j);
      row.set([task.symbols + h - 1, x], 2 * n);
    }
    let y = x;
    for (let s = 0; s < h; s++) y = next[y];
    answers[i] = y;
    hops.push(h);
  }
  return { inputs, answers, hops, batch, length };
}

export function actModelConfig(
  task: ChaseTask,
  nLayers: number,
  actEnabled: boolean,
  ponderCost = 0.05,
  dModel = 64,
  dFF = 128,
): ModelConfigInput {
  return {
    dModel,
    nHeads: 4,
    dFF,
    nLayers,
    vocabSize: Math.max(16, vocabSize(task)), // the config schema asks for at least 16; unused ids are never input or target
    maxSeqLen: Math.max(8, sequenceLength(task)),
    actEnabled,
    memEnabled: false,
    ponderCost,
    actThreshold: 0.99,
  };
}

function tensors(b: ChaseBatch): { tokens: tf.Tensor2D; targets: tf.Tensor2D; mask: tf.Tensor2D } {
  const targets = new Int32Array(b.batch * b.length);
  const mask = new Float32Array(b.batch * b.length);
  for (let i = 0; i < b.batch; i++) {
    targets[(i + 1) * b.length - 1] = b.answers[i];
    mask[(i + 1) * b.length - 1] = 1; // only the query position is scored
  }
  return {
    tokens: tf.tensor2d(b.inputs, [b.batch, b.length], 'int32'),
    targets: tf.tensor2d(targets, [b.batch, b.length], 'int32'),
    mask: tf.tensor2d(mask, [b.batch, b.length]),
  };
}

export interface TrainOptions {
  steps: number;
  batch: number;
  learningRate: number;
  seed: number;
  /**
   * The ponder cost counts from 0 until this fraction of the steps, then rises linearly to the full τ over
   * `ponderRamp` of the steps: charged from the start, halting collapses to one block before the blocks
   * have learnt any lookup (measured: depth 1.00 and chance accuracy at step 200), and never recovers.
   */
  ponderStart?: number;
  ponderRamp?: number;
  /** Print the training loss every this many steps (0: never). */
  logEvery?: number;
}

/** Train on a fresh batch of training cycles every step (loss at the query position + the ponder cost). */
export function trainChase(model: CognateModel, task: ChaseTask, o: TrainOptions): { finalLoss: number } {
  const rng = new Rng(hashSeed(o.seed, 1));
  const optimizer = new AdamW(model.params, { beta1: 0.9, beta2: 0.98, epsilon: 1e-8, weightDecay: 0, decoupled: true });
  let finalLoss = NaN;
  for (let step = 0; step < o.steps; step++) {
    const lr = o.learningRate * Math.min(1, (step + 1) / 100);
    const { tokens, targets, mask } = tensors(chaseBatch(task, rng, o.batch, false));
    const ponderScale = Math.min(1, Math.max(0, (step / o.steps - (o.ponderStart ?? 0)) / Math.max(1e-9, o.ponderRamp ?? 0)));
    const { value, grads } = tf.variableGrads(() => {
      const r = model.loss(tokens, targets, mask, { training: true });
      return r.ce.add(r.ponderCost.mul(ponderScale));
    });
    const byName: tf.NamedTensorMap = {};
    for (const p of model.params) if (grads[p.variable.name]) byName[p.name] = grads[p.variable.name];
    const clipped = clipByGlobalNorm(byName, 1, globalNorm(byName));
    optimizer.update(clipped, lr);
    if (step === o.steps - 1 || (o.logEvery && (step + 1) % o.logEvery === 0)) {
      finalLoss = value.dataSync()[0];
      if (o.logEvery) console.error(`  step ${step + 1}: loss ${finalLoss.toFixed(3)}`);
    }
    tf.dispose([value, tokens, targets, mask, ...Object.values(grads), ...Object.values(clipped)]);
  }
  optimizer.dispose();
  return { finalLoss };
}

export interface ChaseEval {
  accuracy: number;
  /** Mean blocks run at the answer (query) position. */
  meanDepth: number;
  /** Mean blocks run over every position (pairs and query). */
  meanDepthAllPositions: number;
  byHops: Record<number, { accuracy: number; meanDepth: number }>;
}

/** Accuracy and blocks run on held-out cycles, overall and per hop count (inference: halted positions skip blocks). */
export function evaluateChase(model: CognateModel, task: ChaseTask, examples: number, seed: number, chunk = 128): ChaseEval {
  const rng = new Rng(hashSeed(seed, 2));
  const hops: number[] = [];
  const correct: boolean[] = [];
  const answerDepth: number[] = [];
  let allDepth = 0;
  for (let done = 0; done < examples; done += chunk) {
    const b = chaseBatch(task, rng, Math.min(chunk, examples - done), true, true);
    const depth = new Float64Array(b.batch * b.length);
    const predicted = tf.tidy(() => {
      const out = model.forward(tf.tensor2d(b.inputs, [b.batch, b.length], 'int32'), {
        training: false,
        onBlock: ({ runningBefore }) => {
          const running = runningBefore ? runningBefore.dataSync() : null;
          for (let i = 0; i < depth.length; i++) depth[i] += running ? running[i] : 1;
        },
      });
      return tf.argMax(out.logits, -1).dataSync();
    });
    for (let i = 0; i < b.batch; i++) {
      const at = (i + 1) * b.length - 1;
      hops.push(b.hops[i]);
      correct.push(predicted[at] === b.answers[i]);
      answerDepth.push(depth[at]);
    }
    allDepth += depth.reduce((a, x) => a + x, 0);
  }
  const byHops: Record<number, { accuracy: number; meanDepth: number }> = {};
  for (let h = 1; h <= task.maxHops; h++) {
    const rows = hops.map((x, i) => (x === h ? i : -1)).filter((i) => i >= 0);
    byHops[h] = {
      accuracy: rows.filter((i) => correct[i]).length / rows.length,
      meanDepth: rows.reduce((a, i) => a + answerDepth[i], 0) / rows.length,
    };
  }
  return {
    accuracy: correct.filter(Boolean).length / examples,
    meanDepth: answerDepth.reduce((a, x) => a + x, 0) / examples,
    meanDepthAllPositions: allDepth / (examples * sequenceLength(task)),
    byHops,
  };
}

type Run = Record<string, unknown>;

/** Means over the seeds (null when an arm was not run). */
export function headlineOf(runs: Run[], fullDepth: number) {
  type Arm = { accuracy: number; meanDepth: number };
  const mean = (key: string, f: (a: Arm) => number): number | null =>
    runs.every((r) => r[key]) ? runs.reduce((a, r) => a + f(r[key] as Arm), 0) / runs.length : null;
  return {
    accuracyAct: mean('act', (a) => a.accuracy),
    meanDepthAct: mean('act', (a) => a.meanDepth),
    accuracyFixedFull: mean('fixedFull', (a) => a.accuracy),
    fullDepth,
    accuracyFixedEqualCompute: mean('fixedEqual', (a) => a.accuracy),
  };
}

/**
 * Seeds or arms run as separate processes (`--seed-start k --seeds 1`, or `--arms act` and `--arms
 * fixedEqual --equal-layers N`, one per core) are joined into one result file: the runs concatenated (arms
 * of the same seed into one run), the headline recomputed; the settings must match.
 */
function merge(files: string[], out: string): void {
  const parts = files.map((f) => JSON.parse(fs.readFileSync(f, 'utf8')) as Record<string, unknown> & { runs: Run[] });
  const settings = (p: Record<string, unknown>) => JSON.stringify([p.task, p.model, p.training, p.evaluation, (p.backend as Run).backend]);
  for (const [i, p] of parts.entries())
    if (settings(p) !== settings(parts[0])) throw new Error(`${files[i]}: settings differ from ${files[0]}`);
  // Arms of one seed run in different processes become one run.
  const bySeed = new Map<unknown, Run>();
  for (const r of parts.flatMap((p) => p.runs)) bySeed.set(r.seed, { ...bySeed.get(r.seed), ...r });
  const runs = [...bySeed.values()];
  const headline = headlineOf(runs, (parts[0].model as { nLayers: number }).nLayers);
  writeJsonAtomic(out, {
    ...parts[0],
    seeds: runs.map((r) => r.seed),
    runs,
    headline,
    conditions: {
      ...(parts[0].conditions as Run),
      processes: parts.map((p, i) => ({ file: path.basename(files[i]), ...(p.conditions as Run), seconds: p.seconds })),
    },
    seconds: Math.max(...parts.map((p) => p.seconds as number)),
    merged: `${files.length} processes run side by side, joined by --merge: ${files.map((f) => path.basename(f)).join(', ')}`,
  });
  console.error(`wrote ${out}`);
  console.log(JSON.stringify(headline));
}

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1] : fallback;
}

async function main(): Promise<void> {
  const mergeFiles = arg('merge', '');
  if (mergeFiles) return merge(mergeFiles.split(','), arg('out', path.join(__dirname, 'results', 'act.json')));
  const steps = Number(arg('steps', '2500'));
  const seeds = Number(arg('seeds', '2'));
  const seedStart = Number(arg('seed-start', '0'));
  const nLayers = Number(arg('layers', '5'));
  const symbols = Number(arg('symbols', '10'));
  const cycle = Number(arg('cycle', '5'));
  const maxHops = Number(arg('hops', '3'));
  const ponderCost = Number(arg('tau', '0.05'));
  const dModel = Number(arg('width', '64'));
  const dFF = Number(arg('ffn', '128'));
  const batch = Number(arg('batch', '64'));
  const evalExamples = Number(arg('eval', '1024'));
  const learningRate = Number(arg('lr', '3e-3'));
  const ponderStart = Number(arg('ponder-start', '0.3'));
  const ponderRamp = Number(arg('ponder-ramp', '0.3'));
  const logEvery = Number(arg('log', '0'));
  const arms = arg('arms', 'act,fixedFull,fixedEqual').split(',');
  const out = arg('out', path.join(__dirname, 'results', 'act.json'));
  for (const [name, v] of Object.entries({ steps, seeds, nLayers, symbols, maxHops, dModel, dFF, batch, evalExamples })) {
    if (!Number.isInteger(v) || v < 1) throw new Error(`--${name} must be a positive integer (got ${v})`);
  }
  if (cycle > symbols) throw new Error(`--cycle must be at most --symbols (${symbols}), got ${cycle}`);
  if (maxHops >= cycle) throw new Error(`--hops must be below --cycle (${cycle}): σ^h(x) is then never x or an earlier hop`);
  const format = arg('format', 'pair');
  if (format !== 'pair' && format !== 'symbol') throw new Error(`--format must be pair or symbol (got ${format})`);
  const task: ChaseTask = { symbols, cycle, maxHops, format };
  const backend = await initBackend((process.env.FORGE_TF_BACKEND as BackendChoice | undefined) || 'tensorflow');
  const started = performance.now();
  const load = [os.loadavg()[0]];
  const runs: Record<string, unknown>[] = [];
  for (let seed = seedStart; seed < seedStart + seeds; seed++) {
    const arm = (layers: number, act: boolean) => {
      const model = new CognateModel(actModelConfig(task, layers, act, ponderCost, dModel, dFF), 10 + seed);
      const t0 = performance.now();
      const { finalLoss } = trainChase(model, task, { steps, batch, learningRate, seed: 100 + seed, logEvery, ponderStart, ponderRamp });
      const trainSeconds = (performance.now() - t0) / 1000;
      const r = { layers, act, finalTrainLoss: finalLoss, ...evaluateChase(model, task, evalExamples, 200 + seed), trainSeconds };
      model.dispose();
      const byH = Object.entries(r.byHops)
        .map(([h, v]) => `h${h} ${v.accuracy.toFixed(3)}@${v.meanDepth.toFixed(2)}`)
        .join(' ');
      console.error(
        `seed ${seed} ${act ? 'ACT' : 'fixed'} ${layers} layers: accuracy ${r.accuracy.toFixed(3)}, depth at answer ${r.meanDepth.toFixed(2)}, ` +
          `all positions ${r.meanDepthAllPositions.toFixed(2)}; ${byH}; loss ${finalLoss.toFixed(3)}, ${trainSeconds.toFixed(0)} s`,
      );
      load.push(os.loadavg()[0]);
      return r;
    };
    const run: Record<string, unknown> = { seed };
    const act = arms.includes('act') ? arm(nLayers, true) : null;
    if (act) run.act = act;
    if (arms.includes('fixedFull')) run.fixedFull = arm(nLayers, false);
    // --equal-layers: the fixedEqual arm at a depth taken from an ACT run made in another process (then merged)
    const equalLayers = act ? Math.max(1, Math.round(act.meanDepth)) : Number(arg('equal-layers', '0'));
    if (arms.includes('fixedEqual') && equalLayers >= 1) run.fixedEqual = arm(equalLayers, false);
    runs.push(run);
  }
  const headline = headlineOf(runs, nLayers);
  writeJsonAtomic(out, {
    task: {
      symbols,
      cycle,
      maxHops,
      format,
      sequence:
        format === 'pair'
          ? `${cycle} pair tokens a->sigma(a) in random order, then the query token HOP_h.x; answer sigma^h(x) scored at the query position`
          : `${cycle} pairs "a b" in random order, then "HOP_h x"; answer sigma^h(x) scored at x`,
      sigma: `a fresh random cycle through ${cycle} of the ${symbols} symbols per example; evaluation cycles are a held-out fifth (hash of the cycle) never drawn in training`,
      hops: 'uniform in 1..maxHops in training; equal counts per h in evaluation',
      chance: 1 / (cycle - 1),
    },
    model: { ...actModelConfig(task, nLayers, true, ponderCost, dModel, dFF), note: 'ACT arm with nLayers blocks; fixed arms ACT off' },
    training: {
      steps,
      ponder: `tau 0 until ${ponderStart} of the steps, then linearly to ${ponderCost} over ${ponderRamp} of the steps (ACT arm)`,
      batch,
      learningRate,
      data: 'a fresh batch of training cycles every step',
      optimizer: 'AdamW (0.9, 0.98), no weight decay, clip 1, 100 warmup steps',
    },
    evaluation: { examples: evalExamples, perHops: evalExamples / maxHops, mode: 'inference (halted positions skip the remaining blocks)' },
    depthMeasures: {
      meanDepth: 'blocks run at the answer (query) position, the scored one; headline meanDepthAct and the fixedEqual depth use this',
      meanDepthAllPositions: 'blocks run averaged over every position of the sequence (pairs and query)',
    },
    seeds: runs.map((r) => r.seed),
    runs,
    headline,
    backend,
    backendInfo: backendInfo(),
    conditions: { cpus: os.cpus().length, loadAverage1m: load, note: '2 CPU cores shared with other engineers: timings are noisy' },
    seconds: (performance.now() - started) / 1000,
  });
  console.error(`wrote ${out}`);
  console.log(JSON.stringify(headline));
}

if (require.main === module) {
  main().catch((e) => {
    console.error(e);
    process.exit(1);
  });
}
