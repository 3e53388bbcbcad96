// ACT benchmark: does adaptive computation time spend fewer blocks where a position needs fewer, without
// losing accuracy, and does a fixed-depth model of the same average compute do worse?
//
// Task: in-context pointer chasing, every hop count in one sequence. Every example draws its own random
// cycle σ through `cycle` symbols picked from a vocabulary of `symbols` and lists it as n pair tokens
// "a→σ(a)" in random order, then one query token per hop count, HOP_1·x … HOP_H·x for one x; the answer
// at query h is σ^h(x), and every query is scored:
//
//   [a₁→b₁, a₂→b₂, …, aₙ→bₙ, HOP_1·x, HOP_2·x, …, HOP_H·x]  →  σ(x), σ²(x), …, σ^H(x)
//
// So difficulty varies by position within one sequence, which is what per-position halting is for. A pair
// is one token (vocabulary symbols² pairs + H·symbols queries) so that no block is needed to bind a to b:
// a hop is one attention lookup (find the pair whose a is the current symbol, read its b), and h hops need
// about h blocks in sequence; the pair positions need none of their own. The cycle must be longer than
// 2H: in an n-cycle σ^h = σ^(h−n), and with n − h < h a chain of backward lookups is shorter than the
// forward one (the first version of this bench had 3 hops in 5-cycles, where 2 blocks answer h = 3 as
// σ^−2: a fixed 2-block model reached 96% on every h in 8000 steps, bench/act_port_sweep.py). Some depth can still be
// saved legitimately: a pair position can attend to an earlier pair and hold a two-hop link, which a query
// reads in the next block (pointer doubling), so a fixed shallow model is partly right on long chains.
// Nothing about σ can be memorised: training examples are fresh every step, and the evaluation cycles are
// a held-out fifth of all cycles (by a hash of the cycle) that training never draws.
//
// Arms, same width, data stream, steps and optimiser:
//   act          nLayers blocks with ACT (per-position halting, ponder cost τ·mean(N + R) over all positions)
//   fixedFull    nLayers blocks, ACT off
//   fixedEqual   round(ACT's mean depth at the queries) blocks, ACT off: equal average compute where it is
//                scored. Over all positions ACT runs fewer blocks still (the pair positions halt early), so
//                this comparison is the one kinder to the fixed model; both depths are reported.
//   fixedEqualAll  round(ACT's mean depth over every position) blocks, ACT off: equal average compute per
//                token of the sequence, i.e. equal FLOPs at inference (in the result file, not the headline).
// Depth is counted at inference, where a halted position skips its remaining blocks.
//
//   npm run bench:act [-- --steps 6000 --seeds 2 --tau 0.05 --layers 4 --symbols 12 --cycle 7 --hops 3 --width 64 --ffn 128
//                      --batch 128 --eval 1024 --ponder-start 0.5 --ponder-ramp 0.2 --halting-frozen 0.5 --halting-init 0.01
//                      --halting-detached 0 --act-threshold 0.99 --halting-restarts 0 --restart-tolerance 0.005 --validation 1024
//                      --halting-from-fixed 0 --halting-only 0 --ponder-scored 0 --full-depth-loss 0 --halting-reader-gradient 0
//                      --reader-gradient-running 0 --trunk-dir ''
//                      --arms act,fixedFull,fixedEqual,fixedEqualAll --log 0 --out bench/results/act.json]
// Arms in separate processes (one per core): --seed-start k --seeds 1 --arms act (or fixedEqual --equal-layers N,
// fixedEqualAll --equal-all-layers N) with its own --out each, then --merge file1,file2,… --out bench/results/act.json
// (--arms fixedFull alone with --halting-from-fixed 1 --trunk-dir DIR trains on from the seed's saved plain phase).
// Last stdout line: {"accuracyAct":…,"meanDepthAct":…,"accuracyFixedFull":…,"fullDepth":…,"accuracyFixedEqualCompute":…}
// The defaults are the first design (bench/results/act.json); the current one, (19) in bench/ACT.md, adds --steps 18000
// --halting-frozen 0.333333 --ponder-start 0.333333 --ponder-ramp 0.05 --halting-from-fixed 1 --halting-restarts 1
// (6000 plain steps, 12000 halting steps; (11) is the same with --steps 12000 --halting-frozen 0.5 --ponder-start 0.5
// --ponder-ramp 0.075). bench/ACT.md records every design tried, its flags, result file and what it showed.
// --trunk-dir DIR lets designs share each seed's plain phase.
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { backendInfo, initBackend, type BackendChoice } from '../common/backend';
import { loadLatestCheckpoint, saveCheckpoint } from '../common/checkpoint';
import { writeJsonAtomic } from '../common/export/files';
import { CognateModel, type ModelConfigInput } from '../activities/cognate/engine/model';
import { AdamW, clipByGlobalNorm, globalNorm, type AdamWState } from '../common/optim';
import { fromTensorState, toTensorState, type TensorState } from '../common/tensor-state';
import { hashSeed, Rng, type RngState } from '../common/rng';
import { benchConditions } from './conditions';
import { parseFlags } from './flags';

export interface ChaseTask {
  /** Symbols in the vocabulary. */
  symbols: number;
  /** Symbols per example (the cycle length n, 2·maxHops < n ≤ symbols): a fresh subset every example. */
  cycle: number;
  /** Queries per example: hop counts 1..maxHops. */
  maxHops: number;
}

export interface ChaseBatch {
  /** [B, n + maxHops]: n pair tokens, then the queries HOP_1·x … HOP_maxHops·x. */
  inputs: Int32Array;
  /** σ^h(x) per example and h [B, maxHops]. */
  answers: Int32Array;
  batch: number;
  length: number;
}

export const pairToken = (task: ChaseTask, a: number, b: number): number => a * task.symbols + b;
export const queryToken = (task: ChaseTask, h: number, x: number): number => task.symbols * task.symbols + (h - 1) * task.symbols + x;
export const vocabSize = (task: ChaseTask): number => task.symbols * task.symbols + task.maxHops * task.symbols;
export const sequenceLength = (task: ChaseTask): number => task.cycle + task.maxHops;

