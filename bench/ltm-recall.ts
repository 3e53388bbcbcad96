// LTM recall benchmark: does the Cognate long-term memory carry facts from one batch to a later one?
//
// Task. Tokens: PAD, FACT, ASK, END, K keys, V values. An episode draws n distinct keys and a random value
// for each (fresh bindings every episode, so they cannot live in the weights). Kinds of sequence:
//   fact     [FACT, k, v]      targets [k, v, END]   LM loss on every position
//   query    [ASK, k]          targets [k, v]        loss (and accuracy) on the answer position only
// The queries of an episode come one optimizer step after its facts: the fact is never in the window.
// Two in-context references (the fact IS in the window; loss on the answer positions):
//   adjacent   [FACT, k, v, ASK, k] -> v                          the loosest bound: a copy
//   in-context [FACT k1 v1 … FACT kn vn ASK q1 a1 … ASK qQ aQ]    all n facts, as many as the bank holds
//
// Training, one episode = two optimizer steps (trainer.ts's recipe: mean gradient over micro-batches,
// global-norm clipping, AdamW, then the LTM write; GrokFast off):
//   1. bank cleared; micro-batches: the episode's fact batch + in-context and adjacent sequences of another
//      episode's bindings (the bank is empty in this step, so nothing is read). After the step the fact
//      batch's hidden states are offered to the write gate (the others are not: they hold other bindings).
//   2. the episode's query batch, which reads the bank.
// The bank is cleared at the start of every episode (load of its own state with fill 0: ltm.ts has no
// clear()), so capacity (64 ≥ 3n = 48 positions offered) never evicts within an episode and old
// episodes' facts never answer new questions.
//
// Write gate. Both default tests keep the facts out, so both are off here and the run measures why:
// - surprise (default z > 1.0) tests the loss of the token a hidden state PREDICTS, i.e. the next token,
//   while the state has only seen tokens up to its own. In [FACT, k, v] the surprising tokens are k and v,
//   so the gate admits the states at FACT and at k, which have not seen v; the state at v (the only one
//   that has seen k and v) predicts END, a certain token, and is never surprising. Threshold −1e9 here.
// - novelty (default 1 − max cosine > 0.1) compares final hidden states, which the LM loss pulls towards
//   the next-token prediction: after training, every v-state (all predicting END) has cosine > 0.9 to
//   the others and is refused. Threshold 0 here.
// The run records the cosines and the share of the v-states' variance explained by the key and by the value
// (stateGeometry, before and after training), and the evaluation re-writes the same facts through the
// default gates (controls.defaultGates) to measure recall from the bank those gates would build.
//
// Memory on vs off: same config except memEnabled, same seeds, same episodes, same steps. ACT is off in
// both (the comparison is about the memory; ACT would add a second moving part). Held-out episodes come
// from another seed. For the memory-on model the evaluation also reports two controls: the bank cleared
// before the questions, and the bank holding another held-out episode's facts.
//
//   npx tsx bench/ltm-recall.ts [--episodes 1500 --eval-episodes 100 --seed 0 --surprise -1e9 --out bench/results/ltm-recall.json]
// Last stdout line: one JSON object with the headline numbers.
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { backendInfo, initBackend } from '../common/backend';
import { writeJsonAtomic } from '../common/export/files';
import { LongTermMemory } from '../activities/cognate/engine/ltm';
import { CognateModel, type ModelConfigInput } from '../activities/cognate/engine/model';
import { clipByGlobalNorm, globalNorm, GradientAccumulator, type AdamW } from '../common/optim';
import { Rng } from '../common/rng';
import { learningRateAt } from '../activities/cognate/engine/schedule';
import { makeOptimizer } from '../activities/cognate/engine/trainer';
import { OptimConfigSchema, type OptimConfig } from '../activities/cognate/config';

// --- task -----------------------------------------------------------------------------------------

export interface RecallTask {
  numKeys: number;
  numValues: number;
  /** Facts per episode (distinct keys); every one is asked once. */
  factsPerEpisode: number;
  /** Questions per in-context sequence (each in-context sequence holds all the episode's facts). */
  inContextQueries: number;
}

export const DEFAULT_TASK: RecallTask = { numKeys: 32, numValues: 16, factsPerEpisode: 16, inContextQueries: 4 };

