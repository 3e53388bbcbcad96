// Adaptive Computation Time over depth (Graves 2016, as used per position by the Universal Transformer).
//
// After block n every still-running position emits a halting probability p_n. A position halts at the
// first n where Σ_{m≤n} p_m reaches the threshold (1 − ε), or at the last block; its remainder is
// R = 1 − Σ_{m<n} p_m. The output is the halting-weighted sum Σ_{m<N} p_m·s_m + R·s_N, and the ponder
// cost is N + R (N counts blocks run, R carries the gradient into the halting units).
//
// Which positions halt is a comparison, and tfjs has no gradient for comparisons: the masks are computed
// from detached copies of p and of the running sum, so they enter the tape as constants.
import * as tf from '@tensorflow/tfjs-core';
import { detach } from './layers';

export class HaltingAccumulator {
  /** 1 where the position has not halted yet (constant) [B, T]. */
  running: tf.Tensor2D;
  /** Σ p over the steps that did not halt (differentiable) [B, T]. */
  private cumulative: tf.Tensor2D;
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
    this.remainder = this.remainder.add<tf.Tensor2D>(remainderNow);
    this.steps = this.steps.add<tf.Tensor2D>(this.running);
    this.running = continues;
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
