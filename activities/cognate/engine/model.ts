// The Cognate model: a decoder-only transformer with adaptive computation over depth and a long-term
// memory, readable top to bottom.
//
//   tokens [B, T] → embedding → N × block → ACT-weighted state → RMSNorm → LM head → logits [B, T, V]
//   block(x) = x + SelfAttn(norm x) (causal, rotary) + SwiGLU(norm ·)
//   memory block (memLayer; the middle one by default), per head h (Memorizing Transformers, arXiv 2203.08913):
//     local  = causal rotary attention of the segment, as in every block
//     memory = softmax over the top-k bank entries (by q·k) of q·k/√D, times their values; q and the
//              bank's keys are taken before rotary (a memory has no position in this segment)
//     values = W_v·norm(x)_t + W_vp·norm(x)_{t−1} (value shift, this block only; 0 before the segment start)
//     g      = σ(norm(x) · W_gate + b_gate)[h]          (per position and head, W_gate [C, H], b_gate [H])
//     head   = local + g · (memory − local)              (local alone while its row's bank stream is empty)
//   The memory block's pre-rotary keys and its values are returned as `memoryEntries` [B, H, T, D] and
//   written to the bank after the segment (model.writeMemory), so later segments can read them.
//   ACT: after every block but the last a halting unit p = σ(w·s + b) per position; halted positions keep
//        their state (training; with skipHalted a block runs on the running rows only) or skip the remaining
//        blocks (inference); loss += τ·mean(N + R).
//
// API (used by the trainer, the export and the benchmark):
//   new CognateModel(config: ModelConfigInput, seed: number)   validated with ModelConfigSchema + checkModelConfig
//   model.config: ModelConfig
//   model.memory: LongTermMemory | null                        null when memEnabled = false
//   model.params: ModelParam[]                                 { name (PyTorch export name), variable, linear }
//                                                              in a stable order; `linear` weights are stored
//                                                              [in, out] and exported transposed to [out, in]
//   model.parameterCount(): { total, breakdown }               breakdown by component
//   model.initHalting(p)                                       every halting unit starts at probability p
//   model.forward(tokens [B,T] int32, { training, memory?, onBlock? })
//                                                              → { logits [B,T,V], ponderCost (τ-weighted scalar),
//                                                                 ponder (N + R per position [B,T], or null), meanDepth (number), hidden [B,T,C] (normed final state),
//                                                                 memoryEntries ({ keys, values } [B,H,T,D] or null) }
//        memory: 'bank' (default: read model.memory), 'none' (no read), or MemoryTensors (read these, e.g.
//                entries of earlier segments computed in the same gradient step: gradients then reach them)
//   model.loss(tokens, targets, mask?, { training, memory? })  → { loss = ce + ponderCost, ce, ponderCost (over the mask's positions), ponder, meanDepth,
//                                                                 tokenLosses [B,T] (no tape), hidden, memoryEntries }
//   model.writeMemory(entries, tokenLosses?, mask?)            → { written }  (outside the tape, after the step)
//   model.dispose()
//
// Inside an optimizer's gradient function only `loss` is returned; keep `memoryEntries` and `tokenLosses` with
// tf.keep if they are to feed writeMemory after the step, and dispose them afterwards.
// Parameters that did not influence the loss get no gradient (the memory gate while the bank is empty).
import * as tf from '@tensorflow/tfjs-core';
import { z } from 'zod';
import { checkModelConfig, ModelConfigSchema, type ModelConfig } from '../config';
import { formatZodError } from '../../../common/validation';
import { HaltingAccumulator } from './act';
import { embed } from './embedding';
import {
  addSame,
  applyRotary,
  attention,
  causalMask,
  crossEntropy,
  detach,
  linear,
  reshape,
  rmsNorm,
  rotaryTables,
  rotateHalfMatrix,
  swiglu,
} from './layers';
import { gaussianMatrix, LongTermMemory, type MemoryTensors } from './ltm';
import { Rng } from '../../../common/rng';

