// Minimal neural-network building blocks on tfjs-core: named trainable variables with seeded
// initialisation, linear layers, MLPs, layer norm and multi-head self-attention. No tf.layers: every
// parameter is a plain tf.Variable we can count, checkpoint and export by name.
import * as tf from '@tensorflow/tfjs-core';
// tfjs-core alone registers no gradients (the tfjs umbrella package would); training needs them.
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import type { Rng } from '../../../common/rng';

/** How a parameter maps to PyTorch on export: linear weights are stored [in, out] here, [out, in] in torch. */
export type ParamKind = 'linear_weight' | 'bias' | 'other';

export interface Param {
  name: string;
  kind: ParamKind;
  variable: tf.Variable;
}

// tfjs variable names must be unique per process; several networks with the same layout may coexist.
let variableCounter = 0;

/** Owns a network's variables; creation order is the canonical order (checkpoints, exports). */
export class ParamStore {
  readonly params: Param[] = [];

  constructor(private readonly rng: Rng) {}

  private add(name: string, kind: ParamKind, shape: number[], values: Float32Array): tf.Variable {
    if (this.params.some((p) => p.name === name)) throw new Error(`duplicate parameter name ${name}`);
    const variable = tf.variable(tf.tensor(values, shape), true, `agent_${++variableCounter}_${name}`);
    this.params.push({ name, kind, variable });
    return variable;
  }

  /** Normal(0, gain/sqrt(fanIn)) weights, zero bias. Small gains make heads start near uniform / zero. */
  linear(name: string, inSize: number, outSize: number, gain = 1): Linear {
    const w = new Float32Array(inSize * outSize);
    const std = gain / Math.sqrt(inSize);
    for (let i = 0; i < w.length; i++) w[i] = this.rng.normal() * std;
    return new Linear(
      this.add(`${name}.weight`, 'linear_weight', [inSize, outSize], w),
      this.add(`${name}.bias`, 'bias', [outSize], new Float32Array(outSize)),
    );
  }

  /** A free tensor (embedding table, scalar gain) filled with Normal(0, std) or a constant. */
  tensor(name: string, shape: number[], init: { std: number } | { value: number }): tf.Variable {
    const size = shape.reduce((a, b) => a * b, 1);
    const v = new Float32Array(size);
    for (let i = 0; i < size; i++) v[i] = 'std' in init ? this.rng.normal() * init.std : init.value;
    return this.add(name, 'other', shape, v);
  }

  layerNorm(name: string, size: number): LayerNorm {
    return new LayerNorm(
      this.add(`${name}.weight`, 'other', [size], new Float32Array(size).fill(1)),
      this.add(`${name}.bias`, 'bias', [size], new Float32Array(size)),
    );
  }

  count(): number {
    return this.params.reduce((n, p) => n + p.variable.size, 0);
  }
}

export class Linear {
  constructor(
    readonly weight: tf.Variable,
    readonly bias: tf.Variable,
  ) {}

  get outSize(): number {
    return this.weight.shape[1] as number;
  }

  /** x: [..., in] -> [..., out] */
  apply(x: tf.Tensor): tf.Tensor {
    if (x.rank === 2) return tf.add(tf.matMul(x as tf.Tensor2D, this.weight as tf.Tensor2D), this.bias);
    const lead = x.shape.slice(0, -1);
    const flat = tf.reshape<tf.Rank.R2>(x, [-1, x.shape[x.rank - 1]]);
    return tf.reshape(tf.add(tf.matMul(flat, this.weight as tf.Tensor2D), this.bias), [...lead, this.outSize]);
  }
}

export class LayerNorm {
  constructor(
    readonly gain: tf.Variable,
    readonly bias: tf.Variable,
  ) {}

  apply(x: tf.Tensor): tf.Tensor {
    const { mean, variance } = tf.moments(x, -1, true);
    return tf.add(tf.mul(tf.div(tf.sub(x, mean), tf.sqrt(tf.add(variance, 1e-5))), this.gain), this.bias);
  }
}

