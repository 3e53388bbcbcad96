// The Cognate model: a decoder-only transformer with adaptive computation over depth and a long-term
// memory, readable top to bottom.
//
//   tokens [B, T] → embedding → N × block → ACT-weighted state → RMSNorm → LM head → logits [B, T, V]
//   block(x) = x + SelfAttn(norm x) (causal, rotary)
//              + Gate · MemAttn(norm ·) (cross-attention over the top-k LTM slots of each position)
//              + SwiGLU(norm ·)
//   ACT: after every block but the last a halting unit p = σ(w·s + b) per position; halted positions keep
//        their state (training) or skip the remaining blocks (inference); loss += τ·mean(N + R).
//
// API (used by the trainer, the export and the benchmark):
//   new CognateModel(config: ModelConfigInput, seed: number)   validated with ModelConfigSchema + checkModelConfig
//   model.config: ModelConfig
//   model.memory: LongTermMemory | null                        null when memEnabled = false
//   model.params: ModelParam[]                                 { name (PyTorch export name), variable, linear }
//                                                              in a stable order; `linear` weights are stored
//                                                              [in, out] and exported transposed to [out, in]
//   model.parameterCount(): { total, breakdown }               breakdown by component
//   model.forward(tokens [B,T] int32, { training, onBlock? })  → { logits [B,T,V], ponderCost (τ-weighted scalar),
//                                                                 meanDepth (number), hidden [B,T,C] (normed final state) }
//   model.loss(tokens, targets, mask?, { training })           → { loss = ce + ponderCost, ce, ponderCost, meanDepth,
//                                                                 tokenLosses [B,T] (no tape), hidden [B,T,C] }
//   model.updateMemory(hidden, tokenLosses, mask?)             → { written }  (outside the tape, after the step)
//   model.dispose()
//
// Inside an optimizer's gradient function only `loss` is returned; keep `hidden` and `tokenLosses` with
// tf.keep if they are to feed updateMemory after the step, and dispose them afterwards.
// Parameters that did not influence the loss get no gradient (the memory read while the bank is empty).
import * as tf from '@tensorflow/tfjs-core';
import { z } from 'zod';
import { checkModelConfig, ModelConfigSchema, type ModelConfig } from '../config';
import { formatZodError } from '../../../common/validation';
import { HaltingAccumulator } from './act';
import { embed } from './embedding';
import { addSame, applyRotary, attention, causalMask, crossEntropy, detach, linear, reshape, rmsNorm, rotaryTables, rotateHalfMatrix, select, swiglu } from './layers';
import { gaussianMatrix, LongTermMemory } from './ltm';
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
  /** Called after each block with its input and output states [B, T, C] and the positions that were still running [B, T] (tests, probes). */
  onBlock?: (info: { layer: number; before: tf.Tensor3D; after: tf.Tensor3D; runningBefore: tf.Tensor2D | null }) => void;
}

export interface ForwardResult {
  logits: tf.Tensor3D;
  /** τ · mean(N + R); 0 when ACT is off. Already part of `loss`. */
  ponderCost: tf.Scalar;
  /** Mean blocks run per position. */
  meanDepth: number;
  hidden: tf.Tensor3D;
}

export interface LossResult {
  loss: tf.Scalar;
  ce: tf.Scalar;
  ponderCost: tf.Scalar;
  meanDepth: number;
  tokenLosses: tf.Tensor2D;
  hidden: tf.Tensor3D;
}

interface Block {
  inputNorm: tf.Variable; // [C]
  q: tf.Variable; // [C, C]
  k: tf.Variable;
  v: tf.Variable;
  o: tf.Variable;
  memory: { norm: tf.Variable; q: tf.Variable; k: tf.Variable; v: tf.Variable; o: tf.Variable; gateW: tf.Variable; gateB: tf.Variable } | null;
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

export class CognateModel {
  readonly config: ModelConfig;
  readonly memory: LongTermMemory | null;
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
      this.param(name, tf.tensor(gaussianMatrix(rng, shape.reduce((a, b) => a * b, 1), s), shape), linear);
    const ones = (name: string, n: number): tf.Variable => this.param(name, tf.ones([n]), false);
    const { dModel: C, dFF: F, dMem: M, vocabSize: V } = c;