export type ModelConfigInput = z.input<typeof ModelConfigSchema>;

export interface ModelParam {
  /** PyTorch-style name used by the export, e.g. model.layers.0.self_attn.q_proj.weight. */
  name: string;
  variable: tf.Variable;
  /** A linear weight: stored [in, out] here, [out, in] in PyTorch. */
  linear: boolean;
}

export interface ForwardOptions {
  /** true: every position runs every block (masked) so ACT stays differentiable; false: halted positions skip blocks. */
  training: boolean;
  /**
   * With ACT while training: run a block only on the positions still running (gathered, then scattered
   * back; gradients flow through the gather) instead of on every position masked. Same values and gradients.
   * Measured at the default sizes (bench/act-skip.ts): 1.3-1.4x faster with 60% of the block-runs halted,
   * break-even at 24%, slower on a small batched model; 'auto' skips a block when at least half the
   * positions have halted before it. Default false (the trainer passes 'auto').
   */
  skipHalted?: boolean | 'auto';
  /**
   * With ACT: the halting units read each state through a stop-gradient, so the ponder cost trains the
   * halting units only and never reshapes the blocks' features to halt sooner. Default false: the gradient
   * flows into the blocks too (Graves 2016). Measured on bench:act's task (PyTorch port, 3 seeds): no better,
   * slightly worse (bench/results/act-port-sweep.json, worseModeVariants).
   */
  haltingDetached?: boolean;
  /**
   * With ACT: ignore halting, run every position through every block and read the last block's state, as
   * the same model with ACT off would (no ponder cost). For training the full-depth path beside ACT's.
   */
  fullDepth?: boolean;
  /**
   * With ACT while training: λ of the straight-through gate that gives a position's halting unit a gradient
   * from the positions reading its state in later blocks (HaltingAccumulator.keep); the forward values are
   * unchanged. Needs every position run through every block, so it overrides skipHalted. Default 0: off.
   */
  haltingReaderGradient?: number;
  /** With haltingReaderGradient: the gate's gradient at the running positions too, not only the halted ones. Default false. */
  haltingReaderGradientRunning?: boolean;
  /** What the memory block reads: the model's bank (default), nothing, or the given entries. */
  memory?: 'bank' | 'none' | MemoryTensors;
  /** Called after each block with its input and output states [B, T, C] and the positions that were still running [B, T] (tests, probes). */
  onBlock?: (info: { layer: number; before: tf.Tensor3D; after: tf.Tensor3D; runningBefore: tf.Tensor2D | null }) => void;
}

export interface ForwardResult {
  logits: tf.Tensor3D;
  /** τ · mean(N + R); 0 when ACT is off. Already part of `loss`. */
  ponderCost: tf.Scalar;
  /** N + R per position [B, T] (part of the tape when training), for a ponder cost weighted otherwise; null when ACT is off. */
  ponder: tf.Tensor2D | null;
  /** Mean blocks run per position. */
  meanDepth: number;
  hidden: tf.Tensor3D;
  /** The memory block's pre-rotary keys and values [B, H, T, D] (part of the tape when training); null without memory. */
  memoryEntries: MemoryEntries | null;
}

export interface MemoryEntries {
  keys: tf.Tensor4D;
  values: tf.Tensor4D;
}

export interface LossResult {
  loss: tf.Scalar;
  ce: tf.Scalar;
  /** τ · mean(N + R) over the positions the mask scores (every position without a mask), as the CE. */
  ponderCost: tf.Scalar;
  /** ForwardResult.ponder. */
  ponder: tf.Tensor2D | null;
  meanDepth: number;
  tokenLosses: tf.Tensor2D;
  hidden: tf.Tensor3D;
  memoryEntries: MemoryEntries | null;
}

