// One PPO update of one network from one batch of lockstep episodes (a Trajectory from rollout.ts).
import * as tf from '@tensorflow/tfjs-core';
import { ACTION_COUNT, OBS_SIZE } from './envs/types';
import { actionLimit, type PolicyInput, type PolicyNetwork } from './policies';
import { clippedPolicyLoss, computeGae, logProbAndEntropy, maskedLogProbs, normalize, valueLoss, type PpoHyperparameters } from './rl';
import { clipByGlobalNorm, globalNorm, type AdamW } from '../../../common/optim';
import type { Rng } from '../../../common/rng';
import { contextWindow, goalOneHot, type Trajectory } from './rollout';

export interface UpdateStats {
  policyLoss: number;
  valueLoss: number;
  entropy: number;
  modelLoss: number;
  gradNorm: number;
}

/** The batch as flat arrays of N = steps * rows samples, plus what the losses need per sample. */
interface Samples {
  n: number;
  obs: Float32Array;
  context: Float32Array | null;
  contextMask: Float32Array | null;
  maskBias: Float32Array;
  masks: Float32Array;
  taken: Float32Array;
  goal: Float32Array | null;
  decision: Float32Array;
  oldLogProb: Float32Array;
  advantages: Float32Array;
  returns: Float32Array;
  nextObs: Float32Array;
  hasNext: Float32Array;
  rewards: Float32Array;
}

function samplesOf(net: PolicyNetwork, tr: Trajectory, hp: PpoHyperparameters): Samples {
  const n = tr.steps * tr.rows;
  const { advantages, returns } = computeGae(tr.rewards, tr.values, tr.steps, tr.rows, hp.gamma, hp.lambda, tr.segment);
  const maskBias = tr.masks.map((m) => (m > 0 ? 0 : -1e9));
  const taken = new Float32Array(n * ACTION_COUNT);
  tr.actions.forEach((a, i) => (taken[i * ACTION_COUNT + a] = 1));
  const nextObs = new Float32Array(n * OBS_SIZE);
  const hasNext = new Float32Array(n);
  const stepSize = tr.rows * OBS_SIZE;
  nextObs.set(tr.obs.subarray(stepSize), 0); // sample i's next observation is sample i + rows
  hasNext.fill(1, 0, (tr.steps - 1) * tr.rows);
  let context: Float32Array | null = null;
  let contextMask: Float32Array | null = null;
  if (net.contextLength > 1) {
    const w = net.contextLength;
    context = new Float32Array(n * w * OBS_SIZE);
    contextMask = new Float32Array(n * w);
    for (let t = 0; t < tr.steps; t++) {
      const win = contextWindow(tr.obs, tr.rows, t, w);
      context.set(win.context, t * tr.rows * w * OBS_SIZE);
      contextMask.set(win.mask, t * tr.rows * w);
    }
  }
  return {
    n,
    obs: tr.obs,
    context,
    contextMask,
    maskBias,
    masks: tr.masks,
    taken,
    goal: net.goalCount > 0 ? goalOneHot(tr.goals, net.goalCount) : null,
    decision: Float32Array.from(tr.goalDecision),
    oldLogProb: tr.behaviorLogProb,
    advantages: normalize(advantages),
    returns,
    nextObs,
    hasNext,
    rewards: tr.rewards,
  };
}

/** Rows `idx` of a flat [N, width] array. */
function pick(src: Float32Array, width: number, idx: number[]): Float32Array {
  const out = new Float32Array(idx.length * width);
  idx.forEach((i, k) => out.set(src.subarray(i * width, (i + 1) * width), k * width));
  return out;
}