/** tanh MLP: the hidden layers of every feed-forward trunk. */
export class Mlp {
  readonly layers: Linear[];

  constructor(store: ParamStore, name: string, inSize: number, hidden: number, depth: number) {
    this.layers = Array.from({ length: depth }, (_, i) => store.linear(`${name}.${i}`, i === 0 ? inSize : hidden, hidden, Math.SQRT2));
  }

  apply(x: tf.Tensor): tf.Tensor {
    return this.layers.reduce((h, layer) => tf.tanh(layer.apply(h)), x);
  }
}

/** Pre-norm transformer block: x + MHA(LN(x)), then x + FF(LN(x)). */
export class TransformerBlock {
  private readonly ln1: LayerNorm;
  private readonly qkv: Linear;
  private readonly proj: Linear;
  private readonly ln2: LayerNorm;
  private readonly ff1: Linear;
  private readonly ff2: Linear;

  constructor(
    store: ParamStore,
    name: string,
    width: number,
    private readonly heads: number,
  ) {
    this.ln1 = store.layerNorm(`${name}.ln1`, width);
    this.qkv = store.linear(`${name}.attn.qkv`, width, 3 * width);
    this.proj = store.linear(`${name}.attn.proj`, width, width, 0.5);
    this.ln2 = store.layerNorm(`${name}.ln2`, width);
    this.ff1 = store.linear(`${name}.ff.0`, width, 2 * width, Math.SQRT2);
    this.ff2 = store.linear(`${name}.ff.1`, 2 * width, width, 0.5);
  }

  /** x: [B, W, D]; keyBias: [B, 1, 1, W] additive (0 for real steps, -1e9 for padding). */
  apply(x: tf.Tensor3D, keyBias: tf.Tensor4D): tf.Tensor3D {
    const [b, w, d] = x.shape;
    const h = this.heads;
    const dh = d / h;
    const qkv = this.qkv.apply(this.ln1.apply(x)); // [B, W, 3D]
    const split = (i: number): tf.Tensor4D =>
      tf.transpose<tf.Tensor4D>(tf.reshape(tf.slice(qkv, [0, 0, i * d], [b, w, d]), [b, w, h, dh]), [0, 2, 1, 3]); // [B, H, W, dh]
    const q = tf.reshape<tf.Rank.R3>(split(0), [b * h, w, dh]);
    const k = tf.reshape<tf.Rank.R3>(split(1), [b * h, w, dh]);
    const v = tf.reshape<tf.Rank.R3>(split(2), [b * h, w, dh]);
    const scores = tf.add(tf.reshape(tf.mul(tf.matMul(q, k, false, true), 1 / Math.sqrt(dh)), [b, h, w, w]), keyBias);
    const attn = tf.reshape<tf.Rank.R3>(tf.softmax(scores), [b * h, w, w]);
    const mixed = tf.reshape(tf.transpose(tf.reshape(tf.matMul(attn, v), [b, h, w, dh]), [0, 2, 1, 3]), [b, w, d]);
    const x1 = tf.add<tf.Tensor3D>(x, this.proj.apply(mixed));
    return tf.add<tf.Tensor3D>(x1, this.ff2.apply(tf.relu(this.ff1.apply(this.ln2.apply(x1)))));
  }
}

/** Fixed sinusoidal position encoding [W, D] (no parameters, so any context length fits the budget). */
export function sinusoidalPositions(length: number, width: number): Float32Array {
  const out = new Float32Array(length * width);
  for (let p = 0; p < length; p++) {
    for (let i = 0; i < width; i += 2) {
      const freq = Math.pow(10000, -i / width);
      out[p * width + i] = Math.sin(p * freq);
      if (i + 1 < width) out[p * width + i + 1] = Math.cos(p * freq);
    }
  }
  return out;
}

/** tf.tidy for functions that return plain JS values (read out with dataSync inside). */
export function tidyValue<T>(fn: () => T): T {
  let out: T | undefined;
  tf.tidy(() => {
    out = fn();
  });
  return out as T;
}