export const PAD = 0;
export const FACT = 1;
export const ASK = 2;
export const END = 3;
const SPECIALS = 4;
export const keyToken = (key: number): number => SPECIALS + key;
export const valueToken = (task: RecallTask, value: number): number => SPECIALS + task.numKeys + value;
export const vocabSizeOf = (task: RecallTask): number => Math.max(16, SPECIALS + task.numKeys + task.numValues);

export interface Episode {
  /** Key indices, distinct. */
  keys: number[];
  /** Value index of each fact. */
  values: number[];
}

export function makeEpisode(rng: Rng, task: RecallTask): Episode {
  if (task.factsPerEpisode > task.numKeys) throw new Error(`factsPerEpisode ${task.factsPerEpisode} exceeds numKeys ${task.numKeys}`);
  const keys = rng.shuffle([...Array(task.numKeys).keys()]).slice(0, task.factsPerEpisode);
  return { keys, values: keys.map(() => rng.int(task.numValues)) };
}

/** Role of an input position in a fact sequence. */
export const ROLE_FACT = 0;
export const ROLE_KEY = 1;
export const ROLE_VALUE = 2;

export interface SeqBatch {
  inputs: Int32Array; // [B, T]
  targets: Int32Array; // [B, T]
  /** 1 where the loss (and accuracy) counts; null: every position. */
  mask: Float32Array | null;
  batchSize: number;
  seqLen: number;
}

function batchOf(rows: { inputs: number[]; targets: number[]; mask?: number[] }[]): SeqBatch {
  const seqLen = rows[0].inputs.length;
  if (rows.some((r) => r.inputs.length !== seqLen || r.targets.length !== seqLen)) throw new Error('ragged batch');
  const masked = rows.every((r) => r.mask);
  return {
    inputs: Int32Array.from(rows.flatMap((r) => r.inputs)),
    targets: Int32Array.from(rows.flatMap((r) => r.targets)),
    mask: masked ? Float32Array.from(rows.flatMap((r) => r.mask!)) : null,
    batchSize: rows.length,
    seqLen,
  };
}

/** One [FACT, k, v] sequence per fact, in the episode's order; input position t has role t (ROLE_*). */
export function factBatch(ep: Episode, task: RecallTask): SeqBatch {
  return batchOf(ep.keys.map((k, i) => ({ inputs: [FACT, keyToken(k), valueToken(task, ep.values[i])], targets: [keyToken(k), valueToken(task, ep.values[i]), END] })));
}

/** One [ASK, k] question per fact (row i asks fact order[i]); the answer is scored at position 1. */
export function queryBatch(ep: Episode, task: RecallTask, order: number[] = [...ep.keys.keys()]): SeqBatch {
  return batchOf(order.map((i) => ({ inputs: [ASK, keyToken(ep.keys[i])], targets: [keyToken(ep.keys[i]), valueToken(task, ep.values[i])], mask: [0, 1] })));
}

/**
 * n / Q sequences, each with all n facts in a fresh random order and then Q of the questions: every fact is
 * asked once across the batch.
 */
export function inContextBatch(ep: Episode, task: RecallTask, rng: Rng): SeqBatch {
  const n = ep.keys.length;
  const q = task.inContextQueries;
  if (n % q !== 0) throw new Error(`factsPerEpisode ${n} must be a multiple of inContextQueries ${q}`);
  const asked = rng.shuffle([...Array(n).keys()]);
  const rows = [];
  for (let s = 0; s < n / q; s++) {
    const tokens: number[] = [];
    const answerAt: number[] = []; // input positions whose target is an answer
    for (const i of rng.shuffle([...Array(n).keys()])) tokens.push(FACT, keyToken(ep.keys[i]), valueToken(task, ep.values[i]));
    for (const i of asked.slice(s * q, (s + 1) * q)) {
      tokens.push(ASK, keyToken(ep.keys[i]));
      answerAt.push(tokens.length - 1);
      tokens.push(valueToken(task, ep.values[i]));
    }
    const mask = new Array<number>(tokens.length - 1).fill(0);
    for (const t of answerAt) mask[t] = 1;
    rows.push({ inputs: tokens.slice(0, -1), targets: tokens.slice(1), mask });
  }
  return batchOf(rows);
}