interface Block {
  inputNorm: tf.Variable; // [C]
  q: tf.Variable; // [C, C]
  k: tf.Variable;
  v: tf.Variable;
  o: tf.Variable;
  memGate: { w: tf.Variable; b: tf.Variable; logScale: tf.Variable } | null; // [C, H], [H], [H]; the memory block only
  vPrev: tf.Variable | null; // [C, C]; the memory block only: values also see the previous position
  ffnNorm: tf.Variable; // [C]
  gate: tf.Variable; // [C, F]
  up: tf.Variable; // [C, F]
  down: tf.Variable; // [F, C]
  halting: { w: tf.Variable; b: tf.Variable } | null; // [C, 1], [1]; none after the last block
}

/** Validate a model config (defaults filled, unknown keys refused); errors name the field. */
export function parseModelConfig(input: ModelConfigInput): ModelConfig {
  const result = ModelConfigSchema.superRefine((c, ctx) => checkModelConfig(c, ctx)).safeParse(input);
  if (!result.success) throw new Error(`invalid Cognate model config: ${formatZodError(result.error)}`);
  return result.data;
}

let modelCounter = 0;

/** Whether a training forward runs this block on the running rows only (ForwardOptions.skipHalted). */
function skipsHalted(option: ForwardOptions['skipHalted'], running: tf.Tensor2D): boolean {
  if (option !== 'auto') return option === true;
  const flags = running.dataSync() as Float32Array;
  let runningCount = 0;
  for (const f of flags) runningCount += f;
  return runningCount <= flags.length / 2;
}

export class CognateModel {
  readonly config: ModelConfig;
  readonly memory: LongTermMemory | null;
  /** Index of the memory block; -1 without memory. */
  readonly memLayer: number;
  readonly params: ModelParam[] = [];
  private readonly embedTokens: tf.Variable; // [V, C]
  private readonly blocks: Block[] = [];
  private readonly finalNorm: tf.Variable; // [C]
  private readonly lmHead: tf.Variable; // [C, V]
  private readonly rotary: { cos: tf.Tensor2D; sin: tf.Tensor2D; rotateHalf: tf.Tensor2D }; // [maxSeqLen, D], [D, D]
  private readonly masks = new Map<number, tf.Tensor2D>(); // causal masks by T
  private readonly id = ++modelCounter;

