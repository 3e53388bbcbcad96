// ACT benchmark: does adaptive computation time spend fewer blocks where a position needs fewer, without
// losing accuracy?
//
// Task (difficulty = hops h ∈ 1..maxHops): a fixed random permutation π of `symbols` symbols lives in the
// weights; the sequence [HOP_h, x] asks for π^h(x) at position 1 (scored there only). Applying π once is
// a lookup a block's feed-forward can learn; h applications compose h lookups, so a position with more
// hops has more to compute. All symbols·maxHops questions are both trained and scored (the question is how
// much compute the model spends per question, not generalisation).
//
// Arms, same width, data, steps and optimiser:
//   act          nLayers blocks with ACT (per-position halting, ponder cost τ·mean(N + R))
//   fixedFull    nLayers blocks, ACT off
//   fixedEqual   round(mean depth of act at the answer positions) blocks, ACT off: equal average compute
// Depth is counted per answer position at inference (halted positions skip the remaining blocks).
//
//   npx tsx bench/act.ts [--steps 600 --seeds 1 --tau 0.1 --layers 6 --symbols 48 --hops 4 --width 64 --ffn 64 --out bench/results/act.json]
// Last stdout line: {"accuracyAct":…,"meanDepthAct":…,"accuracyFixedFull":…,"fullDepth":…,"accuracyFixedEqualCompute":…}
import os from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { backendInfo, initBackend } from '../common/backend';
import { writeJsonAtomic } from '../common/export/files';
import { CognateModel, type ModelConfigInput } from '../activities/cognate/engine/model';
import { AdamW, clipByGlobalNorm, globalNorm } from '../common/optim';
import { Rng } from '../common/rng';

export interface HopTask {
  symbols: number;
  maxHops: number;
  permutation: number[];
}

export function makeTask(symbols: number, maxHops: number, seed: number): HopTask {
  return { symbols, maxHops, permutation: new Rng(seed).shuffle([...Array(symbols).keys()]) };
}

const hopToken = (task: HopTask, h: number): number => task.symbols + h - 1;

/** Every question once: inputs [N, 2], targets [N, 2] (position 1 scored), hops [N]. */
export function allQuestions(task: HopTask): { inputs: Int32Array; targets: Int32Array; hops: number[] } {
  const n = task.symbols * task.maxHops;
  const inputs = new Int32Array(2 * n);
  const targets = new Int32Array(2 * n);
  const hops: number[] = [];
  let i = 0;
  for (let h = 1; h <= task.maxHops; h++) {
    for (let x = 0; x < task.symbols; x++) {
      let y = x;
      for (let s = 0; s < h; s++) y = task.permutation[y];
      inputs.set([hopToken(task, h), x], 2 * i);
      targets.set([x, y], 2 * i);
      hops.push(h);
      i++;
    }
  }
  return { inputs, targets, hops };
}

export function actModelConfig(
  task: HopTask,
  nLayers: number,
  actEnabled: boolean,
  ponderCost = 0.01,
  dModel = 64,
  dFF = 64,
): ModelConfigInput {
  return {
    dModel,
    nHeads: 4,
    dFF,
    nLayers,
    vocabSize: task.symbols + task.maxHops,
    maxSeqLen: 8,
    actEnabled,
    memEnabled: false,
    ponderCost,
    actThreshold: 0.99,
  };
}

/** Train on the whole question set (loss at position 1 + the ponder cost). */
export function trainHops(model: CognateModel, task: HopTask, steps: number, learningRate: number): void {
  const q = allQuestions(task);
  const n = q.hops.length;
  const tokens = tf.tensor2d(q.inputs, [n, 2], 'int32');
  const targets = tf.tensor2d(q.targets, [n, 2], 'int32');
  const mask = tf.tensor2d(
    Array.from({ length: n }, () => [0, 1]),
    [n, 2],
  );
  const optimizer = new AdamW(model.params, { beta1: 0.9, beta2: 0.98, epsilon: 1e-8, weightDecay: 0, decoupled: true });
  for (let step = 0; step < steps; step++) {
    const lr = learningRate * Math.min(1, (step + 1) / 50);
    const { value, grads } = tf.variableGrads(() => model.loss(tokens, targets, mask, { training: true }).loss);
    const byName: tf.NamedTensorMap = {};
    for (const p of model.params) if (grads[p.variable.name]) byName[p.name] = grads[p.variable.name];
    const clipped = clipByGlobalNorm(byName, 1, globalNorm(byName));
    optimizer.update(clipped, lr);
    tf.dispose([value, ...Object.values(grads), ...Object.values(clipped)]);
  }
  optimizer.dispose();
  tf.dispose([tokens, targets, mask]);
}

