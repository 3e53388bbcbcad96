// LTM recall benchmark: does the Cognate long-term memory carry facts across segments that cannot see
// each other, and does it do nothing when it should not?
//
// Task. Tokens: PAD, FACT, ASK, numKeys keys, numValues values. A sequence is read in segments of fixed
// length; attention never crosses a segment boundary, so the only path from one segment to a later one
// is the memory. An episode draws K distinct keys with a random value each (fresh every episode: the
// bindings cannot live in the weights), then reads:
//   fact segment         [FACT, v1, k1, …, vK, kK]   (value before key: see makeEpisodes)
//   G distractor segments the same layout with K other keys (disjoint from the episode's) and random values
//   query segment        [ASK, kπ1, vπ1, …, kπK, vπK]   scored where the next token is a value (K answers)
// and, as the control that the model can answer at all, one same-segment sequence
//   same-segment         [FACT, v1, k1, …, vK, kK, ASK, kπ1, vπ1, …]   (facts and questions in one segment)
// Chance is 1 / numValues.
//
// Memory (model.ts / ltm.ts): the memory block's pre-rotary attention keys and values of every position of
// a segment are written after it (one bank stream per batch row = per episode), and the query segment's
// memory block attends over the top-k entries of its head. Arms:
//   memoryOn     a model with memEnabled trained as below, evaluated through the product path:
//                bank cleared per episode, model.writeMemory after each segment, forward(memory: 'bank')
//   bankCleared  the same model and episodes, bank cleared just before the query segment (must fall to chance)
//   switchedOff  the memoryOn model (same weights) evaluated with its memory switched off: never written or
//                read (forward(memory: 'none'))
//   memoryOff    the same architecture (memEnabled, so the same parameters) trained and evaluated with the
//                memory switched off, on the same episodes, for offStepsFactor × the steps (it learns the
//                same-segment task more slowly without the memory's training signal; more steps make it
//                the stronger baseline). With memEnabled = false the model would also lose the memory
//                block's value shift.
//
// Training (per step, a batch of episodes with one K and one G drawn per step): the fact segment runs on
// the gradient tape; the distractor segments' entries are computed off the tape (constants; the memory
// block's entries do not depend on what it reads); the query segment reads [fact entries ∪ distractor
// entries], so the gradient reaches the gate, the queries, and, through the fact entries, the keys and
// values that were written. The same-segment batch runs in the same step with memory 'none'. Loss: mean
// cross-entropy on the answer positions of both; AdamW with global-norm clipping, cosine schedule.
//
//   npx tsx bench/ltm-recall.ts [--steps 120 --seeds 2 --eval-episodes 32 --out bench/results/ltm-recall.json]
// Last stdout line: one JSON object with the headline numbers (G = 4, K = HEADLINE_FACTS).
import os from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { backendInfo, initBackend } from '../common/backend';
import { writeJsonAtomic } from '../common/export/files';
import { CognateModel, type MemoryEntries, type ModelConfigInput } from '../activities/cognate/engine/model';
import { LongTermMemory, type MemoryTensors } from '../activities/cognate/engine/ltm';
import { AdamW, clipByGlobalNorm, globalNorm } from '../common/optim';
import { Rng } from '../common/rng';

// --- task -----------------------------------------------------------------------------------------

export interface RecallTask {
  numKeys: number;
  numValues: number;
}

export const DEFAULT_TASK: RecallTask = { numKeys: 64, numValues: 16 };
export const PAD = 0;
export const FACT = 1;
export const ASK = 2;
export const keyToken = (k: number): number => 3 + k;
export const valueToken = (task: RecallTask, v: number): number => 3 + task.numKeys + v;
export const vocabOf = (task: RecallTask): number => 3 + task.numKeys + task.numValues;
export const HEADLINE_FACTS = 8;
export const HEADLINE_DISTRACTORS = 4;