  constructor(config: ModelConfigInput, seed: number) {
    const c = (this.config = parseModelConfig(config));
    if (!Number.isSafeInteger(seed)) throw new Error(`seed must be an integer (got ${seed})`);
    const rng = new Rng(seed);
    const std = 0.02;
    const residualStd = std / Math.sqrt(2 * c.nLayers); // GPT-2: residual writes shrink with depth
    const normal = (name: string, shape: number[], s: number, linear = true): tf.Variable =>
      this.param(
        name,
        tf.tensor(
          gaussianMatrix(
            rng,
            shape.reduce((a, b) => a * b, 1),
            s,
          ),
          shape,
        ),
        linear,
      );
    const ones = (name: string, n: number): tf.Variable => this.param(name, tf.ones([n]), false);
    const { dModel: C, dFF: F, vocabSize: V, nHeads: H } = c;
    this.memLayer = c.memEnabled ? (c.memLayer < 0 ? Math.floor(c.nLayers / 2) : c.memLayer) : -1;

    this.embedTokens = normal('model.embed_tokens.weight', [V, C], std, false);
    for (let i = 0; i < c.nLayers; i++) {
      const p = `model.layers.${i}.`;
      const block: Block = {
        inputNorm: ones(`${p}input_layernorm.weight`, C),
        q: normal(`${p}self_attn.q_proj.weight`, [C, C], std),
        k: normal(`${p}self_attn.k_proj.weight`, [C, C], std),
        v: normal(`${p}self_attn.v_proj.weight`, [C, C], std),
        o: normal(`${p}self_attn.o_proj.weight`, [C, C], residualStd),
        // g starts at σ(0) = 0.5: the memory read counts from the first step its bank has entries.
        memGate:
          i === this.memLayer
            ? {
                w: normal(`${p}self_attn.memory_gate.weight`, [C, H], std),
                b: this.param(`${p}self_attn.memory_gate.bias`, tf.zeros([H]), false),
                // Memory logits are τ_h · cos(q, k) with τ_h = exp(logScale_h), starting at 10: sharp enough that the best match dominates its top-k.
                logScale: this.param(`${p}self_attn.memory_log_scale`, tf.fill([H], Math.log(10)), false),
              }
            : null,
        vPrev: i === this.memLayer ? normal(`${p}self_attn.v_prev_proj.weight`, [C, C], std) : null,
        ffnNorm: ones(`${p}post_attention_layernorm.weight`, C),
        gate: normal(`${p}mlp.gate_proj.weight`, [C, F], std),
        up: normal(`${p}mlp.up_proj.weight`, [C, F], std),
        down: normal(`${p}mlp.down_proj.weight`, [F, C], residualStd),
        halting:
          c.actEnabled && i < c.nLayers - 1
            ? {
                w: normal(`${p}halting.weight`, [C, 1], std),
                // p ≈ 1/(2·nLayers) at the start: Σp stays below the threshold, so every position starts at full depth.
                b: this.param(`${p}halting.bias`, tf.fill([1], -Math.log(2 * c.nLayers - 1)), false),
              }
            : null,
      };
      if (block.memGate) {
        // The memory block's query projection starts as a copy of its key projection: a token's query then
        // finds the entries written at the same token from the first step (q·k = |W x|² for equal inputs),
        // so retrieval is right before training and the gradient can shape what the entries carry.
        // Without this, top-k retrieval starts random and the recall benchmark did not learn in 500 steps.
        block.q.assign(block.k);
      }
      this.blocks.push(block);
    }
    this.finalNorm = ones('model.norm.weight', C);
    this.lmHead = normal('lm_head.weight', [C, V], std);
    this.rotary = { ...rotaryTables(c.maxSeqLen, C / c.nHeads), rotateHalf: rotateHalfMatrix(C / c.nHeads) };
    this.memory = c.memEnabled
      ? new LongTermMemory({
          nHeads: H,
          headDim: C / H,
          capacity: c.memCapacity,
          topK: c.memTopK,
          surpriseThreshold: c.memSurpriseThreshold,
        })
      : null;
  }

  private param(name: string, init: tf.Tensor, linear: boolean): tf.Variable {
    const variable = tf.variable(init, true, `cognate${this.id}/${name}`);
    init.dispose();
    this.params.push({ name, variable, linear });
    return variable;
  }

  /**
   * Sets every halting unit's bias so that it starts at halting probability `p` (the constructor's is
   * 1/(2·nLayers)). A small p makes the output Σ p·s of a position that runs every block almost the last
   * block's state alone, so while halting is not trained yet the blocks learn as a plain nLayers-block model.
   */
  initHalting(p: number): void {
    if (!(p > 0 && p < 1)) throw new Error(`initHalting: p must be in (0, 1), got ${p}`);
    tf.tidy(() => {
      for (const block of this.blocks) block.halting?.b.assign(tf.fill([1], Math.log(p / (1 - p))));
    });
  }

  parameterCount(): { total: number; breakdown: Record<string, number> } {
    const breakdown: Record<string, number> = {};
    for (const { name, variable } of this.params) {
      const component =
        /embed_tokens|lm_head/.exec(name)?.[0] ?? /memory_gate|self_attn|mlp|halting|layernorm|norm/.exec(name)?.[0] ?? 'other';
      const key = component.endsWith('norm') ? 'norms' : component;
      breakdown[key] = (breakdown[key] ?? 0) + variable.size;
    }
    return { total: Object.values(breakdown).reduce((a, b) => a + b, 0), breakdown };
  }