/** Accuracy and blocks run at the answer position, overall and per hop count (inference: halted positions skip blocks). */
export function evaluateHops(
  model: CognateModel,
  task: HopTask,
): { accuracy: number; meanDepth: number; byHops: Record<number, { accuracy: number; meanDepth: number }> } {
  const q = allQuestions(task);
  const n = q.hops.length;
  const depth = new Float64Array(n);
  const predicted = tf.tidy(() => {
    const out = model.forward(tf.tensor2d(q.inputs, [n, 2], 'int32'), {
      training: false,
      onBlock: ({ runningBefore }) => {
        const running = runningBefore ? runningBefore.dataSync() : null;
        for (let i = 0; i < n; i++) depth[i] += running ? running[2 * i + 1] : 1;
      },
    });
    return tf.argMax(out.logits, -1).dataSync();
  });
  const byHops: Record<number, { accuracy: number; meanDepth: number }> = {};
  let correct = 0;
  for (let h = 1; h <= task.maxHops; h++) {
    const rows = q.hops.map((x, i) => (x === h ? i : -1)).filter((i) => i >= 0);
    const hits = rows.filter((i) => predicted[2 * i + 1] === q.targets[2 * i + 1]).length;
    correct += hits;
    byHops[h] = { accuracy: hits / rows.length, meanDepth: rows.reduce((a, i) => a + depth[i], 0) / rows.length };
  }
  return { accuracy: correct / n, meanDepth: depth.reduce((a, b) => a + b, 0) / n, byHops };
}

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1] : fallback;
}

async function main(): Promise<void> {
  const steps = Number(arg('steps', '600'));
  const seeds = Number(arg('seeds', '1'));
  const nLayers = Number(arg('layers', '6'));
  const symbols = Number(arg('symbols', '48'));
  const maxHops = Number(arg('hops', '4'));
  const ponderCost = Number(arg('tau', '0.1'));
  const dModel = Number(arg('width', '64'));
  const dFF = Number(arg('ffn', '64'));
  const learningRate = 3e-3;
  const out = arg('out', path.join(__dirname, 'results', 'act.json'));
  const backend = await initBackend((process.env.FORGE_TF_BACKEND as 'wasm' | undefined) ?? 'wasm');
  const started = performance.now();
  const load = [os.loadavg()[0]];
  const runs: Record<string, unknown>[] = [];
  for (let seed = 0; seed < seeds; seed++) {
    const task = makeTask(symbols, maxHops, 50 + seed);
    const arm = (layers: number, act: boolean) => {
      const model = new CognateModel(actModelConfig(task, layers, act, ponderCost, dModel, dFF), 10 + seed);
      const t0 = performance.now();
      trainHops(model, task, steps, learningRate);
      const r = { layers, act, ...evaluateHops(model, task), trainSeconds: (performance.now() - t0) / 1000 };
      model.dispose();
      console.error(
        `seed ${seed} ${act ? 'ACT' : 'fixed'} ${layers} layers: accuracy ${r.accuracy.toFixed(3)} mean depth ${r.meanDepth.toFixed(2)}`,
        JSON.stringify(r.byHops),
      );
      load.push(os.loadavg()[0]);
      return r;
    };
    const act = arm(nLayers, true);
    const fixedFull = arm(nLayers, false);
    const equalLayers = Math.max(1, Math.round(act.meanDepth));
    const fixedEqual = arm(equalLayers, false);
    runs.push({ seed, act, fixedFull, fixedEqual });
  }
  const mean = (f: (r: Record<string, unknown>) => number): number => runs.reduce((a, r) => a + f(r), 0) / runs.length;
  type Arm = { accuracy: number; meanDepth: number; layers: number };
  const headline = {
    accuracyAct: mean((r) => (r.act as Arm).accuracy),
    meanDepthAct: mean((r) => (r.act as Arm).meanDepth),
    accuracyFixedFull: mean((r) => (r.fixedFull as Arm).accuracy),
    fullDepth: nLayers,
    accuracyFixedEqualCompute: mean((r) => (r.fixedEqual as Arm).accuracy),
  };
  writeJsonAtomic(out, {
    task: {
      symbols,
      maxHops,
      question:
        '[HOP_h, x] -> pi^h(x) at position 1, pi a fixed random permutation per seed; all symbols x hops questions trained and scored',
    },
    model: {
      ...actModelConfig(makeTask(symbols, maxHops, 0), nLayers, true, ponderCost, dModel, dFF),
      note: 'ACT arm with nLayers blocks; fixed arms ACT off',
    },
    training: {
      steps,
      learningRate,
      batch: 'all questions every step',
      optimizer: 'AdamW (0.9, 0.98), no weight decay, clip 1, 50 warmup steps',
    },
    seeds,
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