/** One batch of episodes, every segment as tokens [B, L] (L = 2K + 1) and the query targets. */
export interface EpisodeBatch {
  batchSize: number;
  facts: number;
  segLen: number;
  factSegment: Int32Array;
  distractors: Int32Array[];
  querySegment: Int32Array;
  /** Next-token targets of the query segment and 1 where the target is an answer. */
  queryTargets: Int32Array;
  queryMask: Float32Array;
  /** Facts then questions in one segment [B, 2L], with its targets and answer mask. */
  sameSegment: Int32Array;
  sameTargets: Int32Array;
  sameMask: Float32Array;
}

/** `n` distinct draws from [0, range). */
function distinct(rng: Rng, range: number, n: number, exclude: Set<number> = new Set()): number[] {
  const pool = [...Array(range).keys()].filter((x) => !exclude.has(x));
  return rng.shuffle(pool).slice(0, n);
}

export function makeEpisodes(rng: Rng, task: RecallTask, batchSize: number, facts: number, distractorSegments: number): EpisodeBatch {
  if (facts * (distractorSegments > 0 ? 2 : 1) > task.numKeys)
    throw new Error(`makeEpisodes: ${facts} facts and distractors need ${2 * facts} keys, the task has ${task.numKeys}`);
  const L = 2 * facts + 1;
  const factSegment = new Int32Array(batchSize * L);
  const distractors = Array.from({ length: distractorSegments }, () => new Int32Array(batchSize * L));
  const querySegment = new Int32Array(batchSize * L);
  const queryTargets = new Int32Array(batchSize * L);
  const queryMask = new Float32Array(batchSize * L);
  const sameSegment = new Int32Array(batchSize * 2 * L);
  const sameTargets = new Int32Array(batchSize * 2 * L);
  const sameMask = new Float32Array(batchSize * 2 * L);
  // Facts are written value first: the entry at a key's position then holds the key (its own token) and,
  // through the block below, the value just before it, so a query by key matches on the key's own content.
  const pairs = (keys: number[], values: number[], start: number): number[] =>
    start === FACT
      ? [start, ...keys.flatMap((k, i) => [valueToken(task, values[i]), keyToken(k)])]
      : [start, ...keys.flatMap((k, i) => [keyToken(k), valueToken(task, values[i])])];
  for (let b = 0; b < batchSize; b++) {
    const keys = distinct(rng, task.numKeys, facts);
    const values = keys.map(() => rng.int(task.numValues));
    const order = rng.shuffle([...Array(facts).keys()]);
    const factRow = pairs(keys, values, FACT);
    const queryRow = pairs(
      order.map((i) => keys[i]),
      order.map((i) => values[i]),
      ASK,
    );
    factSegment.set(factRow, b * L);
    querySegment.set(queryRow, b * L);
    for (let t = 0; t < L; t++) {
      queryTargets[b * L + t] = t + 1 < L ? queryRow[t + 1] : PAD;
      queryMask[b * L + t] = t % 2 === 1 ? 1 : 0; // position of a key: the next token is its value
    }
    const taken = new Set(keys);
    for (const segment of distractors) {
      const other = distinct(rng, task.numKeys, facts, taken);
      segment.set(
        pairs(
          other,
          other.map(() => rng.int(task.numValues)),
          FACT,
        ),
        b * L,
      );
    }
    const sameRow = [...factRow, ...queryRow];
    sameSegment.set(sameRow, b * 2 * L);
    for (let t = 0; t < 2 * L; t++) {
      sameTargets[b * 2 * L + t] = t + 1 < 2 * L ? sameRow[t + 1] : PAD;
      sameMask[b * 2 * L + t] = t > L && (t - L) % 2 === 1 ? 1 : 0;
    }
  }
  return {
    batchSize,
    facts,
    segLen: L,
    factSegment,
    distractors,
    querySegment,
    queryTargets,
    queryMask,
    sameSegment,
    sameTargets,
    sameMask,
  };
}

// --- model and training ---------------------------------------------------------------------------

