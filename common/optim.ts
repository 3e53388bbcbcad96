// The one optimizer of both pipelines: AdamW (Loshchilov & Hutter 2019; with weightDecay 0 it is plain
// Adam, which the agents use) written with tf ops so the moments are ours to checkpoint, plus the
// gradient plumbing around it: accumulation over micro-batches and global-norm clipping.
import * as tf from '@tensorflow/tfjs-core';
import { fromTensorState, toTensorState, type TensorState } from './tensor-state';

export interface NamedVariable {
  name: string;
  variable: tf.Variable;
}

export interface AdamWSettings {
  beta1: number;
  beta2: number;
  epsilon: number;
  weightDecay: number;
  /**
   * true: AdamW, p <- p - lr * wd * p outside the adaptive update.
   * false: classic Adam with L2, g <- g + wd * p before the moments (torch.optim.Adam's weight_decay).
   */
  decoupled: boolean;
  /** Which parameters decay. Default: matrices and embeddings (rank >= 2), not gains and biases. */
  decays?: (name: string, variable: tf.Variable) => boolean;
}

export interface AdamWState {
  step: number;
  m: Record<string, TensorState>;
  v: Record<string, TensorState>;
}

const decaysMatrices = (_name: string, v: tf.Variable): boolean => v.rank >= 2;

export class AdamW {
  private readonly m = new Map<string, tf.Variable>();
  private readonly v = new Map<string, tf.Variable>();
  /** Updates applied so far; the bias corrections use it. */
  step = 0;

  constructor(
    private readonly params: NamedVariable[],
    readonly settings: AdamWSettings,
  ) {
    const names = new Set<string>();
    for (const p of params) {
      if (names.has(p.name)) throw new Error(`duplicate parameter name "${p.name}"`);
      names.add(p.name);
      // tidy frees the zeros the variables were initialised from (variables themselves survive it)
      this.m.set(
        p.name,
        tf.tidy(() => tf.variable(tf.zerosLike(p.variable), false)),
      );
      this.v.set(
        p.name,
        tf.tidy(() => tf.variable(tf.zerosLike(p.variable), false)),
      );
    }
  }

  /** One update with learning rate `lr`. Parameters without a gradient are left alone (moments and decay included). */
  update(grads: tf.NamedTensorMap, lr: number): void {
    const { beta1, beta2, epsilon, weightDecay, decoupled } = this.settings;
    const decays = this.settings.decays ?? decaysMatrices;
    this.step++;
    const biasCorrection1 = 1 - beta1 ** this.step;
    const sqrtBiasCorrection2 = Math.sqrt(1 - beta2 ** this.step);
    for (const { name, variable: p } of this.params) {
      const g = grads[name];
      if (!g) continue;
      const m = this.m.get(name) as tf.Variable;
      const v = this.v.get(name) as tf.Variable;
      const wd = decays(name, p) ? weightDecay : 0;
      tf.tidy(() => {
        const grad = !decoupled && wd > 0 ? tf.add(g, tf.mul(p, wd)) : g;
        m.assign(tf.add(tf.mul(m, beta1), tf.mul(grad, 1 - beta1)));
        v.assign(tf.add(tf.mul(v, beta2), tf.mul(tf.square(grad), 1 - beta2)));
        const denom = tf.add(tf.div(tf.sqrt(v), sqrtBiasCorrection2), epsilon);
        const decayed = decoupled && wd > 0 ? tf.mul(p, 1 - lr * wd) : p;
        p.assign(tf.sub(decayed, tf.mul(tf.div(m, denom), lr / biasCorrection1)));
      });
    }
  }

  /** The first (m) or second (v) moment of parameter `name`, for checkpoints that store tensors by name. */
  moment(which: 'm' | 'v', name: string): tf.Variable {
    const t = (which === 'm' ? this.m : this.v).get(name);
    if (!t) throw new Error(`AdamW has no parameter "${name}"`);
    return t;
  }

  state(): AdamWState {
    const m: Record<string, TensorState> = {};
    const v: Record<string, TensorState> = {};
    for (const [name, t] of this.m) m[name] = toTensorState(t);
    for (const [name, t] of this.v) v[name] = toTensorState(t);
    return { step: this.step, m, v };
  }

  load(state: AdamWState): void {
    for (const { name, variable } of this.params) {
      for (const [which, saved, mine] of [
        ['m', state.m, this.m],
        ['v', state.v, this.v],
      ] as const) {
        const s = saved[name];
        if (!s) throw new Error(`checkpoint has no AdamW ${which} for parameter "${name}"`);
        if (s.shape.join(',') !== variable.shape.join(',')) {
          throw new Error(`checkpoint AdamW ${which} for "${name}" has shape [${s.shape}] but the parameter is [${variable.shape}]`);
        }
        tf.tidy(() => (mine.get(name) as tf.Variable).assign(fromTensorState(s)));
      }
    }
    this.step = state.step;
  }

  dispose(): void {
    for (const t of [...this.m.values(), ...this.v.values()]) t.dispose();
    this.m.clear();
    this.v.clear();
  }
}

/** sqrt(sum of squares of every gradient), as a JS number (one device sync). */
export function globalNorm(grads: tf.NamedTensorMap): number {
  const parts = Object.values(grads);
  if (parts.length === 0) return 0;
  return Math.sqrt(tf.tidy(() => tf.addN(parts.map((g) => tf.sum(tf.square(g)))).dataSync()[0]));
}

/**
 * Scale all gradients by maxNorm / norm when their global norm exceeds maxNorm. maxNorm 0 disables
 * clipping (it never zeroes gradients). Returns new tensors; the caller still owns `grads`.
 */
export function clipByGlobalNorm(grads: tf.NamedTensorMap, maxNorm: number, norm: number = globalNorm(grads)): tf.NamedTensorMap {
  if (!(maxNorm >= 0)) throw new Error(`maxGradNorm must be >= 0 (got ${maxNorm})`);
  const scale = maxNorm > 0 && norm > maxNorm ? maxNorm / norm : 1;
  const out: tf.NamedTensorMap = {};
  for (const [name, g] of Object.entries(grads)) out[name] = scale === 1 ? g.clone() : tf.tidy(() => tf.mul(g, scale));
  return out;
}

/** Running sum of micro-batch gradients; mean() divides by the count so the step sees the full-batch gradient. */
export class GradientAccumulator {
  private sum: tf.NamedTensorMap = {};
  count = 0;

  /** Adds `grads` (still owned by the caller). */
  add(grads: tf.NamedTensorMap): void {
    for (const [name, g] of Object.entries(grads)) {
      const prev = this.sum[name];
      this.sum[name] = tf.keep(prev ? tf.add(prev, g) : g.clone());
      prev?.dispose();
    }
    this.count++;
  }

  /** The mean gradient; resets the accumulator. The caller owns the result. */
  takeMean(): tf.NamedTensorMap {
    const out: tf.NamedTensorMap = {};
    for (const [name, s] of Object.entries(this.sum)) {
      out[name] = this.count === 1 ? s : tf.tidy(() => tf.div(s, this.count));
      if (this.count !== 1) s.dispose();
    }
    this.sum = {};
    this.count = 0;
    return out;
  }
}
