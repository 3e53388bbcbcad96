// The RL math shared by every architecture and training mode: PPO with GAE (clipped surrogate on the
// behaviour policy's probabilities, value regression, entropy bonus). The optimizer and gradient
// clipping are the shared ones in common/optim.ts.
import * as tf from '@tensorflow/tfjs-core';

export interface PpoHyperparameters {
  /** Discount of future reward. */
  gamma: number;
  /** GAE lambda: bias/variance trade-off of the advantage estimate. */
  lambda: number;
  /** PPO ratio clip. */
  clip: number;
  /** Passes over each batch of episodes. */
  epochs: number;
  /** Minibatches per pass. */
  minibatches: number;
  /** Weight of the value regression loss. */
  valueCoef: number;
  /** Weight of the entropy bonus (keeps exploring while the message code forms). */
  entropyCoef: number;
  /** Weight of the latent world-model loss (planning, hybrid). */
  modelCoef: number;
  /** Global gradient norm cap (0 disables clipping). */
  maxGradNorm: number;
}

export const PPO_DEFAULTS: PpoHyperparameters = {
  gamma: 0.99,
  lambda: 0.95,
  clip: 0.2,
  epochs: 4,
  minibatches: 4,
  valueCoef: 0.5,
  entropyCoef: 0.01,
  modelCoef: 0.5,
  maxGradNorm: 0.5,
};

/**
 * Generalised advantage estimation for `rows` independent sequences of `steps` steps, stored [step][row].
 * Every sequence ends at its last step (fixed-horizon episodes), so nothing is bootstrapped. `segment`
 * (default: the whole sequence) cuts each sequence into causally independent pieces of that many steps
 * (EnvSpec.creditSegment): returns and advantages stop at a piece's end.
 */
export function computeGae(
  rewards: Float32Array,
  values: Float32Array,
  steps: number,
  rows: number,
  gamma: number,
  lambda: number,
  segment = steps,
): { advantages: Float32Array; returns: Float32Array } {
  const advantages = new Float32Array(steps * rows);
  const returns = new Float32Array(steps * rows);
  for (let r = 0; r < rows; r++) {
    let gae = 0;
    for (let t = steps - 1; t >= 0; t--) {
      const i = t * rows + r;
      const segmentEnd = t + 1 >= steps || (t + 1) % segment === 0;
      if (segmentEnd) gae = 0;
      const nextValue = segmentEnd ? 0 : values[i + rows];
      const delta = rewards[i] + gamma * nextValue - values[i];
      gae = delta + gamma * lambda * gae;
      advantages[i] = gae;
      returns[i] = gae + values[i];
    }
  }
  return { advantages, returns };
}

export function normalize(x: Float32Array): Float32Array {
  let mean = 0;
  for (const v of x) mean += v;
  mean /= x.length;
  let variance = 0;
  for (const v of x) variance += (v - mean) ** 2;
  const std = Math.sqrt(variance / x.length) + 1e-8;
  return x.map((v) => (v - mean) / std);
}

/** Masked log-softmax: invalid actions get -1e9 before normalising (the mask is data, never differentiated). */
export function maskedLogProbs(logits: tf.Tensor2D, maskBias: tf.Tensor2D): tf.Tensor2D {
  return tf.logSoftmax(tf.add(logits, maskBias)) as tf.Tensor2D;
}

/** Log-probability of the taken action (one-hot multiply: no gather, whose gradient the wasm backend lacks) and entropy. */
export function logProbAndEntropy(logProbs: tf.Tensor2D, taken: tf.Tensor2D): { logProb: tf.Tensor1D; entropy: tf.Tensor1D } {
  const logProb = tf.sum<tf.Tensor1D>(tf.mul(logProbs, taken), 1);
  const entropy = tf.neg(tf.sum(tf.mul(tf.exp(logProbs), logProbs), 1)) as tf.Tensor1D;
  return { logProb, entropy };
}

/** PPO clipped surrogate (to maximise), as a loss. `oldLogProb` is the behaviour policy's (epsilon-mixed). */
export function clippedPolicyLoss(logProb: tf.Tensor1D, oldLogProb: tf.Tensor1D, advantages: tf.Tensor1D, clip: number): tf.Scalar {
  const ratio = tf.exp(tf.sub(logProb, oldLogProb));
  const unclipped = tf.mul(ratio, advantages);
  const clipped = tf.mul(tf.clipByValue(ratio, 1 - clip, 1 + clip), advantages);
  return tf.neg(tf.mean(tf.minimum(unclipped, clipped))) as tf.Scalar;
}

export function valueLoss(values: tf.Tensor1D, returns: tf.Tensor1D): tf.Scalar {
  return tf.mean<tf.Scalar>(tf.square(tf.sub(values, returns)));
}