export interface RecallModelSize {
  dModel: number;
  nLayers: number;
  nHeads: number;
  dFF: number;
}

/** The stated bench size: 2 blocks (a previous-token block, then the memory block), width 64. */
export const BENCH_SIZE: RecallModelSize = { dModel: 64, nLayers: 2, nHeads: 4, dFF: 128 };

export function recallModelConfig(task: RecallTask, memEnabled: boolean, size: RecallModelSize = BENCH_SIZE): ModelConfigInput {
  return {
    ...size,
    vocabSize: vocabOf(task),
    maxSeqLen: 80,
    actEnabled: false, // the comparison is about the memory
    memEnabled,
    memCapacity: 1024, // (16 distractors + 1) x 33 positions of K = 16 still fit: nothing is evicted
    memTopK: 4,
    memLayer: -1, // the middle block: 1 of 2
  };
}

export interface TrainOptions {
  steps: number;
  batchSize: number;
  learningRate: number;
  /** K drawn per step from these. */
  factChoices: number[];
  /** G drawn per step from 0..maxDistractors. */
  maxDistractors: number;
  seed: number;
  /** false: the memory is switched off (never read); default: on when the model has one. */
  useMemory?: boolean;
  log?: (line: string) => void;
}

export const DEFAULT_TRAIN: Omit<TrainOptions, 'seed'> = {
  steps: 120,
  batchSize: 16,
  learningRate: 3e-3,
  factChoices: [4, 8, 16],
  maxDistractors: 4,
};

const int2 = (data: Int32Array, b: number, t: number): tf.Tensor2D => tf.tensor2d(data, [b, t], 'int32');

/** Masked mean cross-entropy of a forward's logits (inside the tape). */
function maskedCe(logits: tf.Tensor3D, targets: Int32Array, mask: Float32Array): tf.Scalar {
  const [B, T, V] = logits.shape;
  const lp = tf.logSoftmax(logits.reshape([B * T, V]));
  const picked = lp.mul(tf.oneHot(tf.tensor1d(targets, 'int32'), V).toFloat()).sum(-1);
  const m = tf.tensor1d(mask);
  return picked.mul(m).sum().neg().div<tf.Scalar>(m.sum().maximum(1));
}

function concatEntries(parts: MemoryEntries[]): MemoryTensors {
  return {
    keys: tf.concat<tf.Tensor4D>(
      parts.map((p) => p.keys),
      2,
    ),
    values: tf.concat<tf.Tensor4D>(
      parts.map((p) => p.values),
      2,
    ),
    mask: null,
  };
}