  forward(tokens: tf.Tensor2D, opts: ForwardOptions): ForwardResult {
    const c = this.config;
    const [B, T] = tokens.shape;
    if (T > c.maxSeqLen) throw new Error(`sequence length ${T} exceeds maxSeqLen ${c.maxSeqLen}`);
    const cos = this.rotary.cos.slice<tf.Tensor2D>([0, 0], [T, -1]); // [T, D]
    const sin = this.rotary.sin.slice<tf.Tensor2D>([0, 0], [T, -1]);

    let x = embed(this.embedTokens as tf.Tensor2D, tokens) as tf.Tensor3D; // [B, T, C]
    const act = c.actEnabled && !opts.fullDepth ? new HaltingAccumulator([B, T], c.actThreshold) : null;
    const readerGradient = opts.training ? (opts.haltingReaderGradient ?? 0) : 0;
    const source = opts.memory ?? 'bank';
    const bank = !this.memory || source === 'none' ? null : source === 'bank' ? this.memory.tensors(B) : source;
    let memoryEntries: MemoryEntries | null = null;
    for (let layer = 0; layer < c.nLayers; layer++) {
      const block = this.blocks[layer];
      const before = x;
      const runningBefore = act ? act.running : null;
      // tidy: the block's intermediates are freed now, not at the end of the forward (the backward needs only what the ops saved)
      const result = tf.tidy(() => {
        if (block.memGate) {
          // The memory block runs on every position (its entries are written for all of them); halted ones keep their state.
          const out = this.blockForward(block, before, cos, sin, bank);
          return {
            out: act ? act.keep(out.out, before, readerGradient, opts.haltingReaderGradientRunning) : out.out,
            keys: out.entries!.keys,
            values: out.entries!.values,
          };
        }
        if (act && (!opts.training || (!readerGradient && skipsHalted(opts.skipHalted, act.running))))
          return { out: this.blockOnRunningRows(block, before, act.running, cos, sin) }; // halted positions skip the block
        const out = this.blockForward(block, before, cos, sin, null).out;
        return { out: act ? act.keep(out, before, readerGradient, opts.haltingReaderGradientRunning) : out }; // halted positions keep their state
      });
      x = result.out;
      if (result.keys && result.values) memoryEntries = { keys: result.keys, values: result.values };
      if (block.memGate && bank && this.memory && source === 'bank') this.memory.countReads(T * c.nHeads, B);
      opts.onBlock?.({ layer, before, after: x, runningBefore });
      if (act) {
        const isLast = layer === c.nLayers - 1;
        const p = block.halting
          ? linear(opts.haltingDetached ? detach(x) : x, block.halting.w as tf.Tensor2D, block.halting.b as tf.Tensor1D)
              .sigmoid()
              .squeeze<tf.Tensor2D>([2])
          : tf.zeros([B, T]);
        act.step(p as tf.Tensor2D, x, isLast);
        if (!opts.training && !isLast && !act.anyRunning()) break; // every position halted: stop early
      }
    }

    let state = x;
    let ponderCost: tf.Scalar = tf.scalar(0);
    let ponderPerPosition: tf.Tensor2D | null = null;
    let meanDepth = c.nLayers;
    if (act) {
      const { output, ponder, steps } = act.finish();
      state = output;
      ponderCost = ponder.mean().mul(c.ponderCost);
      ponderPerPosition = ponder;
      meanDepth = steps.mean().dataSync()[0];
    }
    const hidden = rmsNorm(state, this.finalNorm as tf.Tensor1D) as tf.Tensor3D; // [B, T, C]
    const logits = linear(hidden, this.lmHead as tf.Tensor2D) as tf.Tensor3D; // [B, T, V]
    return { logits, ponderCost, ponder: ponderPerPosition, meanDepth, hidden, memoryEntries };
  }

  /** The final norm and LM head on any states [B, T, C] → logits [B, T, V], e.g. one block's output (probes). */
  readout(state: tf.Tensor3D): tf.Tensor3D {
    return linear(rmsNorm(state, this.finalNorm as tf.Tensor1D), this.lmHead as tf.Tensor2D) as tf.Tensor3D;
  }