    this.embedTokens = normal('model.embed_tokens.weight', [V, C], std, false);
    for (let i = 0; i < c.nLayers; i++) {
      const p = `model.layers.${i}.`;
      const block: Block = {
        inputNorm: ones(`${p}input_layernorm.weight`, C),
        q: normal(`${p}self_attn.q_proj.weight`, [C, C], std),
        k: normal(`${p}self_attn.k_proj.weight`, [C, C], std),
        v: normal(`${p}self_attn.v_proj.weight`, [C, C], std),
        o: normal(`${p}self_attn.o_proj.weight`, [C, C], residualStd),
        memory: c.memEnabled
          ? {
              norm: ones(`${p}memory_layernorm.weight`, C),
              q: normal(`${p}memory_attn.q_proj.weight`, [C, M], std),
              k: normal(`${p}memory_attn.k_proj.weight`, [M, M], std),
              v: normal(`${p}memory_attn.v_proj.weight`, [M, M], std),
              o: normal(`${p}memory_attn.o_proj.weight`, [M, C], residualStd),
              gateW: normal(`${p}memory_attn.gate.weight`, [C, 1], std),
              gateB: this.param(`${p}memory_attn.gate.bias`, tf.zeros([1]), false),
            }
          : null,
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
      this.blocks.push(block);
    }
    this.finalNorm = ones('model.norm.weight', C);
    this.lmHead = normal('lm_head.weight', [C, V], std);
    this.rotary = { ...rotaryTables(c.maxSeqLen, C / c.nHeads), rotateHalf: rotateHalfMatrix(C / c.nHeads) };
    this.memory = c.memEnabled
      ? new LongTermMemory(
          { dModel: C, dMem: M, capacity: c.memCapacity, topK: c.memTopK, surpriseThreshold: c.memSurpriseThreshold, noveltyThreshold: c.memNoveltyThreshold },
          seed + 1,
        )
      : null;
  }

  private param(name: string, init: tf.Tensor, linear: boolean): tf.Variable {
    const variable = tf.variable(init, true, `cognate${this.id}/${name}`);
    init.dispose();
    this.params.push({ name, variable, linear });
    return variable;
  }