/** Train a recall model (memory on or off) on fresh episodes; returns the per-step loss curve (every 50 steps). */
export function trainRecall(model: CognateModel, task: RecallTask, opts: TrainOptions): { step: number; loss: number }[] {
  const rng = new Rng(opts.seed);
  const optimizer = new AdamW(model.params, { beta1: 0.9, beta2: 0.98, epsilon: 1e-8, weightDecay: 0.01, decoupled: true });
  const curve: { step: number; loss: number }[] = [];
  const memoryOn = model.memory !== null && opts.useMemory !== false;
  for (let step = 0; step < opts.steps; step++) {
    const K = opts.factChoices[rng.int(opts.factChoices.length)];
    const G = rng.int(opts.maxDistractors + 1);
    const ep = makeEpisodes(rng, task, opts.batchSize, K, G);
    const B = ep.batchSize;
    const L = ep.segLen;
    // Distractor entries: constants (off the tape).
    const distractorEntries: MemoryEntries[] = memoryOn
      ? ep.distractors.map((seg) =>
          tf.tidy(() => {
            const e = model.forward(int2(seg, B, L), { training: true, memory: 'none' }).memoryEntries!;
            return { keys: e.keys, values: e.values };
          }),
        )
      : [];
    const progress = Math.min(1, step / Math.max(1, opts.steps));
    const lr = opts.learningRate * (step < 100 ? (step + 1) / 100 : 0.1 + 0.9 * 0.5 * (1 + Math.cos(Math.PI * progress)));
    const { value, grads } = tf.variableGrads(() => {
      let queryLoss: tf.Scalar;
      if (memoryOn) {
        const facts = model.forward(int2(ep.factSegment, B, L), { training: true, memory: 'none' }).memoryEntries!;
        const bank = concatEntries([facts, ...distractorEntries]);
        queryLoss = maskedCe(
          model.forward(int2(ep.querySegment, B, L), { training: true, memory: bank }).logits,
          ep.queryTargets,
          ep.queryMask,
        );
      } else {
        queryLoss = maskedCe(
          model.forward(int2(ep.querySegment, B, L), { training: true, memory: 'none' }).logits,
          ep.queryTargets,
          ep.queryMask,
        );
      }
      const sameLoss = maskedCe(
        model.forward(int2(ep.sameSegment, B, 2 * L), { training: true, memory: 'none' }).logits,
        ep.sameTargets,
        ep.sameMask,
      );
      return queryLoss.add<tf.Scalar>(sameLoss);
    });
    const byName: tf.NamedTensorMap = {};
    for (const p of model.params) if (grads[p.variable.name]) byName[p.name] = grads[p.variable.name];
    const clipped = clipByGlobalNorm(byName, 1, globalNorm(byName));
    optimizer.update(clipped, lr);
    const loss = value.dataSync()[0];
    tf.dispose([value, ...Object.values(grads), ...Object.values(clipped), ...distractorEntries.flatMap((e) => [e.keys, e.values])]);
    if (step % 50 === 0 || step === opts.steps - 1) {
      curve.push({ step, loss });
      opts.log?.(`  step ${step} K=${K} G=${G} loss ${loss.toFixed(3)}`);
    }
  }
  optimizer.dispose();
  return curve;
}

// --- evaluation through the product path ----------------------------------------------------------

function maskedAccuracy(logits: tf.Tensor3D, targets: Int32Array, mask: Float32Array): { correct: number; total: number } {
  const predicted = tf.tidy(() => tf.argMax(logits, -1).dataSync());
  let correct = 0;
  let total = 0;
  for (let i = 0; i < mask.length; i++) {
    if (!mask[i]) continue;
    total++;
    if (predicted[i] === targets[i]) correct++;
  }
  return { correct, total };
}

export interface RecallScores {
  /** Query segment after the fact and G distractor segments were written to the bank. */
  recall: number;
  /** The same, bank cleared before the query segment (memory models only). */
  bankCleared: number | null;
  /** Facts and questions in one segment, empty bank. */
  sameSegment: number;
  answers: number;
  /** Share of offered positions the write filter let through (1 without the surprise filter). */
  writtenShare: number;
}