/** The settings error for a task, or null: the cycle must exceed 2·maxHops (see the header) and fit the vocabulary. */
export function taskError(task: ChaseTask): string | null {
  if (task.cycle > task.symbols) return `--cycle must be at most --symbols (${task.symbols}), got ${task.cycle}`;
  if (2 * task.maxHops >= task.cycle)
    return `--cycle must exceed 2 x --hops (${2 * task.maxHops}), got ${task.cycle}: in a shorter cycle σ^h = σ^(h-n) is fewer backward hops than h forward`;
  return null;
}

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

/** `batch` examples from `rng`: training cycles (heldOut false) or held-out ones. */
export function chaseBatch(task: ChaseTask, rng: Rng, batch: number, heldOut: boolean): ChaseBatch {
  const n = task.cycle;
  const H = task.maxHops;
  const length = sequenceLength(task);
  const inputs = new Int32Array(batch * length);
  const answers = new Int32Array(batch * H);
  for (let i = 0; i < batch; i++) {
    const { members, next } = drawCycle(rng, task.symbols, n, heldOut);
    const x = members[rng.int(n)];
    const row = inputs.subarray(i * length, (i + 1) * length);
    for (let j = 0; j < n; j++) row[j] = pairToken(task, members[j], next[members[j]]);
    let y = x;
    for (let h = 1; h <= H; h++) {
      row[n + h - 1] = queryToken(task, h, x);
      y = next[y];
      answers[i * H + h - 1] = y;
    }
  }
  return { inputs, answers, batch, length };
}

export function actModelConfig(
  task: ChaseTask,
  nLayers: number,
  actEnabled: boolean,
  ponderCost = 0.05,
  dModel = 64,
  dFF = 128,
  actThreshold = 0.99,
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
    actThreshold,
  };
}

