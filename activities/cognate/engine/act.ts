// Adaptive Computation Time over depth (Graves 2016, as used per position by the Universal Transformer).
//
// After block n every still-running position emits a halting probability p_n. A position halts at the
// first n where Σ_{m≤n} p_m reaches the threshold (1 − ε), or at the last block; its remainder is
// R = 1 − Σ_{m<n} p_m. The output is the halting-weighted sum Σ_{m<N} p_m·s_m + R·s_N, and the ponder
// cost is N + R (N counts blocks run, R carries the gradient into the halting units).
//
// Which positions halt is a comparison, and tfjs has no gradient for comparisons: the masks are computed
// from detached copies of p and of the running sum, so they enter the tape as constants.
//
// So a position's halting gets no gradient from the positions that read its state in later blocks: once it
// has halted its state is frozen whatever its p, and with R = 1 − Σ_{m<n} p_m a position halting after block 1
// puts weight 1 on its first state for any p₁ past the threshold. keep() with a reader gradient λ > 0 gives
// it one by a straight-through gate: block n's update reaches the state through g = running + λ·(s − stop(s))
// with s = 1 − Σ_{m<n} p_m over the steps run (the halting step's p included), whose value is the running mask
// and whose gradient is −λ per unit of halting probability, as if the update were scaled by the halting mass
// still left (the Universal Transformer's soft state update). A reader that would have gained from this
// position running on pushes its p down. By default the gate acts at halted positions only: a running one's p
// already gets a gradient through the output mixture.
import * as tf from '@tensorflow/tfjs-core';
import { detach, select } from './layers';

export class HaltingAccumulator {
  /** 1 where the position has not halted yet (constant) [B, T]. */
  running: tf.Tensor2D;
  /** Σ p over the steps that did not halt (differentiable) [B, T]. */
  private cumulative: tf.Tensor2D;
  /** Σ p over every step run, the halting step's included (differentiable) [B, T]: keep()'s surrogate. */
  private spent: tf.Tensor2D;
  private remainder: tf.Tensor2D;
  /** Blocks run per position (constant) [B, T]. */
  private steps: tf.Tensor2D;
  private output: tf.Tensor3D | null = null;

  constructor(
    shape: [number, number],
    private readonly threshold: number,
  ) {
    this.running = tf.ones(shape);
    this.cumulative = tf.zeros(shape);
    this.spent = tf.zeros(shape);
    this.remainder = tf.zeros(shape);
    this.steps = tf.zeros(shape);
  }

  /** Account block n: p [B, T] = halting probability of state [B, T, C]; the last block halts everyone. */
  step(p: tf.Tensor2D, state: tf.Tensor3D, isLast: boolean): void {
    const reachesThreshold = isLast
      ? tf.onesLike(this.running)
      : tf.greaterEqual(detach(this.cumulative).add(detach(p)), this.threshold).toFloat();
    const haltsNow = reachesThreshold.mul<tf.Tensor2D>(this.running);
    const continues = this.running.sub<tf.Tensor2D>(haltsNow);
    const remainderNow = haltsNow.mul<tf.Tensor2D>(tf.scalar(1).sub(this.cumulative)); // R = 1 − Σ_{m<n} p_m
    const weight = p.mul(continues).add(remainderNow); // [B, T]
    const weighted = state.mul<tf.Tensor3D>(weight.expandDims(-1)); // [B, T, C]
    this.output = this.output ? this.output.add<tf.Tensor3D>(weighted) : weighted;
    this.cumulative = this.cumulative.add<tf.Tensor2D>(p.mul(continues));
    this.spent = this.spent.add<tf.Tensor2D>(p.mul(this.running));
    this.remainder = this.remainder.add<tf.Tensor2D>(remainderNow);
    this.steps = this.steps.add<tf.Tensor2D>(this.running);
    this.running = continues;
  }

  /**
   * The next block's state [B, T, C] from its input `before` and its output `after` (both [B, T, C]): `after`
   * where the position still runs, `before` where it has halted. With readerGradient λ > 0 the choice is the
   * straight-through gate above (the same values; a gradient into the halting units) at the halted positions,
   * and with `alsoRunning` at the running ones too (there it adds to the gradient their p gets through the
   * output mixture); with 0 the mask is a constant, as in Graves 2016.
   */
  keep(after: tf.Tensor3D, before: tf.Tensor3D, readerGradient = 0, alsoRunning = false): tf.Tensor3D {
    if (!(readerGradient > 0)) return select(this.running, after, before);
    const surrogate = this.spent.mul<tf.Tensor2D>(-readerGradient); // −λ·Σp: its gradient, not its value, is used
    const straightThrough = surrogate.sub<tf.Tensor2D>(detach(surrogate)); // value 0
    // halted positions only, by default: a running one's p already gets a gradient through the output mixture
    const where = alsoRunning ? straightThrough : straightThrough.mul<tf.Tensor2D>(tf.scalar(1).sub(this.running));
    const gate = this.running.add<tf.Tensor2D>(where); // value: the running mask
    return before.add<tf.Tensor3D>(after.sub(before).mul(gate.expandDims(-1)));
  }

  /** Reads one value from the device. */
  anyRunning(): boolean {
    return this.running.max().dataSync()[0] > 0;
  }

  /** output [B, T, C], ponder N + R [B, T], blocks run per position [B, T]. */
  finish(): { output: tf.Tensor3D; ponder: tf.Tensor2D; steps: tf.Tensor2D } {
    if (!this.output) throw new Error('HaltingAccumulator.finish() before any step');
    return { output: this.output, ponder: this.steps.add<tf.Tensor2D>(this.remainder), steps: this.steps };
  }
}