  /**
   * One pre-norm block on every position: x [B, T, C] → [B, T, C]. The memory block also returns its
   * pre-rotary keys and values [B, H, T, D] and, when `bank` has entries, mixes in the kNN memory read.
   */
  private blockForward(
    block: Block,
    x: tf.Tensor3D,
    cos: tf.Tensor2D,
    sin: tf.Tensor2D,
    bank: MemoryTensors | null,
  ): { out: tf.Tensor3D; entries: MemoryEntries | null } {
    const [B, T, C] = x.shape;
    const H = this.config.nHeads;
    const D = C / H;
    const h = rmsNorm(x, block.inputNorm as tf.Tensor1D);
    const project = (w: tf.Variable): tf.Tensor => reshape(linear(h, w as tf.Tensor2D), [B, T, H, D]);
    const toHeads = (t: tf.Tensor): tf.Tensor3D => reshape<tf.Tensor3D>(t.transpose([0, 2, 1, 3]), [B * H, T, D]); // [B·H, T, D]
    const rotate = (t: tf.Tensor): tf.Tensor => applyRotary(t, cos, sin, this.rotary.rotateHalf);
    const qRaw = project(block.q);
    const kRaw = project(block.k);
    let vBT = project(block.v);
    if (block.vPrev) {
      // Value shift: v_t = W_v h_t + W_vp h_{t−1} (h_{−1} = 0 at the segment start). An entry written at a key
      // token then carries the token before it, so "value, key" pairs bind without first learning a
      // previous-token attention head (the recall benchmark did not learn that within 500 steps).
      const hPrev = tf.concat([tf.zeros([B, 1, C]), h.slice([0, 0, 0], [B, T - 1, C])], 1);
      vBT = vBT.add(reshape(linear(hPrev, block.vPrev as tf.Tensor2D), [B, T, H, D]));
    }
    const v = toHeads(vBT);
    let y = attention(toHeads(rotate(qRaw)), toHeads(rotate(kRaw)), v, this.causalMask(T)); // [B·H, T, D]
    let entries: MemoryEntries | null = null;
    if (block.memGate) {
      entries = { keys: reshape<tf.Tensor4D>(toHeads(kRaw), [B, H, T, D]), values: reshape<tf.Tensor4D>(v, [B, H, T, D]) };
      if (bank) {
        const read = this.memoryAttention(toHeads(qRaw), bank, B, block.memGate.logScale); // [B·H, T, D]
        const gate = linear(h, block.memGate.w as tf.Tensor2D, block.memGate.b as tf.Tensor1D).sigmoid(); // [B, T, H]
        let g = gate.transpose([0, 2, 1]).reshape([B * H, T, 1]);
        // A row whose stream is empty (it just started a document) reads nothing: its gate is shut. Slot 0 is in use iff a stream has entries.
        if (bank.mask)
          g = g.mul(
            bank.mask
              .slice([0, 0, 0, 0], [-1, 1, 1, 1])
              .greater(-1)
              .toFloat()
              .reshape([-1, 1, 1])
              .tile([B / bank.mask.shape[0], H, 1])
              .reshape([B * H, 1, 1]),
          );
        y = y.add<tf.Tensor3D>(read.sub(y).mul(g));
      }
    }
    const merged = reshape(reshape(y, [B, H, T, D]).transpose([0, 2, 1, 3]), [B, T, C]); // [B, T, C]
    const out = addSame(x, linear(merged, block.o as tf.Tensor2D));
    return { out: this.feedForward(block, out), entries };
  }