/** Inputs, targets and the loss mask of a batch: every query position is scored, nothing else. */
export function tensors(task: ChaseTask, b: ChaseBatch): { tokens: tf.Tensor2D; targets: tf.Tensor2D; mask: tf.Tensor2D } {
  const targets = new Int32Array(b.batch * b.length);
  const mask = new Float32Array(b.batch * b.length);
  for (let i = 0; i < b.batch; i++) {
    for (let h = 1; h <= task.maxHops; h++) {
      const at = i * b.length + task.cycle + h - 1;
      targets[at] = b.answers[i * task.maxHops + h - 1];
      mask[at] = 1;
    }
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
   * have learnt any lookup (measured on the first version of the task: depth 1.00 and chance accuracy at
   * step 200), and never recovers.
   */
  ponderStart?: number;
  ponderRamp?: number;
  /**
   * The halting units are not trained until this fraction of the steps (every position then runs every
   * block: they start at p = 1/(2N)). ACT's halting is a ratchet: a position that halts after block n puts
   * no later block into its output, so no gradient says that going deeper would help it, and the later
   * blocks get no signal from it either. Trained from the start, the halting units learn to stop where the
   * early blocks are best *so far*, before the later blocks have learnt the longer chains (measured: h = 3
   * halted after 2 blocks at 60% with τ 0.01, 0.02 and 0.05 alike, in bench/act_port_sweep.py).
   */
  haltingFrozenUntil?: number;
  /**
   * Each halting unit's initial probability p (its bias set to log(p / (1 − p)); the product initialises
   * p = 1/(2N)). The output Σ p·s of a position that runs every block puts 1 − (N − 1)·p of its weight on the
   * last block's state: with the product's p that is 5/8 at N = 4, so while the halting units are frozen every
   * answer is 3/8 shallow states and the blocks learn around that mixture; at p = 0.01 they train as a plain
   * N-block model (97% on the last state) until halting starts. Measured with bench/act_port_sweep.py (seed 0):
   * 94.2% at 3.0 blocks with p = 1/8, 98.3% at 3.0 blocks with p = 0.01; fixed 4 blocks 96.2%.
   */
  haltingInit?: number;
  /** ForwardOptions.haltingDetached: the ponder cost trains the halting units only, not the blocks' features. */
  haltingDetached?: boolean;
  /**
   * From the halting start on, train the halting units only: every other weight (blocks, embeddings, head)
   * stays where the plain phase left it. Measured (bench/results/act-halting-only-probe.json, one seed): far
   * worse than training the blocks too (71.7% vs 92.1% at the same depth), so halting is no calibration step.
   */
  haltingOnly?: boolean;
  /**
   * Charge the ponder cost at the scored (query) positions only, τ · mean(N + R) over the loss mask, instead
   * of over every position. Built to test whether the unscored pairs (70% of a sequence, halting after about
   * one block when charged) keep h = 2 deep by leaving later queries pair states without two-hop links. They
   * do not (bench/results/act-ponder-scored-probe.json, one seed): charged at the queries only the pairs run
   * 3.7 blocks, yet h = 2 still takes 3.7 blocks and accuracy is no better. In a language model every position
   * is scored, so there the two agree.
   */
  ponderScored?: boolean;
  /**
   * Weight λ of a second cross-entropy, at the scored positions, on the same batch run at full depth (every
   * position through every block, the last block's state read, as the fixed-depth model), added during the
   * halting phase. Why: ACT's blocks past the first see fewer answers (a position that halts trains no later
   * block) and read context positions' states frozen where those halted, so they train less per step than a
   * fixed model's, whose accuracy at full depth ACT has to reach; this keeps the full-depth path trained as
   * the fixed model's is. Costs a second forward and backward per halting-phase step. 0: off.
   */
  fullDepthLoss?: number;
  /**
   * ForwardOptions.haltingReaderGradient during the halting phase: λ of the straight-through gate through
   * which a position's halting unit gets a gradient from the positions that read its state in later blocks.
   * Built for bench/ACT.md (17): the pair positions halt after about one block because only the ponder cost
   * trains their halting, and the queries reading them lose at h = 3. 0: off.
   */
  haltingReaderGradient?: number;
  /** ForwardOptions.haltingReaderGradientRunning: the gate's gradient at the running positions too. */
  haltingReaderGradientRunning?: boolean;
  /** Print the training loss every this many steps (0: never). */
  logEvery?: number;
  /** Retry a halting phase that costs accuracy (ACT arm; see HaltingGuard). */
  guard?: HaltingGuard;
}

/**
 * A halting phase that costs accuracy is retried, then given up. The guard scores the plain model on
 * validation examples when halting starts, and each halting phase's model at its end; one that scores more
 * than `tolerance` below the plain model is rolled back to the plain model's weights, optimiser and data
 * stream state and the phase rerun on another data order, up to `restarts` times. If none keeps the
 * accuracy, the plain model is kept (full depth: its halting units are still at their untrained start).
 * Validation examples are drawn from the training cycles with their own seed, never from the held-out cycles
 * the benchmark scores. Built for the worse mode of bench/results/act-halting-phase-9000.json (seeds 0 and 3:
 * h = 2 kept at full depth, 2-3 points below fixed 4); it showed that halting lost nothing there against the
 * model it started from, whose accuracy was already lower (bench/results/act-guard-worse-mode.json).
 */
export interface HaltingGuard {
  restarts: number;
  /** Validation accuracy a halting phase may lose against the plain model, as a fraction (0.005: half a point). */
  tolerance: number;
  /** Validation examples (each scores every hop count). */
  examples: number;
  seed: number;
}

export interface GuardReport {
  /** The plain model's validation score when halting starts (every position runs every block). */
  plain: { accuracy: number; meanDepth: number };
  attempts: { attempt: number; validationAccuracy: number; validationDepth: number; finalTrainLoss: number; kept: boolean }[];
  /** The attempt kept, or 'plain' when every attempt lost accuracy. */
  kept: number | 'plain';
}

/** The first step whose halting gradients are applied: ⌈haltingFrozenUntil · steps⌉, at most steps. */
export const haltingStartOf = (o: TrainOptions): number => Math.min(o.steps, Math.ceil((o.haltingFrozenUntil ?? 0) * o.steps));

/** A ChaseTraining's weights (by parameter name), optimiser state, data stream and step. */
export interface ChaseState {
  step: number;
  params: Record<string, TensorState>;
  optimizer: AdamWState;
  rng: RngState;
}

/** One model's training on a fresh batch of training cycles every step (loss at the query positions + the ponder cost). */
export class ChaseTraining {
  rng: Rng;
  readonly optimizer: AdamW;
  step = 0;
  finalLoss = NaN;
  /** The first step whose halting gradients are applied (step >= haltingFrozenUntil · steps). */
  readonly haltingStart: number;

  constructor(
    readonly model: CognateModel,
    readonly task: ChaseTask,
    readonly o: TrainOptions,
  ) {
    this.rng = new Rng(hashSeed(o.seed, 1));
    if (o.haltingInit !== undefined) model.initHalting(o.haltingInit);
    this.optimizer = new AdamW(model.params, { beta1: 0.9, beta2: 0.98, epsilon: 1e-8, weightDecay: 0, decoupled: true });
    this.haltingStart = haltingStartOf(o);
  }

  /** Train up to step `to` (exclusive). */
  run(to: number): void {
    const { model, task, o } = this;
    for (; this.step < to; this.step++) {
      const step = this.step;
      const lr = o.learningRate * Math.min(1, (step + 1) / 100);
      const { tokens, targets, mask } = tensors(task, chaseBatch(task, this.rng, o.batch, false));
      const ponderScale = Math.min(1, Math.max(0, (step / o.steps - (o.ponderStart ?? 0)) / Math.max(1e-9, o.ponderRamp ?? 0)));
      const { value, grads } = tf.variableGrads(() => {
        const r = model.loss(tokens, targets, mask, {
          training: true,
          haltingDetached: o.haltingDetached,
          haltingReaderGradient: step < this.haltingStart ? 0 : o.haltingReaderGradient,
          haltingReaderGradientRunning: o.haltingReaderGradientRunning,
        });
        // loss charges the scored (query) positions; by default this bench charges every position, as forward does
        const ponderCost = !o.ponderScored && r.ponder ? r.ponder.mean<tf.Scalar>().mul(model.config.ponderCost) : r.ponderCost;
        const loss = r.ce.add<tf.Scalar>(ponderCost.mul(ponderScale));
        if (!o.fullDepthLoss || !r.ponder || step < this.haltingStart) return loss;
        const full = model.loss(tokens, targets, mask, { training: true, fullDepth: true });
        return loss.add<tf.Scalar>(full.ce.mul(o.fullDepthLoss));
      });
      const byName: tf.NamedTensorMap = {};
      for (const p of model.params) {
        if (!grads[p.variable.name]) continue;
        if (step < this.haltingStart ? p.name.includes('halting.') : o.haltingOnly && !p.name.includes('halting.')) continue;
        byName[p.name] = grads[p.variable.name];
      }
      const clipped = clipByGlobalNorm(byName, 1, globalNorm(byName));
      this.optimizer.update(clipped, lr);
      if (step === o.steps - 1 || (o.logEvery && (step + 1) % o.logEvery === 0)) {
        this.finalLoss = value.dataSync()[0];
        if (o.logEvery) console.error(`  step ${step + 1}: loss ${this.finalLoss.toFixed(3)}`);
      }
      tf.dispose([value, tokens, targets, mask, ...Object.values(grads), ...Object.values(clipped)]);
    }
  }

  state(): ChaseState {
    const params: Record<string, TensorState> = {};
    for (const p of this.model.params) params[p.name] = toTensorState(p.variable);
    return { step: this.step, params, optimizer: this.optimizer.state(), rng: this.rng.state() };
  }

  /**
   * Continue from `s`, which may come from a model without this one's halting units (a fixed-depth model of
   * the same blocks): those keep their start and get fresh optimiser moments.
   */
  load(s: ChaseState): void {
    const optimizer: AdamWState = { step: s.optimizer.step, m: { ...s.optimizer.m }, v: { ...s.optimizer.v } };
    for (const p of this.model.params) {
      const saved = s.params[p.name];
      if (saved) tf.tidy(() => p.variable.assign(fromTensorState(saved)));
      else if (!p.name.includes('halting.')) throw new Error(`training state has no parameter "${p.name}"`);
      else {
        const zeros = { shape: [...p.variable.shape], data: new Float32Array(p.variable.size) };
        optimizer.m[p.name] = zeros;
        optimizer.v[p.name] = zeros;
      }
    }
    this.optimizer.load(optimizer);
    this.rng = Rng.fromState(s.rng);
    this.step = s.step;
  }

  dispose(): void {
    this.optimizer.dispose();
  }
}

/**
 * Train `model` to o.steps, from scratch or from `from` (a ChaseTraining state, e.g. a fixed-depth model's
 * at the halting start). With o.guard the halting phase is checked and rerun as HaltingGuard says.
 */
export function trainChase(
  model: CognateModel,
  task: ChaseTask,
  o: TrainOptions,
  from?: ChaseState,
): { finalLoss: number; guard?: GuardReport } {
  const t = new ChaseTraining(model, task, o);
  try {
    if (from) t.load(from);
    if (!o.guard || t.haltingStart >= o.steps) {
      t.run(o.steps);
      return { finalLoss: t.finalLoss };
    }
    const g = o.guard;
    t.run(t.haltingStart);
    const snapshot = t.state();
    const validate = () => evaluateChase(model, task, g.examples, g.seed, 128, false);
    const plain = validate();
    const report: GuardReport = { plain: { accuracy: plain.accuracy, meanDepth: plain.meanDepth }, attempts: [], kept: 'plain' };
    for (let attempt = 0; attempt <= g.restarts; attempt++) {
      if (attempt > 0) {
        t.load(snapshot);
        t.rng = new Rng(hashSeed(o.seed, 3, attempt)); // another data order for the halting phase
      }
      t.run(o.steps);
      const v = validate();
      const kept = v.accuracy >= plain.accuracy - g.tolerance;
      report.attempts.push({ attempt, validationAccuracy: v.accuracy, validationDepth: v.meanDepth, finalTrainLoss: t.finalLoss, kept });
      console.error(
        `  halting phase ${attempt}: validation ${v.accuracy.toFixed(4)} at ${v.meanDepth.toFixed(2)} blocks ` +
          `(plain model ${plain.accuracy.toFixed(4)} at ${plain.meanDepth.toFixed(2)}): ${kept ? 'kept' : 'loses accuracy'}`,
      );
      if (kept) {
        report.kept = attempt;
        break;
      }
    }
    if (report.kept === 'plain') t.load(snapshot);
    return { finalLoss: t.finalLoss, guard: report };
  } finally {
    t.dispose();
  }
}

/**
 * A folder of plain-phase training states (--trunk-dir), one subfolder per setting of the plain phase and
 * seed, named by a hash of those settings (kept in the file too and compared on load).
 */
export function trunkCache(dir: string, settings: Record<string, unknown>) {
  const key = JSON.stringify(settings);
  const folder = path.join(dir, createHash('sha256').update(key).digest('hex').slice(0, 16));
  return {
    folder,
    load(): { state: ChaseState; seconds: number } | null {
      const found = loadLatestCheckpoint<{ settings: string; seconds: number; state: ChaseState }>(folder, (m) =>
        console.error(`  trunk cache: ${m}`),
      );
      if (!found) return null;
      if (found.state.settings !== key)
        throw new Error(`${found.path}: saved for other plain-phase settings (${found.state.settings}), not ${key}`);
      console.error(`  plain phase: loaded from ${found.path} (step ${found.step}, trained in ${found.state.seconds.toFixed(0)} s)`);
      return { state: found.state.state, seconds: found.state.seconds };
    },
    save(state: ChaseState, seconds: number): void {
      const saved = saveCheckpoint(folder, state.step, { settings: key, seconds, state }, 1);
      console.error(`  plain phase: saved to ${saved.path}`);
    },
  };
}

export interface ChaseEval {
  /** Over every query (all hop counts, equally many of each). */
  accuracy: number;
  /** Mean blocks run at the query positions (the scored ones). */
  meanDepth: number;
  /** Mean blocks run over every position (pairs and queries). */
  meanDepthAllPositions: number;
  byHops: Record<
    number,
    {
      accuracy: number;
      meanDepth: number;
      /** ACT: the halting state's weight R in the output Σ p_m·s_m + R·s_n (the rest is earlier blocks' states). */
      haltingStateWeight?: number;
      /** ACT: accuracy when the head reads the halting state alone instead of the weighted sum. */
      haltingStateAccuracy?: number;
      /**
       * ACT: accuracy of the same weights with halting ignored (every position through every block, the last
       * state read: ForwardOptions.fullDepth). At a position that runs every block anyway it differs from ACT's
       * only through the context: the earlier positions' states, frozen where they halted under ACT.
       */
      fullDepthAccuracy?: number;
    }
  >;
}

/**
 * Accuracy and blocks run on held-out cycles (or, with heldOut false, on fresh examples of the training cycles:
 * validation), overall and per hop count (inference: halted positions skip blocks).
 */
export function evaluateChase(
  model: CognateModel,
  task: ChaseTask,
  examples: number,
  seed: number,
  chunk = 128,
  heldOut = true,
): ChaseEval {
  const rng = new Rng(hashSeed(seed, 2));
  const H = task.maxHops;
  const correct = new Array<number>(H + 1).fill(0);
  const depthAt = new Array<number>(H + 1).fill(0);
  const weightAt = new Array<number>(H + 1).fill(0);
  const haltingCorrect = new Array<number>(H + 1).fill(0);
  const fullDepthCorrect = new Array<number>(H + 1).fill(0);
  let allDepth = 0;
  for (let done = 0; done < examples; done += chunk) {
    const b = chaseBatch(task, rng, Math.min(chunk, examples - done), heldOut);
    const depth = new Float64Array(b.batch * b.length);
    let predicted: ArrayLike<number> = [];
    let ponder: ArrayLike<number> | null = null;
    let haltingStatePredicted: ArrayLike<number> | null = null;
    let fullDepthPredicted: ArrayLike<number> | null = null;
    tf.tidy(() => {
      let last: tf.Tensor3D | null = null; // after the loop: each position's halting state (halted positions keep theirs)
      const tokens = tf.tensor2d(b.inputs, [b.batch, b.length], 'int32');
      const out = model.forward(tokens, {
        training: false,
        onBlock: ({ runningBefore, after }) => {
          const running = runningBefore ? runningBefore.dataSync() : null;
          for (let i = 0; i < depth.length; i++) depth[i] += running ? running[i] : 1;
          last = after;
        },
      });
      predicted = tf.argMax(out.logits, -1).dataSync();
      ponder = out.ponder ? out.ponder.dataSync() : null;
      haltingStatePredicted = out.ponder && last ? tf.argMax(model.readout(last), -1).dataSync() : null;
      if (out.ponder) fullDepthPredicted = tf.argMax(model.forward(tokens, { training: false, fullDepth: true }).logits, -1).dataSync();
    });
    for (let i = 0; i < b.batch; i++) {
      for (let h = 1; h <= H; h++) {
        const at = i * b.length + task.cycle + h - 1;
        if (predicted[at] === b.answers[i * H + h - 1]) correct[h]++;
        depthAt[h] += depth[at];
        if (ponder) weightAt[h] += ponder[at] - depth[at]; // N + R − N: the halting state's share of the output
        if (haltingStatePredicted && haltingStatePredicted[at] === b.answers[i * H + h - 1]) haltingCorrect[h]++;
        if (fullDepthPredicted && fullDepthPredicted[at] === b.answers[i * H + h - 1]) fullDepthCorrect[h]++;
      }
    }
    allDepth += depth.reduce((a, x) => a + x, 0);
  }
  const byHops: ChaseEval['byHops'] = {};
  for (let h = 1; h <= H; h++) {
    byHops[h] = {
      accuracy: correct[h] / examples,
      meanDepth: depthAt[h] / examples,
      ...(model.config.actEnabled
        ? {
            haltingStateWeight: weightAt[h] / examples,
            haltingStateAccuracy: haltingCorrect[h] / examples,
            fullDepthAccuracy: fullDepthCorrect[h] / examples,
          }
        : {}),
    };
  }
  const sum = (xs: number[]) => xs.reduce((a, x) => a + x, 0);
  return {
    accuracy: sum(correct) / (examples * H),
    meanDepth: sum(depthAt) / (examples * H),
    meanDepthAllPositions: allDepth / (examples * sequenceLength(task)),
    byHops,
  };
}

type Run = Record<string, unknown>;

type Arm = ChaseEval & { layers: number };

/** The mean over the seeds of one figure of arm `key` (null when that arm was not run). */
const meanOver = (runs: Run[], key: string, f: (a: Arm) => number): number | null =>
  runs.every((r) => r[key]) ? runs.reduce((a, r) => a + f(r[key] as Arm), 0) / runs.length : null;

/** The headline: means over the seeds, equal compute counted at the scored (query) positions. */
export function headlineOf(runs: Run[], fullDepth: number) {
  return {
    accuracyAct: meanOver(runs, 'act', (a) => a.accuracy),
    meanDepthAct: meanOver(runs, 'act', (a) => a.meanDepth),
    accuracyFixedFull: meanOver(runs, 'fixedFull', (a) => a.accuracy),
    fullDepth,
    accuracyFixedEqualCompute: meanOver(runs, 'fixedEqual', (a) => a.accuracy),
  };
}

/** The comparison at equal compute over every position (equal FLOPs), kept beside the headline in the result file. */
export function equalFlopsOf(runs: Run[]) {
  return {
    accuracyAct: meanOver(runs, 'act', (a) => a.accuracy),
    meanDepthActAllPositions: meanOver(runs, 'act', (a) => a.meanDepthAllPositions),
    accuracyFixedEqualAll: meanOver(runs, 'fixedEqualAll', (a) => a.accuracy),
    depthFixedEqualAll: meanOver(runs, 'fixedEqualAll', (a) => a.layers),
  };
}

/** The result file's training settings that only the ACT arm uses (a fixed-depth process's file may differ in them). */
const ACT_TRAINING_KEYS = [
  'ponder',
  'halting',
  'haltingInit',
  'haltingGradient',
  'haltingGuard',
  'plainPhase',
  'ponderWhere',
  'haltingOnly',
  'fullDepthLoss',
  'haltingReaderGradient',
];

/**
 * Seeds or arms run as separate processes (`--seed-start k --seeds 1`, or `--arms act` and `--arms
 * fixedEqual --equal-layers N`, one per core) are joined into one result file: the runs concatenated (arms
 * of the same seed into one run), the headline recomputed; the settings must match (the ACT arm's own only
 * between processes that ran it).
 */
export function merge(files: string[], out: string): void {
  const parts = files.map((f) => JSON.parse(fs.readFileSync(f, 'utf8')) as Record<string, unknown> & { runs: Run[] });
  // The ACT arm's own settings (its schedule, ponder cost, threshold) only bind processes that ran the ACT arm:
  // a fixed-depth process ignores them, so its file merges with ACT runs of any schedule.
  const hasAct = (p: { runs: Run[] }) => p.runs.some((r) => r.act);
  const settings = (p: Record<string, unknown> & { runs: Run[] }, withAct: boolean) => {
    const { ponderCost, actThreshold, ...model } = p.model as Run;
    const all = p.training as Run;
    const training = Object.fromEntries(Object.entries(all).filter(([key]) => !ACT_TRAINING_KEYS.includes(key)));
    const act = withAct ? [ponderCost, actThreshold, ...ACT_TRAINING_KEYS.map((key) => all[key])] : [];
    return JSON.stringify([p.task, model, training, p.evaluation, (p.backend as Run).backend, act]);
  };
  const reference = parts.find(hasAct) ?? parts[0];
  for (const [i, p] of parts.entries()) {
    const withAct = hasAct(p);
    if (settings(p, withAct) !== settings(reference, withAct))
      throw new Error(`${files[i]}: settings differ from ${files[parts.indexOf(reference)]}`);
  }
  // Arms of one seed run in different processes become one run.
  const bySeed = new Map<unknown, Run>();
  for (const r of parts.flatMap((p) => p.runs)) bySeed.set(r.seed, { ...bySeed.get(r.seed), ...r });
  const runs = [...bySeed.values()];
  const headline = headlineOf(runs, (reference.model as { nLayers: number }).nLayers);
  writeJsonAtomic(out, {
    ...reference,
    seeds: runs.map((r) => r.seed),
    runs,
    headline,
    equalFlops: equalFlopsOf(runs),
    conditions: {
      ...(reference.conditions as Run),
      processes: parts.map((p, i) => ({ file: path.basename(files[i]), ...(p.conditions as Run), seconds: p.seconds })),
    },
    seconds: Math.max(...parts.map((p) => p.seconds as number)),
    merged: `${files.length} processes (each with its own conditions under conditions.processes), joined by --merge: ${files.map((f) => path.basename(f)).join(', ')}`,
  });
  console.error(`wrote ${out}`);
  console.log(JSON.stringify(headline));
}

const FLAGS = {
  steps: 6000,
  seeds: 2,
  seedStart: 0,
  layers: 4,
  symbols: 12,
  cycle: 7,
  hops: 3,
  tau: 0.05,
  width: 64,
  ffn: 128,
  batch: 128,
  eval: 1024,
  lr: 3e-3,
  ponderStart: 0.5,
  ponderRamp: 0.2,
  haltingFrozen: 0.5,
  /** Initial halting probability per block of the ACT arm (TrainOptions.haltingInit); 0: the product's 1/(2N). */
  haltingInit: 0.01,
  /** 1: the ACT arm's halting units read the states through a stop-gradient (ForwardOptions.haltingDetached). */
  haltingDetached: 0,
  /** ACT arm's halting threshold 1 − ε: a position halts once its summed halting probability reaches it. */
  actThreshold: 0.99,
  /** ACT arm: rerun a halting phase that loses validation accuracy this many times on other data orders (HaltingGuard); 0: no guard. */
  haltingRestarts: 0,
  /** Validation accuracy (fraction) a halting phase may lose against the plain model before it is rerun. */
  restartTolerance: 0.005,
  /** Validation examples for the guard (fresh examples of training cycles, not the held-out ones). */
  validation: 1024,
  /**
   * 1: the ACT arm's plain phase is the fixed-depth arm's training (ACT off) up to the halting start, and ACT's
   * halting phase continues from that model (its halting units start as --halting-init says); with fixedFull in
   * --arms the two arms share those steps in one process (with fixedFull alone, it trains on from a --trunk-dir
   * state when there is one). 0: the ACT arm trains its own plain phase with ACT on and the halting units frozen.
   */
  haltingFromFixed: 0,
  /**
   * With --halting-from-fixed 1: a folder keeping each seed's plain model at the halting start (weights,
   * optimiser moments, data stream: a training state), so that ACT designs sharing a plain phase train only
   * their halting phase; the run continues bit for bit as if it had trained the plain phase itself. A state
   * is reused only when every setting of the plain phase (task, sizes, batch, learning rate, halting start,
   * seed, backend) is the same: they name its subfolder. '': no cache.
   */
  trunkDir: '',
  /** 1: the ACT arm's halting phase trains the halting units only (TrainOptions.haltingOnly); its other weights stay the plain model's. */
  haltingOnly: 0,
  /** 1: the ACT arm's ponder cost counts the scored (query) positions only (TrainOptions.ponderScored); 0: every position. */
  ponderScored: 0,
  /** Weight of the ACT arm's cross-entropy at full depth during the halting phase (TrainOptions.fullDepthLoss); 0: off. */
  fullDepthLoss: 0,
  /** λ of the ACT arm's straight-through reader gradient into the halting units (TrainOptions.haltingReaderGradient); 0: off. */
  haltingReaderGradient: 0,
  /** 1: the reader gradient's gate acts at the running positions too (TrainOptions.haltingReaderGradientRunning); 0: halted ones only. */
  readerGradientRunning: 0,
  log: 0,
  arms: 'act,fixedFull,fixedEqual,fixedEqualAll',
  /** The fixedEqual / fixedEqualAll depths when this process runs no ACT arm (taken from an ACT run in another process). */
  equalLayers: 0,
  equalAllLayers: 0,
  /** Comma-separated result files of processes run side by side, to be joined into --out. */
  merge: '',
  out: path.join(__dirname, 'results', 'act.json'),
};

async function main(): Promise<void> {
  const o = parseFlags(FLAGS, process.argv.slice(2));
  if (o.merge) return merge(o.merge.split(','), o.out);
  for (const key of ['steps', 'seeds', 'layers', 'symbols', 'cycle', 'hops', 'width', 'ffn', 'batch', 'eval'] as const) {
    if (!Number.isInteger(o[key]) || o[key] < 1) throw new Error(`--${key} must be a positive integer (got ${o[key]})`);
  }
  if (o.haltingDetached !== 0 && o.haltingDetached !== 1) throw new Error(`--halting-detached must be 0 or 1 (got ${o.haltingDetached})`);
  if (!(o.actThreshold > 0 && o.actThreshold <= 1)) throw new Error(`--act-threshold must be in (0, 1] (got ${o.actThreshold})`);
  if (!(o.haltingInit >= 0 && o.haltingInit < 1)) throw new Error(`--halting-init must be in [0, 1) (got ${o.haltingInit})`);
  if (!Number.isInteger(o.haltingRestarts) || o.haltingRestarts < 0)
    throw new Error(`--halting-restarts must be a non-negative integer (got ${o.haltingRestarts})`);
  if (!(o.restartTolerance >= 0 && o.restartTolerance < 1))
    throw new Error(`--restart-tolerance must be in [0, 1) (got ${o.restartTolerance})`);
  if (!Number.isInteger(o.validation) || o.validation < 1) throw new Error(`--validation must be a positive integer (got ${o.validation})`);
  if (o.haltingFromFixed !== 0 && o.haltingFromFixed !== 1)
    throw new Error(`--halting-from-fixed must be 0 or 1 (got ${o.haltingFromFixed})`);
  if (o.haltingOnly !== 0 && o.haltingOnly !== 1) throw new Error(`--halting-only must be 0 or 1 (got ${o.haltingOnly})`);
  if (o.ponderScored !== 0 && o.ponderScored !== 1) throw new Error(`--ponder-scored must be 0 or 1 (got ${o.ponderScored})`);
  if (!(o.fullDepthLoss >= 0)) throw new Error(`--full-depth-loss must be a non-negative number (got ${o.fullDepthLoss})`);
  if (!(o.haltingReaderGradient >= 0))
    throw new Error(`--halting-reader-gradient must be a non-negative number (got ${o.haltingReaderGradient})`);
  if (o.readerGradientRunning !== 0 && o.readerGradientRunning !== 1)
    throw new Error(`--reader-gradient-running must be 0 or 1 (got ${o.readerGradientRunning})`);
  if (o.readerGradientRunning === 1 && !(o.haltingReaderGradient > 0))
    throw new Error('--reader-gradient-running 1 shapes --halting-reader-gradient; it has no effect while that is 0');
  if (o.trunkDir && o.haltingFromFixed !== 1)
    throw new Error(
      `--trunk-dir keeps the plain phase of --halting-from-fixed 1 runs; it has no effect without it (got --trunk-dir ${o.trunkDir})`,
    );
  const task: ChaseTask = { symbols: o.symbols, cycle: o.cycle, maxHops: o.hops };
  const error = taskError(task);
  if (error) throw new Error(error);
  const arms = o.arms.split(',');
  const backend = await initBackend((process.env.FORGE_TF_BACKEND as BackendChoice | undefined) || 'tensorflow');
  const started = Date.now();
  const runs: Record<string, unknown>[] = [];
  for (let seed = o.seedStart; seed < o.seedStart + o.seeds; seed++) {
    const trainOptions = (act: boolean): TrainOptions => ({
      steps: o.steps,
      batch: o.batch,
      learningRate: o.lr,
      seed: 100 + seed,
      logEvery: o.log,
      ponderStart: o.ponderStart,
      ponderRamp: o.ponderRamp,
      haltingFrozenUntil: o.haltingFrozen,
      haltingInit: o.haltingInit > 0 ? o.haltingInit : undefined,
      haltingDetached: o.haltingDetached === 1,
      haltingOnly: o.haltingOnly === 1,
      ponderScored: o.ponderScored === 1,
      fullDepthLoss: o.fullDepthLoss,
      haltingReaderGradient: o.haltingReaderGradient,
      haltingReaderGradientRunning: o.readerGradientRunning === 1,
      guard:
        act && o.haltingRestarts > 0
          ? { restarts: o.haltingRestarts, tolerance: o.restartTolerance, examples: o.validation, seed: 300 + seed }
          : undefined,
    });
    const newModel = (layers: number, act: boolean) =>
      new CognateModel(actModelConfig(task, layers, act, o.tau, o.width, o.ffn, o.actThreshold), 10 + seed);
    const report = (
      model: CognateModel,
      layers: number,
      act: boolean,
      finalLoss: number,
      // the arm's whole training: a shared or --trunk-dir plain phase counts at the seconds it first took, so
      // the time of this process's own steps is the file's `seconds` (per process), not this
      trainSeconds: number,
      extra: Record<string, unknown> = {},
    ) => {
      const r = { layers, act, finalTrainLoss: finalLoss, ...evaluateChase(model, task, o.eval, 200 + seed), trainSeconds, ...extra };
      const byH = Object.entries(r.byHops)
        .map(([h, v]) => `h${h} ${v.accuracy.toFixed(3)}@${v.meanDepth.toFixed(2)}`)
        .join(' ');
      console.error(
        `seed ${seed} ${act ? 'ACT' : 'fixed'} ${layers} layers: accuracy ${r.accuracy.toFixed(3)}, depth at the queries ${r.meanDepth.toFixed(2)}, ` +
          `all positions ${r.meanDepthAllPositions.toFixed(2)}; ${byH}; loss ${finalLoss.toFixed(3)}, ${trainSeconds.toFixed(0)} s`,
      );
      return r;
    };
    const arm = (layers: number, act: boolean, from?: ChaseState, secondsBefore = 0) => {
      const model = newModel(layers, act);
      const t0 = performance.now();
      const { finalLoss, guard } = trainChase(model, task, trainOptions(act), from);
      const r = report(model, layers, act, finalLoss, secondsBefore + (performance.now() - t0) / 1000, guard ? { guard } : {});
      model.dispose();
      return r;
    };
    const run: Record<string, unknown> = { seed };
    let act: ReturnType<typeof arm> | null = null;
    if ((arms.includes('act') || arms.includes('fixedFull')) && o.haltingFromFixed === 1) {
      // The plain phase is the fixed-depth arm's own training: one fixed model to the halting start, whose
      // state the ACT model continues from; the fixed model then trains on to the end as the fixedFull arm.
      // With --arms fixedFull alone it still goes through here, so a saved plain phase (--trunk-dir) is reused.
      const fixed = newModel(o.layers, false);
      const t0 = performance.now();
      const plain = new ChaseTraining(fixed, task, trainOptions(false));
      const cache = o.trunkDir
        ? trunkCache(o.trunkDir, {
            task,
            width: o.width,
            ffn: o.ffn,
            layers: o.layers,
            batch: o.batch,
            learningRate: o.lr,
            haltingStart: plain.haltingStart,
            seed,
            backend: backend.backend,
          })
        : null;
      const cached = cache?.load() ?? null;
      if (cached) plain.load(cached.state);
      else plain.run(plain.haltingStart);
      const trunk = plain.state();
      const trunkSeconds = cached ? cached.seconds : (performance.now() - t0) / 1000;
      if (cache && !cached) cache.save(trunk, trunkSeconds);
      if (arms.includes('act')) act = arm(o.layers, true, trunk, trunkSeconds);
      if (arms.includes('fixedFull')) {
        const t1 = performance.now();
        plain.run(o.steps);
        run.fixedFull = report(fixed, o.layers, false, plain.finalLoss, trunkSeconds + (performance.now() - t1) / 1000);
      }
      plain.dispose();
      fixed.dispose();
    } else if (arms.includes('act')) act = arm(o.layers, true);
    if (act) run.act = act;
    if (arms.includes('fixedFull') && !run.fixedFull) run.fixedFull = arm(o.layers, false);
    const equalLayers = act ? Math.max(1, Math.round(act.meanDepth)) : o.equalLayers;
    if (arms.includes('fixedEqual') && equalLayers >= 1) run.fixedEqual = arm(equalLayers, false);
    const equalAllLayers = act ? Math.max(1, Math.round(act.meanDepthAllPositions)) : o.equalAllLayers;
    if (arms.includes('fixedEqualAll') && equalAllLayers >= 1) {
      // the same depth as fixedEqual when both round alike: train it once
      run.fixedEqualAll = run.fixedEqual && equalAllLayers === equalLayers ? run.fixedEqual : arm(equalAllLayers, false);
    }
    runs.push(run);
  }
  const headline = headlineOf(runs, o.layers);
  writeJsonAtomic(o.out, {
    task: {
      symbols: o.symbols,
      cycle: o.cycle,
      maxHops: o.hops,
      sequence: `${o.cycle} pair tokens a->sigma(a) in random order, then the queries HOP_1.x ... HOP_${o.hops}.x; the answer sigma^h(x) is scored at query h`,
      sigma: `a fresh random cycle through ${o.cycle} of the ${o.symbols} symbols per example; evaluation cycles are a held-out fifth (hash of the cycle) never drawn in training`,
      chance: 1 / (o.cycle - 1),
    },
    model: {
      ...actModelConfig(task, o.layers, true, o.tau, o.width, o.ffn, o.actThreshold),
      note: 'ACT arm with nLayers blocks; fixed arms ACT off',
    },
    training: {
      steps: o.steps,
      ponder: `tau 0 until ${o.ponderStart} of the steps, then linearly to ${o.tau} over ${o.ponderRamp} of the steps (ACT arm)`,
      halting: `halting units not trained until ${o.haltingFrozen} of the steps (every position runs every block meanwhile; ACT arm)`,
      // only when set: files written before this flag existed then still --merge with new ones (it compares settings)
      ...(o.haltingDetached === 1
        ? {
            haltingGradient:
              'the halting units read the states through a stop-gradient: the ponder cost trains them only, not the blocks (ACT arm)',
          }
        : {}),
      haltingInit: `each halting unit starts at p = ${o.haltingInit > 0 ? o.haltingInit : `1/(2N), the product's init`} (ACT arm)`,
      ...(o.haltingFromFixed === 1
        ? {
            plainPhase: `the ACT arm's first ${o.haltingFrozen} of the steps are the fixed ${o.layers}-block model's training (ACT off, the same steps as the fixedFull arm); its halting phase continues from that model`,
          }
        : {}),
      ...(o.ponderScored === 1
        ? { ponderWhere: 'the ponder cost is the mean of N + R over the scored (query) positions only, not every position (ACT arm)' }
        : {}),
      ...(o.fullDepthLoss > 0
        ? {
            fullDepthLoss: `during the halting phase, loss + ${o.fullDepthLoss} x the cross-entropy at the queries of the same batch run at full depth (every position through every block, the last state read; a second forward per step) (ACT arm)`,
          }
        : {}),
      ...(o.haltingReaderGradient > 0
        ? {
            haltingReaderGradient: `during the halting phase, a position's state is kept through a straight-through gate (value: the running mask; gradient: ${o.haltingReaderGradient} x minus its halting probability spent) at ${o.readerGradientRunning === 1 ? 'every position' : 'the halted positions'}, so the positions reading it in later blocks train its halting unit (ACT arm)`,
          }
        : {}),
      ...(o.haltingOnly === 1
        ? {
            haltingOnly: `the ACT arm's halting phase trains its halting units only; every other weight stays the plain model's at the halting start`,
          }
        : {}),
      ...(o.haltingRestarts > 0
        ? {
            haltingGuard:
              `a halting phase that scores more than ${o.restartTolerance * 100} points below the plain model on ${o.validation} validation examples ` +
              `(training cycles) is rerun on another data order from the plain model's state, up to ${o.haltingRestarts} times; if none keeps the accuracy ` +
              `the plain model is kept (ACT arm; per-attempt scores under runs[].act.guard)`,
          }
        : {}),
      batch: o.batch,
      learningRate: o.lr,
      data: 'a fresh batch of training cycles every step; every query position scored',
      optimizer: 'AdamW (0.9, 0.98), no weight decay, clip 1, 100 warmup steps',
    },
    evaluation: { examples: o.eval, queries: o.eval * o.hops, mode: 'inference (halted positions skip the remaining blocks)' },
    depthMeasures: {
      meanDepth: 'blocks run at the query positions, the scored ones; headline meanDepthAct and the fixedEqual depth use this',
      meanDepthAllPositions: 'blocks run averaged over every position of the sequence (pairs and queries)',
    },
    seeds: runs.map((r) => r.seed),
    runs,
    headline,
    equalFlops: equalFlopsOf(runs),
    backend,
    backendInfo: backendInfo(),
    conditions: benchConditions(backend, started),
    seconds: (Date.now() - started) / 1000,
  });
  console.error(`wrote ${o.out}`);
  console.log(JSON.stringify(headline));
}

if (require.main === module) {
  main().catch((e) => {
    console.error(e);
    process.exit(1);
  });
}
