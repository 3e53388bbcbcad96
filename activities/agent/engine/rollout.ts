// Batched lockstep rollouts: B copies of one environment step together, and every network makes ONE
// forward pass per step for all the slots it plays in all copies (the wasm backend has a large
// per-op overhead, so batching is where the speed comes from).
import * as tf from '@tensorflow/tfjs-core';
import { ACTION_COUNT, OBS_SIZE, type MultiAgentEnv } from './envs/types';
import { GOAL_EVERY, actionLimit, type PolicyInput, type PolicyNetwork } from './policies';
import type { Rng } from '../../../common/rng';

/** A network and the environment slots it plays (the same slots in every copy). */
export interface Controller {
  /** null: the slots act uniformly at random (mode 'random' only; the baseline every metric is reported against). */
  net: PolicyNetwork | null;
  slots: number[];
}

/** How actions are chosen: sampled from the epsilon-mixed policy (training), argmax (greedy evaluation), or uniformly at random. */
export type ActMode = 'sample' | 'greedy' | 'random';

/** Extra reward terms of a training mode, added to the scaled environment reward (see train.ts). */
export interface RewardShaping {
  coordination: number;
  delivery: number;
}

/** What one controller saw and did, [step][row] with row = copy * slots.length + k. */
export interface Trajectory {
  steps: number;
  rows: number;
  /** EnvSpec.creditSegment of the environment it came from. */
  segment: number;
  obs: Float32Array; // [T, rows, OBS_SIZE]
  masks: Float32Array; // [T, rows, ACTION_COUNT]
  actions: Int32Array; // [T, rows]
  behaviorLogProb: Float32Array; // [T, rows] log mu(action) (+ log mu(goal) at manager decisions)
  values: Float32Array; // [T, rows]
  goals: Int32Array; // [T, rows] hierarchical sub-goal in force
  goalDecision: Uint8Array; // [T, rows] 1 where the manager chose a new sub-goal
  rewards: Float32Array; // [T, rows] training reward (scaled + shaping)
}

export interface EpisodeStats {
  /** Unscaled environment return per copy. */
  returns: number[];
  success: boolean[];
  coordination: number[];
}

export interface RolloutResult extends EpisodeStats {
  trajectories: Trajectory[];
}

export interface RolloutOptions {
  envs: MultiAgentEnv[];
  controllers: Controller[];
  rng: Rng;
  mode: ActMode;
  /** Probability of a uniformly random valid action in 'sample' mode (config.explorationRate). */
  epsilon: number;
  shaping: RewardShaping;
}

/** The observation window a transformer reads at step t: obs[t-W+1..t], left-padded with zeros. */
export function contextWindow(
  obs: Float32Array,
  rows: number,
  t: number,
  window: number,
  rowSubset?: Int32Array,
): { context: Float32Array; mask: Float32Array } {
  const n = rowSubset ? rowSubset.length : rows;
  const context = new Float32Array(n * window * OBS_SIZE);
  const mask = new Float32Array(n * window);
  for (let k = 0; k < n; k++) {
    const row = rowSubset ? rowSubset[k] : k;
    for (let w = 0; w < window; w++) {
      const step = t - (window - 1 - w);
      if (step < 0) continue;
      const src = (step * rows + row) * OBS_SIZE;
      context.set(obs.subarray(src, src + OBS_SIZE), (k * window + w) * OBS_SIZE);
      mask[k * window + w] = 1;
    }
  }
  return { context, mask };
}

export function goalOneHot(goals: Int32Array, count: number): Float32Array {
  const out = new Float32Array(goals.length * count);
  goals.forEach((g, i) => (out[i * count + g] = 1));
  return out;
}

function sampleMixed(
  logits: Float32Array,
  mask: Float32Array | null,
  offset: number,
  count: number,
  epsilon: number,
  rng: Rng,
): { action: number; logProb: number } {
  let max = -Infinity;
  let valid = 0;
  for (let a = 0; a < count; a++) {
    if (mask && !mask[offset + a]) continue;
    valid++;
    max = Math.max(max, logits[a]);
  }
  const probs = new Float64Array(count);
  let total = 0;
  for (let a = 0; a < count; a++) {
    if (mask && !mask[offset + a]) continue;
    probs[a] = Math.exp(logits[a] - max);
    total += probs[a];
  }
  for (let a = 0; a < count; a++) if (!mask || mask[offset + a]) probs[a] = (1 - epsilon) * (probs[a] / total) + epsilon / valid;
  const action = rng.categorical(probs);
  return { action, logProb: Math.log(probs[action]) };
}

function argmaxValid(logits: Float32Array, mask: Float32Array | null, offset: number, count: number): number {
  let best = -1;
  for (let a = 0; a < count; a++) if ((!mask || mask[offset + a]) && (best < 0 || logits[a] > logits[best])) best = a;
  return best;
}