/** The fact right before its question: [FACT, k, v, ASK, k] -> v (the loosest bound: a copy from three positions back). */
export function adjacentBatch(ep: Episode, task: RecallTask): SeqBatch {
  return batchOf(
    ep.keys.map((k, i) => {
      const v = valueToken(task, ep.values[i]);
      return { inputs: [FACT, keyToken(k), v, ASK, keyToken(k)], targets: [keyToken(k), v, ASK, keyToken(k), v], mask: [0, 0, 0, 0, 1] };
    }),
  );
}

// --- model, training step, memory handling ------------------------------------------------------

export function recallModelConfig(task: RecallTask, memEnabled: boolean, surpriseThreshold: number): ModelConfigInput {
  return {
    dModel: 64,
    nLayers: 2,
    nHeads: 4,
    dFF: 128,
    vocabSize: vocabSizeOf(task),
    maxSeqLen: 64,
    actEnabled: false,
    dMem: 64, // = dModel: the write projection is the identity, a stored value is the hidden state itself
    memCapacity: 64,
    memTopK: 4,
    memEnabled,
    memSurpriseThreshold: surpriseThreshold,
    memNoveltyThreshold: 0, // see the header: the default 0.1 rejects most fact states
  };
}

export function recallOptimConfig(): OptimConfig {
  return OptimConfigSchema.parse({ learningRate: 2e-3, minLearningRate: 2e-4, warmupSteps: 100, weightDecay: 0.01, maxGradNorm: 1.0, grokfastMode: 'off' });
}

/** Forget every slot, keep the running loss statistics and counters (ltm.ts has no clear()). */
export function clearMemory(memory: LongTermMemory): void {
  memory.load({ ...memory.state(), fill: 0 });
}

function tensorsOf(b: SeqBatch): { tokens: tf.Tensor2D; targets: tf.Tensor2D; mask: tf.Tensor2D | undefined } {
  return {
    tokens: tf.tensor2d(b.inputs, [b.batchSize, b.seqLen], 'int32'),
    targets: tf.tensor2d(b.targets, [b.batchSize, b.seqLen], 'int32'),
    mask: b.mask ? tf.tensor2d(b.mask, [b.batchSize, b.seqLen]) : undefined,
  };
}

export interface OfferedStates {
  batch: SeqBatch;
  hidden: Float32Array; // [B·T, dModel]
  tokenLosses: Float32Array; // [B·T]
  written: number;
}

/**
 * One optimizer step as trainer.ts does it: per micro-batch loss and gradients (variableGrads), the mean
 * gradient, global-norm clipping, AdamW, then the LTM write of the micro-batches listed in `write`.
 * Returns the micro-batches' losses and what was offered to the write gate.
 */
export function trainStep(
  model: CognateModel,
  optimizer: AdamW,
  batches: SeqBatch[],
  opts: { learningRate: number; maxGradNorm: number; write: boolean[] },
): { losses: number[]; gradNorm: number; offered: OfferedStates[] } {
  const varNames = model.params.map((p) => p.variable.name);
  const paramNames = model.params.map((p) => p.name);
  const accumulator = new GradientAccumulator();
  const losses: number[] = [];
  const kept: { batch: SeqBatch; hidden: tf.Tensor3D; tokenLosses: tf.Tensor2D }[] = [];
  batches.forEach((batch, i) => {
    const { tokens, targets, mask } = tensorsOf(batch);
    const { value, grads } = tf.variableGrads(() => {
      const out = model.loss(tokens, targets, mask, { training: true });
      if (model.memory && opts.write[i]) kept.push({ batch, hidden: tf.keep(out.hidden), tokenLosses: tf.keep(out.tokenLosses) });
      return out.loss;
    });
    losses.push(value.dataSync()[0]);
    const byParam: tf.NamedTensorMap = {};
    varNames.forEach((v, j) => {
      if (grads[v]) byParam[paramNames[j]] = grads[v];
    });
    accumulator.add(byParam);
    tf.dispose([value, tokens, targets, ...(mask ? [mask] : []), ...Object.values(grads)]);
  });
  const meanGrads = accumulator.takeMean();
  const gradNorm = globalNorm(meanGrads);
  const clipped = clipByGlobalNorm(meanGrads, opts.maxGradNorm, gradNorm);
  optimizer.update(clipped, opts.learningRate);
  tf.dispose([meanGrads, clipped]);
  const offered: OfferedStates[] = [];
  for (const { batch, hidden, tokenLosses } of kept) {
    const hiddenData = hidden.dataSync() as Float32Array;
    const lossData = tokenLosses.dataSync() as Float32Array;
    const { written } = model.updateMemory(hidden, tokenLosses);
    offered.push({ batch, hidden: hiddenData, tokenLosses: lossData, written });
    tf.dispose([hidden, tokenLosses]);
  }
  return { losses, gradNorm, offered };
}