  /**
   * kNN attention over the bank: q [B·H, T, D] (pre-rotary) → [B·H, T, D]. Queries and keys are compared
   * by cosine (normalised, as Memorizing Transformers do for its memory): each query takes the top-k
   * entries of its own row and head (found on detached copies: topk has no gradient), then attends over
   * them with logits τ_h·cos; the gathered keys and values stay on the tape, so entries computed in the
   * same step receive gradients. A bank of one row is shared by every row of the batch.
   */
  private memoryAttention(qIn: tf.Tensor3D, bank: MemoryTensors, B: number, logScale: tf.Variable): tf.Tensor3D {
    const [Bm, H, S, D] = bank.keys.shape;
    if (Bm !== B && Bm !== 1) throw new Error(`memory has ${Bm} rows, the batch ${B}`);
    const T = qIn.shape[1];
    const k = Math.min(this.config.memTopK, S);
    const rows = (t: tf.Tensor): tf.Tensor => (Bm === B ? t : t.tile([B, 1, 1, 1]));
    const unitRows = (t: tf.Tensor): tf.Tensor => t.div(t.square().sum(-1, true).add(1e-12).sqrt());
    const q = unitRows(qIn) as tf.Tensor3D;
    const keys = unitRows(rows(bank.keys).reshape([B * H * S, D])) as tf.Tensor2D;
    const values = rows(bank.values).reshape<tf.Tensor2D>([B * H * S, D]);
    const maskFlat = bank.mask
      ? rows(bank.mask)
          .tile([1, H, 1, 1])
          .reshape<tf.Tensor3D>([B * H, 1, S])
      : null; // [B·H, 1, S]
    let scores: tf.Tensor = tf.matMul(detach(q), detach(keys).reshape([B * H, S, D]), false, true); // [B·H, T, S]
    if (maskFlat) scores = scores.add(maskFlat);
    const { indices } = tf.topk(scores, k); // [B·H, T, k]
    const offsets = tf
      .range(0, B * H, 1, 'int32')
      .mul(tf.scalar(S, 'int32'))
      .reshape([B * H, 1, 1]);
    const flat = indices.add(offsets).reshape<tf.Tensor1D>([-1]); // rows of keys/values
    const kSel = embed(keys, flat).reshape([B * H, T, k, D]); // [B·H, T, k, D]
    const vSel = embed(values, flat).reshape([B * H, T, k, D]);
    const scale = logScale
      .exp()
      .tile([B])
      .reshape([B * H, 1, 1]); // τ of each row's head
    let logits = q.expandDims(2).mul(kSel).sum(-1).mul(scale); // [B·H, T, k]
    if (maskFlat) logits = logits.add(tf.gather(maskFlat.reshape([-1]), flat).reshape([B * H, T, k]));
    const weights = tf.softmax(logits).expandDims(-1); // [B·H, T, k, 1]
    return vSel.mul(weights).sum<tf.Tensor3D>(2);
  }

  /**
   * Inference with ACT: the block runs only on the rows still running; their queries attend to every
   * position's current state (halted ones keep theirs), exactly as in the masked training path.
   */
  private blockOnRunningRows(block: Block, x: tf.Tensor3D, running: tf.Tensor2D, cos: tf.Tensor2D, sin: tf.Tensor2D): tf.Tensor3D {
    const [B, T, C] = x.shape;
    const H = this.config.nHeads;
    const D = C / H;
    const runningFlags = running.dataSync();
    const rows = [...runningFlags.keys()].filter((i) => runningFlags[i] > 0); // flat b·T + t
    if (rows.length === 0) return x; // every position halted (training with skipHalted runs on to the last block)
    if (rows.length === runningFlags.length) return this.blockForward(block, x, cos, sin, null).out;
    const R = rows.length;
    const rowIds = tf.tensor1d(rows, 'int32');
    const rowPositions = tf.tensor1d(
      rows.map((r) => r % T),
      'int32',
    );
    const allPositions = tf.tensor1d(
      [...Array(B * T).keys()].map((r) => r % T),
      'int32',
    );
    const xFlat = x.reshape<tf.Tensor2D>([B * T, C]);
    const h = rmsNorm(xFlat, block.inputNorm as tf.Tensor1D); // [B·T, C]
    const heads = (input: tf.Tensor, w: tf.Variable, positions: tf.Tensor1D | null): tf.Tensor3D => {
      let t = linear(input, w as tf.Tensor2D).reshape([-1, H, D]); // [rows, H, D]
      if (positions) t = applyRotary(t, tf.gather(cos, positions), tf.gather(sin, positions), this.rotary.rotateHalf);
      return t.transpose<tf.Tensor3D>([1, 0, 2]); // [H, rows, D]
    };
    const q = heads(tf.gather(h, rowIds), block.q, rowPositions); // [H, R, D]
    const k = heads(h, block.k, allPositions); // [H, B·T, D]
    const v = heads(h, block.v, null);
    const mask = new Float32Array(R * B * T).fill(-1e9); // a query sees its own sequence up to its position
    rows.forEach((r, i) => {
      const start = Math.floor(r / T) * T;
      mask.fill(0, i * B * T + start, i * B * T + r + 1);
    });
    const y = attention(q, k, v, tf.tensor2d(mask, [R, B * T])); // [H, R, D]
    let out = tf.gather(xFlat, rowIds).add(linear(y.transpose([1, 0, 2]).reshape([R, C]), block.o as tf.Tensor2D)); // [R, C]
    out = this.feedForward(block, out);
    // Scatter back with a gather: row i comes from out (running) or from the old state (halted).
    const source = new Int32Array(B * T).map((_, r) => R + r); // index into concat([out, xFlat])
    rows.forEach((r, i) => (source[r] = i));
    return tf.gather(tf.concat([out, xFlat], 0), tf.tensor1d(source, 'int32')).reshape<tf.Tensor3D>([B, T, C]);
  }