/** Forward one controller on step t of its trajectory; returns logits/values/goal logits as JS arrays. */
function forwardStep(
  net: PolicyNetwork,
  traj: Trajectory,
  t: number,
  goals: Int32Array,
): { logits: Float32Array; values: Float32Array; goalLogits: Float32Array | null } {
  let result: ReturnType<typeof forwardStep> | undefined;
  tf.tidy(() => {
    const rows = traj.rows;
    const base = t * rows;
    const input: PolicyInput = {
      obs: tf.tensor2d(traj.obs.subarray(base * OBS_SIZE, (base + rows) * OBS_SIZE), [rows, OBS_SIZE]),
      actionLimit: actionLimit(traj.masks.subarray(base * ACTION_COUNT, (base + rows) * ACTION_COUNT)),
    };
    if (net.contextLength > 1) {
      const { context, mask } = contextWindow(traj.obs, rows, t, net.contextLength);
      input.context = tf.tensor3d(context, [rows, net.contextLength, OBS_SIZE]);
      input.contextMask = tf.tensor2d(mask, [rows, net.contextLength]);
    }
    if (net.goalCount > 0) input.goal = tf.tensor2d(goalOneHot(goals, net.goalCount), [rows, net.goalCount]);
    const out = net.forward(input);
    result = {
      logits: out.logits.dataSync() as Float32Array,
      values: out.value.dataSync() as Float32Array,
      goalLogits: out.goalLogits ? (out.goalLogits.dataSync() as Float32Array) : null,
    };
  });
  return result as NonNullable<typeof result>;
}

/** Run one episode in every copy (all copies must be freshly reset by the caller). */
export function rollout({ envs, controllers, rng, mode, epsilon, shaping }: RolloutOptions): RolloutResult {
  const spec = envs[0].spec;
  const copies = envs.length;
  const steps = spec.horizon;
  const n = spec.numAgents;
  const trajectories: Trajectory[] = controllers.map((c) => {
    const rows = copies * c.slots.length;
    return {
      steps,
      rows,
      segment: spec.creditSegment,
      obs: new Float32Array(steps * rows * OBS_SIZE),
      masks: new Float32Array(steps * rows * ACTION_COUNT),
      actions: new Int32Array(steps * rows),
      behaviorLogProb: new Float32Array(steps * rows),
      values: new Float32Array(steps * rows),
      goals: new Int32Array(steps * rows),
      goalDecision: new Uint8Array(steps * rows),
      rewards: new Float32Array(steps * rows),
    };
  });
  const currentGoals = trajectories.map((tr) => new Int32Array(tr.rows));
  const returns = new Array<number>(copies).fill(0);
  const joint = Array.from({ length: copies }, () => new Int32Array(n));

  for (let t = 0; t < steps; t++) {
    controllers.forEach((c, ci) => {
      const tr = trajectories[ci];
      const base = t * tr.rows;
      for (let b = 0; b < copies; b++) {
        c.slots.forEach((slot, k) => {
          const row = base + b * c.slots.length + k;
          envs[b].observe(slot, tr.obs, row * OBS_SIZE);
          envs[b].actionMask(slot, tr.masks, row * ACTION_COUNT);
        });
      }
      const goals = currentGoals[ci];
      let fwd: ReturnType<typeof forwardStep> | null = null;
      const net = c.net;
      if (mode !== 'random') {
        if (!net) throw new Error(`rollout: controller ${ci} has no network; only mode 'random' runs without one`);
        // A manager picks a new sub-goal every GOAL_EVERY steps, then the worker acts on it.
        if (net.goalCount > 0 && t % GOAL_EVERY === 0) {
          const { goalLogits } = forwardStep(net, tr, t, goals);
          for (let r = 0; r < tr.rows; r++) {
            const gl = (goalLogits as Float32Array).subarray(r * net.goalCount, (r + 1) * net.goalCount);
            if (mode === 'greedy') goals[r] = argmaxValid(gl, null, 0, net.goalCount);
            else {
              const s = sampleMixed(gl, null, 0, net.goalCount, epsilon, rng);
              goals[r] = s.action;
              tr.behaviorLogProb[base + r] += s.logProb;
            }
            tr.goalDecision[base + r] = 1;
          }
        }
        fwd = forwardStep(net, tr, t, goals);
      }
      for (let r = 0; r < tr.rows; r++) {
        const i = base + r;
        const maskOffset = i * ACTION_COUNT;
        let action: number;
        if (mode === 'random' || !fwd) {
          const m = tr.masks.subarray(maskOffset, maskOffset + ACTION_COUNT);
          action = rng.categorical(m);
          tr.behaviorLogProb[i] += -Math.log(m.reduce((s, v) => s + v, 0));
        } else {
          const logits = fwd.logits.subarray(r * ACTION_COUNT, (r + 1) * ACTION_COUNT);
          if (mode === 'greedy') action = argmaxValid(logits, tr.masks, maskOffset, ACTION_COUNT);
          else {
            const s = sampleMixed(logits, tr.masks, maskOffset, ACTION_COUNT, epsilon, rng);
            action = s.action;
            tr.behaviorLogProb[i] += s.logProb;
          }
          tr.values[i] = fwd.values[r];
        }
        tr.actions[i] = action;
        tr.goals[i] = goals[r];
        const b = Math.floor(r / c.slots.length);
        joint[b][c.slots[r % c.slots.length]] = action;
      }
    });
    for (let b = 0; b < copies; b++) {
      const res = envs[b].step(joint[b]);
      returns[b] += res.reward;
      const trainingReward =
        (res.reward + (res.shaping ?? 0)) * spec.rewardScale +
        shaping.coordination * res.coordinationSignal +
        shaping.delivery * res.deliverySignal;
      controllers.forEach((c, ci) => {
        const tr = trajectories[ci];
        for (let k = 0; k < c.slots.length; k++) {
          const own = res.agentShaping ? res.agentShaping[c.slots[k]] * spec.rewardScale : 0;
          tr.rewards[t * tr.rows + b * c.slots.length + k] = trainingReward + own;
        }
      });
    }
  }
  const outcomes = envs.map((e) => e.outcome());
  return { trajectories, returns, success: outcomes.map((o) => o.success), coordination: outcomes.map((o) => o.coordination) };
}