/** Forward without training, then offer every position to the write gate (the evaluation's fact pass). */
export function writeWithoutTraining(model: CognateModel, batch: SeqBatch, memory: LongTermMemory | null = model.memory): OfferedStates {
  const { tokens, targets, mask } = tensorsOf(batch);
  const out = model.loss(tokens, targets, mask, { training: false });
  const hidden = out.hidden.dataSync() as Float32Array;
  const tokenLosses = out.tokenLosses.dataSync() as Float32Array;
  const written = memory ? memory.write(hidden, tokenLosses).written : 0;
  tf.dispose([tokens, targets, ...(mask ? [mask] : []), out.loss, out.ce, out.ponderCost, out.tokenLosses, out.hidden]);
  return { batch, hidden, tokenLosses, written };
}

/** Greedy accuracy on the masked positions. */
export function maskedAccuracy(model: CognateModel, batch: SeqBatch): { correct: number; total: number } {
  const predicted = tf.tidy(() => {
    const { tokens } = tensorsOf(batch);
    return tf.argMax(model.forward(tokens, { training: false }).logits, -1).dataSync() as Int32Array;
  });
  let correct = 0;
  let total = 0;
  for (let i = 0; i < predicted.length; i++) {
    if (batch.mask && batch.mask[i] === 0) continue;
    total++;
    if (predicted[i] === batch.targets[i]) correct++;
  }
  return { correct, total };
}

/** Which offered positions of a fact batch sit in the bank (value row == hidden row: dMem = dModel, identity write); byRole counts distinct slots per input position. */
export function writtenRoles(memory: LongTermMemory, offered: OfferedStates): { byRole: number[]; slotOf: (number | null)[] } {
  const s = memory.state();
  const d = s.config.dMem;
  if (s.config.dModel !== d) throw new Error('writtenRoles needs dMem = dModel');
  const { batchSize: B, seqLen: T } = offered.batch;
  const byRole = new Array<number>(T).fill(0);
  const slotOf: (number | null)[] = [];
  for (let r = 0; r < B * T; r++) {
    let found: number | null = null;
    for (let slot = 0; slot < s.fill && found === null; slot++) {
      let same = true;
      for (let j = 0; j < d && same; j++) same = s.values[slot * d + j] === offered.hidden[r * d + j];
      if (same) found = slot;
    }
    slotOf.push(found);
  }
  // count slots, not rows: identical states (every [FACT] position) share one slot
  for (let t = 0; t < T; t++) byRole[t] = new Set(slotOf.filter((slot, r) => slot !== null && r % T === t)).size;
  return { byRole, slotOf };
}

/** z-scores the surprise test computed for the offered positions (the running stats after the write are the ones it used). */
export function surpriseZ(memory: LongTermMemory, offered: OfferedStates): number[] {
  const { lossMean, lossStd } = memory.stats();
  return Array.from(offered.tokenLosses, (l) => (l - lossMean) / (lossStd + 1e-6));
}

export interface StateGeometry {
  /** Mean and least pairwise cosine of the final hidden states at the k and at the v position of [FACT, k, v], over all K·V facts. */
  keyState: { meanCos: number; minCos: number; keyShare: number; valueShare: number };
  valueState: { meanCos: number; minCos: number; keyShare: number; valueShare: number };
}

/**
 * What a written fact state can tell a reader: the hidden states of every [FACT, k, v] (K·V sequences, one
 * forward pass), their pairwise cosines (the novelty test's measure) and the share of their variance
 * explained by the key and by the value (between-group sum of squares / total).
 */