/** PPO epochs over the batch, in shuffled minibatches. Mutates the network and the optimiser. */
export function ppoUpdate(
  net: PolicyNetwork,
  optimizer: AdamW,
  learningRate: number,
  tr: Trajectory,
  hp: PpoHyperparameters,
  rng: Rng,
): UpdateStats {
  const s = samplesOf(net, tr, hp);
  const variables = net.store.params.map((p) => p.variable);
  const totals = { policyLoss: 0, valueLoss: 0, entropy: 0, modelLoss: 0, gradNorm: 0 };
  let count = 0;
  const size = Math.ceil(s.n / hp.minibatches);
  for (let epoch = 0; epoch < hp.epochs; epoch++) {
    const order = rng.permutation(s.n);
    for (let start = 0; start < s.n; start += size) {
      const idx = order.slice(start, start + size);
      const m = idx.length;
      tf.tidy(() => {
        const masks = pick(s.masks, ACTION_COUNT, idx);
        const input: PolicyInput = { obs: tf.tensor2d(pick(s.obs, OBS_SIZE, idx), [m, OBS_SIZE]), actionLimit: actionLimit(masks) };
        if (s.context && s.contextMask) {
          const w = net.contextLength;
          input.context = tf.tensor3d(pick(s.context, w * OBS_SIZE, idx), [m, w, OBS_SIZE]);
          input.contextMask = tf.tensor2d(pick(s.contextMask, w, idx), [m, w]);
        }
        if (s.goal) input.goal = tf.tensor2d(pick(s.goal, net.goalCount, idx), [m, net.goalCount]);
        const maskBias = tf.tensor2d(pick(s.maskBias, ACTION_COUNT, idx), [m, ACTION_COUNT]);
        const taken = tf.tensor2d(pick(s.taken, ACTION_COUNT, idx), [m, ACTION_COUNT]);
        const oldLogProb = tf.tensor1d(pick(s.oldLogProb, 1, idx));
        const advantages = tf.tensor1d(pick(s.advantages, 1, idx));
        const returns = tf.tensor1d(pick(s.returns, 1, idx));
        const decision = tf.tensor1d(pick(s.decision, 1, idx));
        const rewards = tf.tensor1d(pick(s.rewards, 1, idx));
        const hasNext = tf.tensor1d(pick(s.hasNext, 1, idx));
        // The model's next-state target is the current encoder's view of the next observation, held
        // fixed during this step (computed outside the gradient, i.e. a stop-gradient).
        const modelTarget = net.modelTarget ? net.modelTarget(tf.tensor2d(pick(s.nextObs, OBS_SIZE, idx), [m, OBS_SIZE])) : null;

        const parts = { policy: 0, value: 0, entropy: 0, model: 0 };
        const { value: loss, grads } = tf.variableGrads(() => {
          const out = net.forward(input);
          let { logProb, entropy } = logProbAndEntropy(maskedLogProbs(out.logits, maskBias), taken);
          if (out.goalLogits && input.goal) {
            // The manager's choice is part of the action wherever it chose a new sub-goal.
            const g = logProbAndEntropy(tf.logSoftmax<tf.Tensor2D>(out.goalLogits), input.goal);
            logProb = tf.add(logProb, tf.mul(g.logProb, decision));
            entropy = tf.add(entropy, tf.mul(g.entropy, decision));
          }
          const policyLoss = clippedPolicyLoss(logProb, oldLogProb, advantages, hp.clip);
          const vLoss = valueLoss(out.value, returns);
          const meanEntropy = tf.mean(entropy);
          let total = tf.sub(tf.add(policyLoss, tf.mul(vLoss, hp.valueCoef)), tf.mul(meanEntropy, hp.entropyCoef));
          if (out.model && modelTarget) {
            const takenNext = tf.sum(tf.mul(out.model.nextLatent, tf.expandDims(taken, 2)), 1);
            const consistency = tf.mean(tf.mul(tf.mean(tf.square(tf.sub(takenNext, modelTarget)), 1), hasNext));
            const rewardError = tf.mean(tf.square(tf.sub(tf.sum(tf.mul(out.model.reward, taken), 1), rewards)));
            const modelLoss = tf.add(consistency, rewardError);
            total = tf.add(total, tf.mul(modelLoss, hp.modelCoef));
            parts.model = (modelLoss.dataSync() as Float32Array)[0];
          }
          parts.policy = policyLoss.dataSync()[0];
          parts.value = vLoss.dataSync()[0];
          parts.entropy = meanEntropy.dataSync()[0];
          return total as tf.Scalar;
        }, variables);
        loss.dispose();
        const named: tf.NamedTensorMap = {};
        for (const p of net.store.params) named[p.name] = grads[p.variable.name];
        const norm = globalNorm(named);
        optimizer.update(clipByGlobalNorm(named, hp.maxGradNorm, norm), learningRate);
        totals.policyLoss += parts.policy;
        totals.valueLoss += parts.value;
        totals.entropy += parts.entropy;
        totals.modelLoss += parts.model;
        totals.gradNorm += norm;
        count++;
      });
    }
  }
  return {
    policyLoss: totals.policyLoss / count,
    valueLoss: totals.valueLoss / count,
    entropy: totals.entropy / count,
    modelLoss: totals.modelLoss / count,
    gradNorm: totals.gradNorm / count,
  };
}
