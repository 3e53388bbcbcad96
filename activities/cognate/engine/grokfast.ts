// GrokFast (Lee et al. 2024, "Grokfast: Accelerated Grokking by Amplifying Slow Gradients").
// Treats each parameter's gradient sequence as a signal and amplifies its slow (low-frequency)
// component, which the paper finds drives generalisation:
//   EMA: ema <- alpha * ema + (1 - alpha) * g   (ema starts at the first gradient),   g <- g + lamb * ema
//   MA:  g <- g + lamb * mean(last `window` gradients), applied only once the window is full.
// Runs between computing (and clipping) gradients and the optimizer step.
import * as tf from '@tensorflow/tfjs-core';
import { fromTensorState, toTensorState, type TensorState } from '../../../common/checkpoint';

export type GrokFastMode = 'ema' | 'ma' | 'off';

export interface GrokFastSettings {
  mode: GrokFastMode;
  /** EMA momentum. */
  alpha: number;
  /** Amplification of the slow component. */
  lamb: number;
  /** MA window in steps. */
  window: number;
  /** MA: leave gradients untouched until the window is full (the reference default). */
  warmup: boolean;
}

export interface GrokFastState {
  settings: GrokFastSettings;
  steps: number;
  ema: Record<string, TensorState>;
  queues: Record<string, TensorState[]>;
}

export class GrokFast {
  private readonly ema = new Map<string, tf.Tensor>();
  private readonly queues = new Map<string, tf.Tensor[]>();
  /** Filter applications so far. */
  steps = 0;

  constructor(readonly settings: GrokFastSettings) {
    if (!(settings.alpha >= 0 && settings.alpha < 1)) throw new Error(`grokfast alpha must be in [0, 1) (got ${settings.alpha})`);
    if (!(settings.lamb >= 0)) throw new Error(`grokfast lamb must be >= 0 (got ${settings.lamb})`);
    if (!(Number.isInteger(settings.window) && settings.window >= 1))
      throw new Error(`grokfast window must be a positive integer (got ${settings.window})`);
  }

  /** Returns new filtered gradients; the caller still owns (and disposes) `grads`. */
  apply(grads: tf.NamedTensorMap): tf.NamedTensorMap {
    const { mode, alpha, lamb, window, warmup } = this.settings;
    const out: tf.NamedTensorMap = {};
    for (const [name, g] of Object.entries(grads)) {
      if (mode === 'off' || lamb === 0) {
        out[name] = g.clone();
      } else if (mode === 'ema') {
        const prev = this.ema.get(name);
        const next = tf.keep(prev ? tf.tidy(() => tf.add(tf.mul(prev, alpha), tf.mul(g, 1 - alpha))) : g.clone());
        prev?.dispose();
        this.ema.set(name, next);
        out[name] = tf.tidy(() => tf.add(g, tf.mul(next, lamb)));
      } else {
        const queue = this.queues.get(name) ?? [];
        queue.push(tf.keep(g.clone()));
        if (queue.length > window) queue.shift()?.dispose();
        this.queues.set(name, queue);
        const ready = !warmup || queue.length === window;
        // addN over the queue (not a running sum) so the result does not drift and a resumed run matches exactly.
        out[name] = ready ? tf.tidy(() => tf.add(g, tf.mul(tf.div(tf.addN(queue), queue.length), lamb))) : g.clone();
      }
    }
    this.steps++;
    return out;
  }

  state(): GrokFastState {
    const ema: Record<string, TensorState> = {};
    for (const [name, t] of this.ema) ema[name] = toTensorState(t);
    const queues: Record<string, TensorState[]> = {};
    for (const [name, q] of this.queues) queues[name] = q.map(toTensorState);
    return { settings: { ...this.settings }, steps: this.steps, ema, queues };
  }

  /** Restore a saved filter; its settings must match (a changed filter would not be a resume). */
  load(state: GrokFastState): void {
    const a = state.settings;
    const b = this.settings;
    if (a.mode !== b.mode || a.alpha !== b.alpha || a.lamb !== b.lamb || a.window !== b.window || a.warmup !== b.warmup) {
      throw new Error(`checkpoint GrokFast settings ${JSON.stringify(a)} differ from the configured ${JSON.stringify(b)}`);
    }
    this.dispose();
    for (const [name, s] of Object.entries(state.ema)) this.ema.set(name, tf.keep(fromTensorState(s)));
    for (const [name, q] of Object.entries(state.queues))
      this.queues.set(
        name,
        q.map((s) => tf.keep(fromTensorState(s))),
      );
    this.steps = state.steps;
  }

  /** Float32 values held: 1x parameters for EMA, window x parameters for MA. */
  stateSize(): number {
    let n = 0;
    for (const t of this.ema.values()) n += t.size;
    for (const q of this.queues.values()) for (const t of q) n += t.size;
    return n;
  }

  dispose(): void {
    for (const t of this.ema.values()) t.dispose();
    for (const q of this.queues.values()) for (const t of q) t.dispose();
    this.ema.clear();
    this.queues.clear();
  }
}