export function stateGeometry(model: CognateModel, task: RecallTask): StateGeometry {
  const K = task.numKeys;
  const V = task.numValues;
  const C = model.config.dModel;
  const rows: number[] = [];
  for (let k = 0; k < K; k++) for (let v = 0; v < V; v++) rows.push(FACT, keyToken(k), valueToken(task, v));
  const hidden = tf.tidy(() => model.forward(tf.tensor2d(rows, [K * V, 3], 'int32'), { training: false }).hidden.dataSync() as Float32Array);
  const describe = (role: number) => {
    const X = Array.from({ length: K * V }, (_, i) => hidden.subarray((i * 3 + role) * C, (i * 3 + role + 1) * C));
    const norms = X.map((x) => Math.sqrt(x.reduce((a, b) => a + b * b, 0)) || 1);
    let sum = 0;
    let count = 0;
    let minCos = 1;
    for (let i = 0; i < X.length; i++) {
      for (let j = i + 1; j < X.length; j++) {
        let dot = 0;
        for (let t = 0; t < C; t++) dot += X[i][t] * X[j][t];
        const c = dot / (norms[i] * norms[j]);
        sum += c;
        count++;
        minCos = Math.min(minCos, c);
      }
    }
    const mean = new Float64Array(C);
    for (const x of X) for (let t = 0; t < C; t++) mean[t] += x[t] / X.length;
    let total = 0;
    for (const x of X) for (let t = 0; t < C; t++) total += (x[t] - mean[t]) ** 2;
    const share = (group: (i: number) => number, groups: number): number => {
      const sums = Array.from({ length: groups }, () => new Float64Array(C));
      const counts = new Array<number>(groups).fill(0);
      X.forEach((x, i) => {
        counts[group(i)]++;
        for (let t = 0; t < C; t++) sums[group(i)][t] += x[t];
      });
      let between = 0;
      sums.forEach((s, g) => {
        for (let t = 0; t < C; t++) between += counts[g] * (s[t] / counts[g] - mean[t]) ** 2;
      });
      return total > 0 ? between / total : 0;
    };
    return { meanCos: sum / count, minCos, keyShare: share((i) => Math.floor(i / V), K), valueShare: share((i) => i % V, V) };
  };
  return { keyState: describe(ROLE_KEY), valueState: describe(ROLE_VALUE) };
}

// --- the benchmark --------------------------------------------------------------------------------

export interface RunOptions {
  task: RecallTask;
  memEnabled: boolean;
  episodes: number;
  evalEpisodes: number;
  seed: number;
  surpriseThreshold: number;
  log: (line: string) => void;
}

interface Tally {
  correct: number;
  total: number;
}
const tally = (): Tally => ({ correct: 0, total: 0 });
const add = (t: Tally, r: { correct: number; total: number }): void => {
  t.correct += r.correct;
  t.total += r.total;
};
const rate = (t: Tally): number => (t.total ? t.correct / t.total : NaN);

export interface RunResult {
  memEnabled: boolean;
  parameters: number;
  episodes: number;
  optimizerSteps: number;
  trainSeconds: number;
  evalSeconds: number;
  /** Mean training cross-entropy on the answer positions over windows of episodes. */
  curve: { episode: number; queryCE: number; inContextCE: number; adjacentCE: number }[];
  /** Geometry of the hidden states a fact offers to the bank, before and after training. */
  factStates: { init: StateGeometry; trained: StateGeometry };
  eval: {
    questions: number;
    recall: number;
    inContext: number;
    adjacent: number;
    /** bankCleared: nothing in the bank; otherEpisodeFacts: another held-out episode's facts; defaultGates: the right facts offered through the schema's default gates (surprise 1.0, novelty 0.1). */
    controls?: { bankCleared: number; otherEpisodeFacts: number; defaultGates: number };
  };
  writes?: {
    /** Per training episode, mean fact positions written by role, and the same at evaluation. */
    trainPerEpisode: { fact: number; key: number; value: number; factsPerEpisode: number };
    evalPerEpisode: { fact: number; key: number; value: number };
    evalDefaultGatePerEpisode: { fact: number; key: number; value: number };
    /** Mean surprise z-score of the offered fact positions in training, by role. */
    trainMeanZ: { fact: number; key: number; value: number };
    /** Share of offered v-states the default threshold (z > 1.0) would have written in training. */
    trainValueStatesPassingDefaultGate: number;
    ltmStats: ReturnType<LongTermMemory['stats']>;
  };
}