  /** The position-wise SwiGLU sublayer. x [..., C] → [..., C]. */
  private feedForward<X extends tf.Tensor>(block: Block, x: X): X {
    const h = rmsNorm(x, block.ffnNorm as tf.Tensor1D);
    const ffn = linear(swiglu(linear(h, block.gate as tf.Tensor2D), linear(h, block.up as tf.Tensor2D)), block.down as tf.Tensor2D); // [..., F] → [..., C]
    return addSame<X>(x, ffn);
  }

  private causalMask(t: number): tf.Tensor2D {
    let mask = this.masks.get(t);
    if (!mask) {
      mask = tf.keep(causalMask(t));
      this.masks.set(t, mask);
    }
    return mask;
  }

  loss(tokens: tf.Tensor2D, targets: tf.Tensor2D, mask?: tf.Tensor2D, opts: ForwardOptions = { training: true }): LossResult {
    const [B, T] = tokens.shape;
    const { logits, ponderCost, ponder, meanDepth, hidden, memoryEntries } = this.forward(tokens, opts);
    const perToken = crossEntropy(logits, targets) as tf.Tensor2D; // [B, T]
    const weights = mask ? mask.toFloat() : tf.ones([B, T]);
    const scored = weights.sum().maximum(1);
    const ce = perToken.mul(weights).sum().div<tf.Scalar>(scored);
    // With a mask the ponder cost counts the scored positions only, like the CE: forward's averages every
    // position, which would charge depth nobody scores (the padding of a long document's last segment).
    const charged = mask && ponder ? ponder.mul(weights).sum().div<tf.Scalar>(scored).mul<tf.Scalar>(this.config.ponderCost) : ponderCost;
    return {
      loss: ce.add(charged),
      ce,
      ponderCost: charged,
      ponder,
      meanDepth,
      tokenLosses: detach(perToken),
      hidden,
      memoryEntries,
    };
  }

  /** Write a segment's memory entries (forward's memoryEntries) to the bank; tokenLosses [B, T] feed the surprise filter. */
  writeMemory(entries: MemoryEntries, tokenLosses?: tf.Tensor2D, mask?: tf.Tensor2D): { written: number } {
    if (!this.memory) return { written: 0 };
    const maskValues = mask ? tf.tidy(() => mask.toFloat().dataSync() as Float32Array) : undefined;
    const shape = entries.keys.shape;
    return this.memory.write(
      entries.keys.dataSync() as Float32Array,
      entries.values.dataSync() as Float32Array,
      shape,
      tokenLosses?.dataSync() as Float32Array | undefined,
      maskValues,
    );
  }

  dispose(): void {
    for (const { variable } of this.params) variable.dispose();
    this.rotary.cos.dispose();
    this.rotary.sin.dispose();
    this.rotary.rotateHalf.dispose();
    for (const mask of this.masks.values()) mask.dispose();
    this.masks.clear();
    this.memory?.dispose();
  }
}