  parameterCount(): { total: number; breakdown: Record<string, number> } {
    const breakdown: Record<string, number> = {};
    for (const { name, variable } of this.params) {
      const component =
        /embed_tokens|lm_head/.exec(name)?.[0] ?? /self_attn|memory_attn|mlp|halting|layernorm|norm/.exec(name)?.[0] ?? 'other';
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
    const act = c.actEnabled ? new HaltingAccumulator([B, T], c.actThreshold) : null;
    for (let layer = 0; layer < c.nLayers; layer++) {
      const block = this.blocks[layer];
      const before = x;
      const runningBefore = act ? act.running : null;
      // tidy: the block's intermediates are freed now, not at the end of the forward (the backward needs only what the ops saved)
      x = tf.tidy(() => {
        if (act && !opts.training) return this.blockOnRunningRows(block, before, act.running, cos, sin); // halted positions skip the block
        const out = this.blockForward(block, before, cos, sin);
        return act ? select(act.running, out, before) : out; // halted positions keep their state
      });
      opts.onBlock?.({ layer, before, after: x, runningBefore });
      if (act) {
        const isLast = layer === c.nLayers - 1;
        const p = block.halting ? (linear(x, block.halting.w as tf.Tensor2D, block.halting.b as tf.Tensor1D).sigmoid().squeeze<tf.Tensor2D>([2])) : tf.zeros([B, T]);
        act.step(p as tf.Tensor2D, x, isLast);
        if (!opts.training && !isLast && !act.anyRunning()) break; // every position halted: stop early
      }
    }

    let state = x;
    let ponderCost: tf.Scalar = tf.scalar(0);
    let meanDepth = c.nLayers;
    if (act) {
      const { output, ponder, steps } = act.finish();
      state = output;
      ponderCost = ponder.mean().mul(c.ponderCost);
      meanDepth = steps.mean().dataSync()[0];
    }
    const hidden = rmsNorm(state, this.finalNorm as tf.Tensor1D) as tf.Tensor3D; // [B, T, C]
    const logits = linear(hidden, this.lmHead as tf.Tensor2D) as tf.Tensor3D; // [B, T, V]
    return { logits, ponderCost, meanDepth, hidden };
  }

  /** One pre-norm block on every position: x [B, T, C] → [B, T, C]. */
  private blockForward(block: Block, x: tf.Tensor3D, cos: tf.Tensor2D, sin: tf.Tensor2D): tf.Tensor3D {
    const [B, T, C] = x.shape;
    const H = this.config.nHeads;
    const D = C / H;
    const h = rmsNorm(x, block.inputNorm as tf.Tensor1D);
    const heads = (w: tf.Variable, rotate: boolean): tf.Tensor3D => {
      let t = reshape(linear(h, w as tf.Tensor2D), [B, T, H, D]);
      if (rotate) t = applyRotary(t, cos, sin, this.rotary.rotateHalf);
      return reshape<tf.Tensor3D>(t.transpose([0, 2, 1, 3]), [B * H, T, D]); // [B·H, T, D]
    };
    const y = attention(heads(block.q, true), heads(block.k, true), heads(block.v, false), this.causalMask(T)); // [B·H, T, D]
    const merged = reshape(reshape(y, [B, H, T, D]).transpose([0, 2, 1, 3]), [B, T, C]); // [B, T, C]
    let out = addSame(x, linear(merged, block.o as tf.Tensor2D));
    out = this.memoryAndFeedForward(block, out);
    return out;
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
    if (rows.length === runningFlags.length) return this.blockForward(block, x, cos, sin);
    const R = rows.length;
    const rowIds = tf.tensor1d(rows, 'int32');
    const rowPositions = tf.tensor1d(rows.map((r) => r % T), 'int32');
    const allPositions = tf.tensor1d([...Array(B * T).keys()].map((r) => r % T), 'int32');
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
    out = this.memoryAndFeedForward(block, out);
    // Scatter back with a gather: row i comes from out (running) or from the old state (halted).
    const source = new Int32Array(B * T).map((_, r) => R + r); // index into concat([out, xFlat])
    rows.forEach((r, i) => (source[r] = i));
    return tf.gather(tf.concat([out, xFlat], 0), tf.tensor1d(source, 'int32')).reshape<tf.Tensor3D>([B, T, C]);
  }

  /** The two position-wise sublayers: gated memory read, then SwiGLU. x [..., C] → [..., C]. */
  private memoryAndFeedForward<X extends tf.Tensor>(block: Block, x: X): X {
    let out: tf.Tensor = x;
    if (block.memory && this.memory) {
      const read = this.memoryRead(block.memory, rmsNorm(out, block.memory.norm as tf.Tensor1D));
      if (read) out = addSame(out, read);
    }
    const h = rmsNorm(out, block.ffnNorm as tf.Tensor1D);
    const ffn = linear(swiglu(linear(h, block.gate as tf.Tensor2D), linear(h, block.up as tf.Tensor2D)), block.down as tf.Tensor2D); // [..., F] → [..., C]
    return addSame(out, ffn) as X;
  }

  /**
   * Gated cross-attention over each position's top-k memories. h [..., C] → [..., C], or null while the
   * bank is empty. Retrieval uses detached values, so gradients reach q/k/v/o and the gate, not the bank.
   */
  private memoryRead(m: NonNullable<Block['memory']>, h: tf.Tensor): tf.Tensor | null {
    const C = this.config.dModel;
    const M = this.config.dMem;
    const rows = reshape<tf.Tensor2D>(h, [-1, C]); // [N, C]
    const q = linear(rows, m.q as tf.Tensor2D) as tf.Tensor2D; // [N, M]
    // logit_i = q · (key_i W_k) = (q W_kᵀ) · key_i: search the bank with q W_kᵀ to get the top-k logits exactly.
    const searchQuery = tf.matMul<tf.Tensor2D>(detach(q), detach(m.k as tf.Tensor2D).transpose()); // [N, M]
    const retrieved = this.memory!.retrieve(searchQuery);
    if (!retrieved) return null;
    const keys = linear(retrieved.keys, m.k as tf.Tensor2D); // [N, k, M]
    const values = linear(retrieved.values, m.v as tf.Tensor2D); // [N, k, M]
    const logits = q.expandDims(1).mul(keys).sum(-1).div(Math.sqrt(M)); // [N, k]
    const weights = tf.softmax(logits).expandDims(-1); // [N, k, 1]
    const read = linear(values.mul(weights).sum(1), m.o as tf.Tensor2D); // [N, C]
    const gate = linear(rows, m.gateW as tf.Tensor2D, m.gateB as tf.Tensor1D).sigmoid(); // [N, 1]
    return reshape(read.mul(gate), h.shape);
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
    const { logits, ponderCost, meanDepth, hidden } = this.forward(tokens, opts);
    const perToken = crossEntropy(logits, targets) as tf.Tensor2D; // [B, T]
    const weights = mask ? mask.toFloat() : tf.ones([B, T]);
    const ce = perToken.mul(weights).sum().div<tf.Scalar>(weights.sum().maximum(1));
    return { loss: ce.add(ponderCost), ce, ponderCost, meanDepth, tokenLosses: detach(perToken), hidden };
  }

  updateMemory(hidden: tf.Tensor3D, tokenLosses: tf.Tensor2D, mask?: tf.Tensor2D): { written: number } {
    if (!this.memory) return { written: 0 };
    const maskValues = mask ? tf.tidy(() => mask.toFloat().dataSync() as Float32Array) : undefined;
    const { written } = this.memory.write(hidden.dataSync() as Float32Array, tokenLosses.dataSync() as Float32Array, maskValues);
    return { written };
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