export async function runRecall(o: RunOptions): Promise<RunResult> {
  const { task } = o;
  const model = new CognateModel(recallModelConfig(task, o.memEnabled, o.surpriseThreshold), o.seed);
  const optimConfig = recallOptimConfig();
  const optimizer = makeOptimizer(model, optimConfig);
  const dataRng = new Rng(o.seed + 1000); // same stream for memory on and off
  const steps = 2 * o.episodes;
  const memory = model.memory;
  const name = o.memEnabled ? 'memory on ' : 'memory off';

  const window = Math.max(1, Math.floor(o.episodes / 20));
  const curve: RunResult['curve'] = [];
  let ceQuery = 0;
  let ceContext = 0;
  let ceAdjacent = 0;
  const geometryAtInit = stateGeometry(model, task);
  const roleSum = [0, 0, 0];
  const zSum = [0, 0, 0];
  let zCount = 0;
  let valuePassDefault = 0;
  let step = 0;
  const started = performance.now();
  for (let e = 0; e < o.episodes; e++) {
    const ep = makeEpisode(dataRng, task);
    const otherEp = makeEpisode(dataRng, task);
    const context = inContextBatch(otherEp, task, dataRng);
    const adjacent = adjacentBatch(otherEp, task);
    const order = dataRng.shuffle([...ep.keys.keys()]);
    if (memory) clearMemory(memory);
    // step 1: facts (+ in-context sequences with other bindings), then write the facts
    const s1 = trainStep(model, optimizer, [factBatch(ep, task), context, adjacent], { learningRate: learningRateAt(step++, optimConfig, steps), maxGradNorm: optimConfig.maxGradNorm, write: [true, false, false] });
    ceContext += s1.losses[1];
    ceAdjacent += s1.losses[2];
    if (memory) {
      const offered = s1.offered[0];
      writtenRoles(memory, offered).byRole.forEach((n, r) => (roleSum[r] += n));
      const z = surpriseZ(memory, offered);
      z.forEach((v, i) => (zSum[i % 3] += v));
      zCount += z.length / 3;
      valuePassDefault += z.filter((v, i) => i % 3 === ROLE_VALUE && v > 1.0).length;
    }
    // step 2: the questions, answered from the bank or not at all
    const s2 = trainStep(model, optimizer, [queryBatch(ep, task, order)], { learningRate: learningRateAt(step++, optimConfig, steps), maxGradNorm: optimConfig.maxGradNorm, write: [false] });
    ceQuery += s2.losses[0];
    if ((e + 1) % window === 0) {
      curve.push({ episode: e + 1, queryCE: ceQuery / window, inContextCE: ceContext / window, adjacentCE: ceAdjacent / window });
      o.log(
        `${name} episode ${e + 1}/${o.episodes}: answer CE query ${(ceQuery / window).toFixed(3)}, in-context ${(ceContext / window).toFixed(3)}, adjacent ${(ceAdjacent / window).toFixed(3)} (${((performance.now() - started) / 1000).toFixed(0)} s)`,
      );
      ceQuery = 0;
      ceContext = 0;
      ceAdjacent = 0;
    }
    await new Promise((resolve) => setImmediate(resolve));
  }
  const trainSeconds = (performance.now() - started) / 1000;

  // --- evaluation on held-out episodes (another seed) ---
  const evalStarted = performance.now();
  const evalRng = new Rng(o.seed + 2000);
  const held = Array.from({ length: o.evalEpisodes }, () => makeEpisode(evalRng, task));
  const recall = tally();
  const inContext = tally();
  const adjacent = tally();
  const cleared = tally();
  const other = tally();
  const defaultGate = tally();
  const evalRoles = [0, 0, 0];
  const defaultRoles = [0, 0, 0];
  for (let e = 0; e < held.length; e++) {
    const ep = held[e];
    const questions = queryBatch(ep, task, evalRng.shuffle([...ep.keys.keys()]));
    if (memory) {
      clearMemory(memory);
      const offered = writeWithoutTraining(model, factBatch(ep, task));
      writtenRoles(memory, offered).byRole.forEach((n, r) => (evalRoles[r] += n));
      add(recall, maskedAccuracy(model, questions));
      // controls: nothing in the bank; another episode's facts in the bank
      clearMemory(memory);
      add(cleared, maskedAccuracy(model, questions));
      writeWithoutTraining(model, factBatch(held[(e + 1) % held.length], task));
      add(other, maskedAccuracy(model, questions));
      // the same facts written through the default surprise threshold (1.0), read by the same model
      clearMemory(memory);
      const gated = new LongTermMemory({ ...memory.config, surpriseThreshold: 1.0, noveltyThreshold: 0.1 }, 0);
      gated.load(memory.state());
      const gatedOffer = writeWithoutTraining(model, factBatch(ep, task), gated);
      memory.load(gated.state());
      gated.dispose();
      writtenRoles(memory, gatedOffer).byRole.forEach((n, r) => (defaultRoles[r] += n));
      add(defaultGate, maskedAccuracy(model, questions));
      clearMemory(memory);
    } else {
      add(recall, maskedAccuracy(model, questions));
    }
    if (memory) clearMemory(memory); // the bounds read nothing from the bank
    add(inContext, maskedAccuracy(model, inContextBatch(ep, task, evalRng)));
    add(adjacent, maskedAccuracy(model, adjacentBatch(ep, task)));
  }
  const evalSeconds = (performance.now() - evalStarted) / 1000;
  const per = (v: number[], n: number) => ({ fact: v[ROLE_FACT] / n, key: v[ROLE_KEY] / n, value: v[ROLE_VALUE] / n });
  const result: RunResult = {
    memEnabled: o.memEnabled,
    parameters: model.parameterCount().total,
    episodes: o.episodes,
    optimizerSteps: step,
    trainSeconds,
    evalSeconds,
    curve,
    factStates: { init: geometryAtInit, trained: stateGeometry(model, task) },
    eval: {
      questions: recall.total,
      recall: rate(recall),
      inContext: rate(inContext),
      adjacent: rate(adjacent),
      ...(memory ? { controls: { bankCleared: rate(cleared), otherEpisodeFacts: rate(other), defaultGates: rate(defaultGate) } } : {}),
    },
    ...(memory
      ? {
          writes: {
            trainPerEpisode: { ...per(roleSum, o.episodes), factsPerEpisode: task.factsPerEpisode },
            evalPerEpisode: per(evalRoles, held.length),
            evalDefaultGatePerEpisode: per(defaultRoles, held.length),
            trainMeanZ: per(zSum, zCount),
            trainValueStatesPassingDefaultGate: valuePassDefault / (o.episodes * task.factsPerEpisode),
            ltmStats: memory.stats(),
          },
        }
      : {}),
  };
  optimizer.dispose();
  model.dispose();
  return result;
}