/** Evaluate on `episodes` fresh episodes (batches of `batchSize`), writing through model.writeMemory and reading model.memory. */
export function evaluateRecall(
  model: CognateModel,
  task: RecallTask,
  facts: number,
  distractorSegments: number,
  episodes: number,
  seed: number,
  batchSize = 32,
  useMemory = true,
  /** Evaluate with the surprise write filter at this threshold (a bank of its own, written with the segments' token losses). */
  surpriseThreshold: number | null = null,
): RecallScores {
  const filtered =
    useMemory && model.memory && surpriseThreshold !== null ? new LongTermMemory({ ...model.memory.config, surpriseThreshold }) : null;
  const memory = useMemory ? (filtered ?? model.memory) : null;
  const readOf = (B: number): 'bank' | 'none' | MemoryTensors => (!memory ? 'none' : filtered ? (filtered.tensors(B) ?? 'none') : 'bank');
  let offered = 0;
  let written = 0;
  const rng = new Rng(seed);
  const acc = { recall: { correct: 0, total: 0 }, cleared: { correct: 0, total: 0 }, same: { correct: 0, total: 0 } };
  const add = (into: { correct: number; total: number }, r: { correct: number; total: number }): void => {
    into.correct += r.correct;
    into.total += r.total;
  };
  for (let done = 0; done < episodes; done += batchSize) {
    const B = Math.min(batchSize, episodes - done);
    const ep = makeEpisodes(rng, task, B, facts, distractorSegments);
    const L = ep.segLen;
    memory?.clear();
    for (const seg of [ep.factSegment, ...ep.distractors]) {
      tf.tidy(() => {
        const out = model.forward(int2(seg, B, L), { training: false, memory: readOf(B) });
        if (!memory || !out.memoryEntries) return;
        if (filtered) {
          const targets = Int32Array.from(seg, (_, i) => (i % L < L - 1 ? seg[i + 1] : PAD)); // next token within the segment
          const losses = model.loss(int2(seg, B, L), int2(targets, B, L), undefined, { training: false, memory: 'none' }).tokenLosses;
          const e = out.memoryEntries;
          const r = filtered.write(
            e.keys.dataSync() as Float32Array,
            e.values.dataSync() as Float32Array,
            e.keys.shape,
            losses.dataSync() as Float32Array,
          );
          written += r.written;
        } else {
          written += model.writeMemory(out.memoryEntries).written;
        }
        offered += B * L;
      });
    }
    tf.tidy(() =>
      add(
        acc.recall,
        maskedAccuracy(
          model.forward(int2(ep.querySegment, B, L), { training: false, memory: readOf(B) }).logits,
          ep.queryTargets,
          ep.queryMask,
        ),
      ),
    );
    memory?.clear();
    if (memory)
      tf.tidy(() =>
        add(
          acc.cleared,
          maskedAccuracy(model.forward(int2(ep.querySegment, B, L), { training: false }).logits, ep.queryTargets, ep.queryMask),
        ),
      );
    tf.tidy(() =>
      add(
        acc.same,
        maskedAccuracy(
          model.forward(int2(ep.sameSegment, B, 2 * L), { training: false, memory: readOf(B) }).logits,
          ep.sameTargets,
          ep.sameMask,
        ),
      ),
    );
  }
  memory?.clear();
  filtered?.dispose();
  return {
    recall: acc.recall.correct / acc.recall.total,
    bankCleared: memory ? acc.cleared.correct / acc.cleared.total : null,
    sameSegment: acc.same.correct / acc.same.total,
    answers: acc.recall.total,
    writtenShare: offered > 0 ? written / offered : 1,
  };
}

// --- the benchmark --------------------------------------------------------------------------------

const DISTRACTOR_SWEEP = [0, 1, 2, 4, 8, 16];
const FACT_SWEEP = [4, 8, 16];
/** Surprise write-filter thresholds evaluated on the memory-on model at the headline setting (the default is off). */
const SURPRISE_SWEEP = [0, 1];

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1] : fallback;
}

const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;