function argValue(args: string[], name: string): string | undefined {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : undefined;
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const num = (name: string, fallback: number): number => {
    const v = argValue(args, name);
    if (v === undefined) return fallback;
    const n = Number(v);
    if (!Number.isFinite(n)) throw new Error(`--${name} must be a number (got "${v}")`);
    return n;
  };
  const episodes = num('episodes', 1500);
  const evalEpisodes = num('eval-episodes', 100);
  const seed = num('seed', 0);
  const surpriseThreshold = num('surprise', -1e9);
  const outFile = path.resolve(argValue(args, 'out') ?? path.join(__dirname, 'results', 'ltm-recall.json'));
  const task = DEFAULT_TASK;
  const backend = await initBackend();
  const log = (line: string): void => console.log(`[ltm-recall] ${line}`);
  const started = performance.now();
  log(`backend ${backend.backend} (${backend.device}); ${episodes} episodes (${2 * episodes} optimizer steps) per model, ${evalEpisodes} held-out episodes`);
  const on = await runRecall({ task, memEnabled: true, episodes, evalEpisodes, seed, surpriseThreshold, log });
  const off = await runRecall({ task, memEnabled: false, episodes, evalEpisodes, seed, surpriseThreshold, log });
  const seconds = (performance.now() - started) / 1000;
  const chance = 1 / task.numValues;
  const z = 1.96;
  const ci = (p: number, n: number): [number, number] => [Math.max(0, p - z * Math.sqrt((p * (1 - p)) / n)), Math.min(1, p + z * Math.sqrt((p * (1 - p)) / n))];
  const body = {
    task: {
      ...task,
      vocabSize: vocabSizeOf(task),
      fact: '[FACT, k, v] -> targets [k, v, END], LM loss on every position',
      query: '[ASK, k] -> answer v at position 1, asked one optimizer step after the facts (never in the window)',
      adjacent: '[FACT, k, v, ASK, k] -> v: the fact right before its question',
      inContext: `[FACT k v] x ${task.factsPerEpisode} then [ASK q a] x ${task.inContextQueries}; loss on answers`,
      episode: 'step 1: clear bank; fact batch + in-context and adjacent batches (other bindings), write the fact batch; step 2: query batch',
    },
    model: { ...recallModelConfig(task, true, surpriseThreshold), memEnabled: 'true | false', act: 'off in both runs' },
    optimizer: { ...recallOptimConfig(), note: 'trainer.ts recipe: mean gradient over micro-batches, global-norm clip, AdamW, LTM write; cosine schedule over all steps' },
    memoryHandling: 'bank cleared at the start of every episode (load of its own state with fill 0); only the fact batch is offered to the write gate; surprise test off (threshold -1e9), novelty test off (0); controls.defaultGates re-writes the same facts through surprise 1.0 / novelty 0.1',
    seed,
    backend: backendInfo(),
    chance,
    results: {
      memoryOn: { recall: on.eval.recall, recall95: ci(on.eval.recall, on.eval.questions), inContext: on.eval.inContext, adjacent: on.eval.adjacent, ...on.eval.controls },
      memoryOff: { recall: off.eval.recall, recall95: ci(off.eval.recall, off.eval.questions), inContext: off.eval.inContext, adjacent: off.eval.adjacent },
      factStatesMemoryOn: on.factStates,
      questions: on.eval.questions,
    },
    runs: { memoryOn: on, memoryOff: off },
    seconds,
  };
  writeJsonAtomic(outFile, body);
  const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
  log(`held-out recall, ${on.eval.questions} questions over ${evalEpisodes} episodes (chance ${pct(chance)}):`);
  log(`  memory on : ${pct(on.eval.recall)}  (bank cleared ${pct(on.eval.controls!.bankCleared)}, other episode's facts ${pct(on.eval.controls!.otherEpisodeFacts)}, default gates ${pct(on.eval.controls!.defaultGates)}); in context ${pct(on.eval.inContext)}, adjacent ${pct(on.eval.adjacent)}`);
  log(`  memory off: ${pct(off.eval.recall)}; in context ${pct(off.eval.inContext)}, adjacent ${pct(off.eval.adjacent)}`);
  const g = on.factStates;
  log(
    `  v-states (memory on): mean cosine ${g.init.valueState.meanCos.toFixed(3)} at init -> ${g.trained.valueState.meanCos.toFixed(3)} trained; k-states ${g.init.keyState.meanCos.toFixed(3)} -> ${g.trained.keyState.meanCos.toFixed(3)}`,
  );
  log(`  fact states written per episode (train): FACT ${on.writes!.trainPerEpisode.fact.toFixed(2)}, k ${on.writes!.trainPerEpisode.key.toFixed(2)}, v ${on.writes!.trainPerEpisode.value.toFixed(2)} of ${task.factsPerEpisode}; default gate would admit ${pct(on.writes!.trainValueStatesPassingDefaultGate)} of v-states`);
  log(`  ${seconds.toFixed(0)} s total; results in ${path.relative(process.cwd(), outFile)}`);
  console.log(
    JSON.stringify({
      recallMemoryOn: on.eval.recall,
      recallMemoryOff: off.eval.recall,
      inContext: { memoryOn: on.eval.inContext, memoryOff: off.eval.inContext },
      adjacent: { memoryOn: on.eval.adjacent, memoryOff: off.eval.adjacent },
      valueStateMeanCos: { init: g.init.valueState.meanCos, trained: g.trained.valueState.meanCos },
      controls: on.eval.controls,
      chance,
      questions: on.eval.questions,
      episodes,
      optimizerSteps: on.optimizerSteps,
      seconds: Math.round(seconds),
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