async function main(): Promise<void> {
  const steps = Number(arg('steps', String(DEFAULT_TRAIN.steps)));
  const seeds = Number(arg('seeds', '2'));
  const evalEpisodes = Number(arg('eval-episodes', '32'));
  const offStepsFactor = Number(arg('off-steps-factor', '3'));
  const out = arg('out', path.join(__dirname, 'results', 'ltm-recall.json'));
  const backend = await initBackend((process.env.FORGE_TF_BACKEND as 'wasm' | undefined) ?? 'wasm');
  const task = DEFAULT_TASK;
  const chance = 1 / task.numValues;
  const started = performance.now();
  const load = [os.loadavg()[0]];
  type ArmResult = {
    seed: number;
    trainSeconds: number;
    curve: { step: number; loss: number }[];
    byDistractors: Record<string, RecallScores>;
    byFacts: Record<string, RecallScores>;
  };
  const arms: Record<'memoryOn' | 'switchedOff' | 'memoryOff', ArmResult[]> = { memoryOn: [], switchedOff: [], memoryOff: [] };
  const surprise: Record<string, RecallScores[]> = {};
  const sweep = (model: CognateModel, seed: number, useMemory: boolean) => {
    const byDistractors: Record<string, RecallScores> = {};
    for (const G of DISTRACTOR_SWEEP)
      byDistractors[G] = evaluateRecall(model, task, HEADLINE_FACTS, G, evalEpisodes, 5000 + seed, 32, useMemory);
    const byFacts: Record<string, RecallScores> = {};
    for (const K of FACT_SWEEP) byFacts[K] = evaluateRecall(model, task, K, HEADLINE_DISTRACTORS, evalEpisodes, 6000 + seed, 32, useMemory);
    return { byDistractors, byFacts };
  };
  const show = (label: string, r: { byDistractors: Record<string, RecallScores>; byFacts: Record<string, RecallScores> }): void =>
    console.error(
      `${label}: G sweep`,
      JSON.stringify(Object.fromEntries(Object.entries(r.byDistractors).map(([g, s]) => [g, +s.recall.toFixed(3)]))),
      'K sweep',
      JSON.stringify(Object.fromEntries(Object.entries(r.byFacts).map(([k, s]) => [k, +s.recall.toFixed(3)]))),
      `same-segment ${r.byDistractors[HEADLINE_DISTRACTORS].sameSegment.toFixed(3)} cleared ${r.byDistractors[HEADLINE_DISTRACTORS].bankCleared}`,
    );
  for (let seed = 0; seed < seeds; seed++) {
    for (const arm of ['memoryOn', 'memoryOff'] as const) {
      const useMemory = arm === 'memoryOn';
      const armSteps = useMemory ? steps : steps * offStepsFactor;
      const model = new CognateModel(recallModelConfig(task, true), 100 + seed);
      const t0 = performance.now();
      console.error(`seed ${seed} ${arm}: training ${armSteps} steps`);
      const curve = trainRecall(model, task, {
        ...DEFAULT_TRAIN,
        steps: armSteps,
        seed: 1000 + seed,
        useMemory,
        log: (l) => console.error(l),
      });
      const trainSeconds = (performance.now() - t0) / 1000;
      const result = sweep(model, seed, useMemory);
      show(`seed ${seed} ${arm}`, result);
      arms[arm].push({ seed, trainSeconds, curve, ...result });
      if (useMemory) {
        for (const z of SURPRISE_SWEEP) {
          const r = evaluateRecall(model, task, HEADLINE_FACTS, HEADLINE_DISTRACTORS, evalEpisodes, 5000 + seed, 32, true, z);
          console.error(
            `seed ${seed} surprise filter z=${z}: recall ${r.recall.toFixed(3)}, written ${(100 * r.writtenShare).toFixed(1)}% of positions`,
          );
          (surprise[z] ??= []).push(r);
        }
        const off = sweep(model, seed, false);
        show(`seed ${seed} switchedOff`, off);
        arms.switchedOff.push({ seed, trainSeconds, curve: [], ...off });
      }
      load.push(os.loadavg()[0]);
      model.dispose();
    }
  }
  const avg = (arm: ArmResult[], pick: (r: ArmResult) => number | null): number => mean(arm.map((r) => pick(r) ?? NaN));
  const table = (arm: ArmResult[], key: 'byDistractors' | 'byFacts', values: number[]) =>
    Object.fromEntries(
      values.map((x) => [
        x,
        {
          recall: avg(arm, (r) => r[key][x].recall),
          bankCleared: arm[0][key][x].bankCleared === null ? null : avg(arm, (r) => r[key][x].bankCleared),
          sameSegment: avg(arm, (r) => r[key][x].sameSegment),
          perSeed: arm.map((r) => r[key][x].recall),
        },
      ]),
    );
  const headline = {
    distractorSegments: HEADLINE_DISTRACTORS,
    facts: HEADLINE_FACTS,
    recallMemoryOn: avg(arms.memoryOn, (r) => r.byDistractors[HEADLINE_DISTRACTORS].recall),
    recallMemoryOff: avg(arms.memoryOff, (r) => r.byDistractors[HEADLINE_DISTRACTORS].recall),
    recallBankCleared: avg(arms.memoryOn, (r) => r.byDistractors[HEADLINE_DISTRACTORS].bankCleared),
    chance,
  };
  const controls = {
    recallSwitchedOff: avg(arms.switchedOff, (r) => r.byDistractors[HEADLINE_DISTRACTORS].recall),
    sameSegmentMemoryOn: avg(arms.memoryOn, (r) => r.byDistractors[HEADLINE_DISTRACTORS].sameSegment),
    sameSegmentMemoryOff: avg(arms.memoryOff, (r) => r.byDistractors[HEADLINE_DISTRACTORS].sameSegment),
  };
  const results = {
    task: {
      ...task,
      vocabSize: vocabOf(task),
      layout:
        'fact segment [FACT k1 v1 … kK vK]; G distractor segments (same layout, K other keys, random values); query segment [ASK kπ1 vπ1 …] scored at the K answers; same-segment control [facts, questions] in one segment',
      segments: 'no attention across segments: each segment is a separate forward; only the LTM carries information between them',
      chance,
    },
    model: {
      ...recallModelConfig(task, true),
      memoryOff: 'same model, memory never written or read',
      size: 'stated bench size (issue 10 allows a smaller size): 2 blocks, dModel 64, 4 heads; memory block 1',
    },
    training: {
      ...DEFAULT_TRAIN,
      steps,
      memoryOffSteps: steps * offStepsFactor,
      note: 'per step: K from factChoices, G from 0..maxDistractors; loss = query answers (reading fact entries on the tape + distractor entries off it) + same-segment answers; AdamW (β 0.9/0.98, wd 0.01), clip 1, 100 warmup steps then cosine to 0.1x',
    },
    evaluation: {
      episodesPerPoint: evalEpisodes,
      path: 'product path: bank cleared per episode, model.writeMemory after each segment, forward reads model.memory',
      distractorSweep: DISTRACTOR_SWEEP,
      factSweep: FACT_SWEEP,
      factsInDistractorSweep: HEADLINE_FACTS,
      distractorsInFactSweep: HEADLINE_DISTRACTORS,
    },
    seeds,
    backend,
    conditions: { cpus: os.cpus().length, loadAverage1m: load, note: '2 CPU cores shared with other engineers: timings are noisy' },
    seconds: (performance.now() - started) / 1000,
    headline,
    controls,
    surpriseFilter: {
      note: 'memory-on model (trained without the filter), headline setting G = 4, K = 8; a position is written when the loss of predicting its token exceeded the running mean by z std',
      byThreshold: Object.fromEntries(
        Object.entries(surprise).map(([z, rs]) => [
          z,
          {
            recall: mean(rs.map((r) => r.recall)),
            writtenShare: mean(rs.map((r) => r.writtenShare)),
            sameSegment: mean(rs.map((r) => r.sameSegment)),
          },
        ]),
      ),
    },
    targets: {
      memoryOnAtG4: '>= 0.90',
      memoryOffAtG4: `<= chance + 0.05 = ${(chance + 0.05).toFixed(4)}`,
      met: headline.recallMemoryOn >= 0.9 && headline.recallMemoryOff <= chance + 0.05,
    },
    byDistractors: Object.fromEntries(Object.entries(arms).map(([name, arm]) => [name, table(arm, 'byDistractors', DISTRACTOR_SWEEP)])),
    byFacts: Object.fromEntries(Object.entries(arms).map(([name, arm]) => [name, table(arm, 'byFacts', FACT_SWEEP)])),
    runs: arms,
    backendInfo: backendInfo(),
  };
  writeJsonAtomic(out, results);
  console.error(`wrote ${out}`);
  console.log(JSON.stringify(headline));
}

if (require.main === module) {
  main().catch((e) => {
    console.error(e);
    process.exit(1);
  });
}
