// The five agent architectures. Every one maps the universal observation (OBS_SIZE) to logits over
// ACTION_COUNT actions and a state value, so any agent can sit in any environment slot.
//
// Sizes derive from the config so that the DEFAULT config (hiddenSize 128, numLayers 4, numHeads 8,
// maxContextLength 512) lands every architecture in 10K-100K parameters (test/agent-engine.test.ts holds that range):
//   reactive      MLP: numLayers tanh layers of hiddenSize.
//   transformer   width hiddenSize/4, ceil(numLayers/2) pre-norm blocks, numHeads heads (reduced to a divisor
//                 of the width), attends over the last min(maxContextLength, episode length, MAX_WINDOW)
//                 observations; sinusoidal positions, so the context length costs no parameters. The width
//                 and the window cap keep wasm training affordable: attention cost grows with window^2 and
//                 the episodes here are at most 26 steps anyway.
//   planning      encoder MLP (ceil(numLayers/2) layers of hiddenSize/2) + a learned latent model
//                 z' = tanh(Wz + E[a]), r = w.z' predicting the next encoded observation and the reward of
//                 every action; the policy adds the one-step lookahead Q(a) = r(z,a) + gamma V(z'_a) to its logits.
//   hierarchical  a manager MLP (ceil(numLayers/2) layers of hiddenSize/2) picks one of GOALS sub-goals every
//                 GOAL_EVERY steps; the worker MLP (numLayers-1 layers of hiddenSize) acts on (observation, sub-goal).
//   hybrid        a reactive MLP and a planning branch (both at hiddenSize/2, ceil(numLayers/2) layers) whose
//                 logits are mixed by a learned state-dependent gate g in [0,1].
import * as tf from '@tensorflow/tfjs-core';
import type { AgentArchitecture } from '../config';
import { ACTION_COUNT, OBS_SIZE } from './envs/types';
import { Linear, Mlp, ParamStore, TransformerBlock, sinusoidalPositions, type Param } from './nn';
import type { Rng } from '../../../common/rng';

export const GOALS = 4;
export const GOAL_EVERY = 4;
export const DISCOUNT = 0.99;
/** Longest observation window the transformer attends over (see the header). */
export const MAX_WINDOW = 16;

export interface NetworkSizes {
  hiddenSize: number;
  numLayers: number;
  numHeads: number;
  maxContextLength: number;
}

export interface PolicyInput {
  /** [R, OBS_SIZE] current observations. */
  obs: tf.Tensor2D;
  /** transformer: [R, W, OBS_SIZE] the last W observations (oldest first, zero-padded on the left). */
  context?: tf.Tensor3D;
  /** transformer: [R, W] 1 for real steps, 0 for padding. */
  contextMask?: tf.Tensor2D;
  /** hierarchical: [R, GOALS] one-hot sub-goal the worker follows. */
  goal?: tf.Tensor2D;
  /**
   * planning/hybrid: no action at or above this index is valid anywhere in the batch (see `actionLimit`),
   * so the lookahead skips them (their logits are masked anyway). Omitted = all ACTION_COUNT actions.
   */
  actionLimit?: number;
}

/** One past the highest action any row of `masks` ([rows, ACTION_COUNT]) allows. */
export function actionLimit(masks: Float32Array): number {
  let limit = 1;
  for (let i = 0; i < masks.length; i++) if (masks[i] > 0) limit = Math.max(limit, (i % ACTION_COUNT) + 1);
  return limit;
}

export interface PolicyOutput {
  /** [R, ACTION_COUNT] unmasked logits. */
  logits: tf.Tensor2D;
  /** [R] state value. */
  value: tf.Tensor1D;
  /** hierarchical: [R, GOALS] manager logits. */
  goalLogits?: tf.Tensor2D;
  /** planning/hybrid: what the latent model predicted, for its training loss. */
  model?: { nextLatent: tf.Tensor3D; reward: tf.Tensor2D };
}

export interface PolicyNetwork {
  readonly architecture: AgentArchitecture;
  readonly store: ParamStore;
  /** Observations the network reads per decision (1 = only the current one). */
  readonly contextLength: number;
  /** Sub-goals of the manager (0 = no manager). */
  readonly goalCount: number;
  /** How the sizes were derived, for agent_config.json. */
  readonly sizes: Record<string, number>;
  forward(input: PolicyInput): PolicyOutput;
  /** planning/hybrid: the encoding the latent model's next-state prediction is trained towards. */
  modelTarget?(nextObs: tf.Tensor2D): tf.Tensor2D;
}

const half = (n: number): number => Math.max(4, Math.floor(n / 2));
const halfDepth = (n: number): number => Math.max(1, Math.ceil(n / 2));

/** Policy head starts near-uniform (small gain); value head at unit gain. */
function heads(store: ParamStore, prefix: string, width: number): { policy: Linear; value: Linear } {
  return {
    policy: store.linear(`${prefix}policy_head`, width, ACTION_COUNT, 0.01),
    value: store.linear(`${prefix}value_head`, width, 1, 1),
  };
}

class Reactive implements PolicyNetwork {
  readonly architecture = 'reactive_agent' as const;
  readonly contextLength = 1;
  readonly goalCount = 0;
  readonly sizes: Record<string, number>;
  private readonly trunk: Mlp;
  private readonly head: { policy: Linear; value: Linear };

  constructor(
    readonly store: ParamStore,
    s: NetworkSizes,
  ) {
    this.trunk = new Mlp(store, 'trunk', OBS_SIZE, s.hiddenSize, s.numLayers);
    this.head = heads(store, '', s.hiddenSize);
    this.sizes = { width: s.hiddenSize, layers: s.numLayers };
  }

  forward({ obs }: PolicyInput): PolicyOutput {
    const h = this.trunk.apply(obs);
    return { logits: this.head.policy.apply(h) as tf.Tensor2D, value: tf.reshape<tf.Rank.R1>(this.head.value.apply(h), [-1]) };
  }
}

/** Latent one-step model shared by planning and hybrid: predicts, for every action, the next latent and reward. */
class LatentModel {
  private readonly transition: Linear;
  private readonly actionEmbedding: tf.Variable;
  private readonly rewardHead: Linear;
  /** How strongly the lookahead shapes the logits (learned, starts at 1). */
  private readonly planGain: tf.Variable;

  constructor(
    store: ParamStore,
    prefix: string,
    private readonly width: number,
  ) {
    this.transition = store.linear(`${prefix}model.transition`, width, width);
    this.actionEmbedding = store.tensor(`${prefix}model.action_embedding`, [ACTION_COUNT, width], { std: 0.5 });
    this.rewardHead = store.linear(`${prefix}model.reward_head`, width, 1, 0.1);
    this.planGain = store.tensor(`${prefix}model.plan_gain`, [1], { value: 1 });
  }

  /**
   * z: [R, D] -> lookahead Q [R, A] = r(z,a) + gamma V(z'_a), plus the predictions for the model loss.
   * Only actions below `limit` are imagined (the rest, never valid in this batch, get Q = 0 and are masked):
   * navigation with 3 agents uses 17 of the 64 action slots, so this cuts the model's cost ~4x.
   */
  lookahead(z: tf.Tensor2D, value: Linear, limit = ACTION_COUNT): { q: tf.Tensor2D; nextLatent: tf.Tensor3D; reward: tf.Tensor2D } {
    const r = z.shape[0];
    const k = Math.min(ACTION_COUNT, Math.max(1, limit));
    const pad = (x: tf.Tensor): tf.Tensor =>
      k === ACTION_COUNT
        ? x
        : tf.pad(
            x,
            x.rank === 2
              ? [
                  [0, 0],
                  [0, ACTION_COUNT - k],
                ]
              : [
                  [0, 0],
                  [0, ACTION_COUNT - k],
                  [0, 0],
                ],
          );
    const base = tf.reshape(this.transition.apply(z), [r, 1, this.width]);
    const embedding = k === ACTION_COUNT ? this.actionEmbedding : tf.slice(this.actionEmbedding, [0, 0], [k, this.width]);
    const next = tf.tanh(tf.add(base, tf.reshape(embedding, [1, k, this.width])));
    const reward = tf.reshape(this.rewardHead.apply(next), [r, k]);
    const nextValue = tf.reshape(value.apply(next), [r, k]);
    const q = tf.mul(tf.add(reward, tf.mul(nextValue, DISCOUNT)), this.planGain);
    return { q: pad(q) as tf.Tensor2D, nextLatent: pad(next) as tf.Tensor3D, reward: pad(reward) as tf.Tensor2D };
  }
}

class Planning implements PolicyNetwork {
  readonly architecture = 'planning_agent' as const;
  readonly contextLength = 1;
  readonly goalCount = 0;
  readonly sizes: Record<string, number>;
  private readonly encoder: Mlp;
  private readonly model: LatentModel;
  private readonly head: { policy: Linear; value: Linear };

  constructor(
    readonly store: ParamStore,
    s: NetworkSizes,
  ) {
    const width = half(s.hiddenSize);
    this.encoder = new Mlp(store, 'encoder', OBS_SIZE, width, halfDepth(s.numLayers));
    this.model = new LatentModel(store, '', width);
    this.head = heads(store, '', width);
    this.sizes = { width, encoderLayers: halfDepth(s.numLayers), lookaheadDepth: 1 };
  }

  forward({ obs, actionLimit: limit }: PolicyInput): PolicyOutput {
    const z = this.encoder.apply(obs) as tf.Tensor2D;
    const plan = this.model.lookahead(z, this.head.value, limit);
    return {
      logits: tf.add<tf.Tensor2D>(this.head.policy.apply(z), plan.q),
      value: tf.reshape<tf.Rank.R1>(this.head.value.apply(z), [-1]),
      model: { nextLatent: plan.nextLatent, reward: plan.reward },
    };
  }

  modelTarget(nextObs: tf.Tensor2D): tf.Tensor2D {
    return this.encoder.apply(nextObs) as tf.Tensor2D;
  }
}

class Hybrid implements PolicyNetwork {
  readonly architecture = 'hybrid_agent' as const;
  readonly contextLength = 1;
  readonly goalCount = 0;
  readonly sizes: Record<string, number>;
  private readonly reactive: Mlp;
  private readonly reactivePolicy: Linear;
  private readonly encoder: Mlp;
  private readonly model: LatentModel;
  private readonly planHead: { policy: Linear; value: Linear };
  private readonly gate: Linear;

  constructor(
    readonly store: ParamStore,
    s: NetworkSizes,
  ) {
    const width = half(s.hiddenSize);
    const depth = halfDepth(s.numLayers);
    this.reactive = new Mlp(store, 'reactive.trunk', OBS_SIZE, width, depth);
    this.reactivePolicy = store.linear('reactive.policy_head', width, ACTION_COUNT, 0.01);
    this.encoder = new Mlp(store, 'planning.encoder', OBS_SIZE, width, depth);
    this.model = new LatentModel(store, 'planning.', width);
    this.planHead = heads(store, 'planning.', width);
    this.gate = store.linear('gate', width, 1, 0.1);
    this.sizes = { width, layersPerBranch: depth, lookaheadDepth: 1 };
  }

  forward({ obs, actionLimit: limit }: PolicyInput): PolicyOutput {
    const hr = this.reactive.apply(obs);
    const z = this.encoder.apply(obs) as tf.Tensor2D;
    const plan = this.model.lookahead(z, this.planHead.value, limit);
    const planningLogits = tf.add(this.planHead.policy.apply(z), plan.q);
    const g = tf.sigmoid(this.gate.apply(hr)); // [R,1]: 1 = reactive, 0 = planning
    const logits = tf.add<tf.Tensor2D>(tf.mul(g, this.reactivePolicy.apply(hr)), tf.mul(tf.sub(1, g), planningLogits));
    return {
      logits,
      value: tf.reshape<tf.Rank.R1>(this.planHead.value.apply(z), [-1]),
      model: { nextLatent: plan.nextLatent, reward: plan.reward },
    };
  }

  modelTarget(nextObs: tf.Tensor2D): tf.Tensor2D {
    return this.encoder.apply(nextObs) as tf.Tensor2D;
  }

  /** Mean gate value (share of the reactive branch) on a batch of observations, for behavior_policy.json. */
  gateValue(obs: tf.Tensor2D): tf.Tensor {
    return tf.sigmoid(this.gate.apply(this.reactive.apply(obs)));
  }
}

class Hierarchical implements PolicyNetwork {
  readonly architecture = 'hierarchical_agent' as const;
  readonly contextLength = 1;
  readonly goalCount = GOALS;
  readonly sizes: Record<string, number>;
  private readonly manager: Mlp;
  private readonly managerHead: Linear;
  private readonly worker: Mlp;
  private readonly head: { policy: Linear; value: Linear };

  constructor(
    readonly store: ParamStore,
    s: NetworkSizes,
  ) {
    const managerWidth = half(s.hiddenSize);
    const workerDepth = Math.max(1, s.numLayers - 1);
    this.manager = new Mlp(store, 'manager.trunk', OBS_SIZE, managerWidth, halfDepth(s.numLayers));
    this.managerHead = store.linear('manager.goal_head', managerWidth, GOALS, 0.01);
    this.worker = new Mlp(store, 'worker.trunk', OBS_SIZE + GOALS, s.hiddenSize, workerDepth);
    this.head = heads(store, 'worker.', s.hiddenSize);
    this.sizes = {
      managerWidth,
      managerLayers: halfDepth(s.numLayers),
      workerWidth: s.hiddenSize,
      workerLayers: workerDepth,
      goals: GOALS,
      goalEvery: GOAL_EVERY,
    };
  }

  forward({ obs, goal }: PolicyInput): PolicyOutput {
    if (!goal) throw new Error('hierarchical agent needs the current sub-goal');
    const goalLogits = this.managerHead.apply(this.manager.apply(obs)) as tf.Tensor2D;
    const h = this.worker.apply(tf.concat([obs, goal], 1));
    return { logits: this.head.policy.apply(h) as tf.Tensor2D, value: tf.reshape<tf.Rank.R1>(this.head.value.apply(h), [-1]), goalLogits };
  }
}

class Transformer implements PolicyNetwork {
  readonly architecture = 'transformer_agent' as const;
  readonly goalCount = 0;
  readonly sizes: Record<string, number>;
  private readonly embed: Linear;
  private readonly blocks: TransformerBlock[];
  private readonly lnFinal;
  private readonly head: { policy: Linear; value: Linear };
  private readonly width: number;
  private positionCache = new Map<number, Float32Array>();

  constructor(
    readonly store: ParamStore,
    s: NetworkSizes,
    /** Longest episode of the environments it will see: the window never needs to be longer. */
    horizon: number,
  ) {
    this.width = Math.max(4, Math.floor(s.hiddenSize / 4));
    let heads_ = Math.min(s.numHeads, this.width);
    while (this.width % heads_ !== 0) heads_--;
    const depth = halfDepth(s.numLayers);
    this.contextLength = Math.min(s.maxContextLength, horizon, MAX_WINDOW);
    this.embed = store.linear('embed', OBS_SIZE, this.width);
    this.blocks = Array.from({ length: depth }, (_, i) => new TransformerBlock(store, `blocks.${i}`, this.width, heads_));
    this.lnFinal = store.layerNorm('ln_final', this.width);
    this.head = heads(store, '', this.width);
    this.sizes = { width: this.width, blocks: depth, heads: heads_, contextLength: this.contextLength, ffWidth: 2 * this.width };
  }

  readonly contextLength: number;

  forward({ context, contextMask }: PolicyInput): PolicyOutput {
    if (!context || !contextMask) throw new Error('transformer agent needs its observation context');
    const [b, w] = context.shape;
    let pos = this.positionCache.get(w);
    if (!pos) this.positionCache.set(w, (pos = sinusoidalPositions(w, this.width)));
    let x = tf.add<tf.Tensor3D>(this.embed.apply(context), tf.tensor3d(pos, [1, w, this.width]));
    const keyBias = tf.reshape<tf.Rank.R4>(tf.mul(tf.sub(contextMask, 1), 1e9), [b, 1, 1, w]);
    for (const block of this.blocks) x = block.apply(x, keyBias);
    const last = tf.reshape(tf.slice(this.lnFinal.apply(x), [0, w - 1, 0], [b, 1, this.width]), [b, this.width]);
    return { logits: this.head.policy.apply(last) as tf.Tensor2D, value: tf.reshape<tf.Rank.R1>(this.head.value.apply(last), [-1]) };
  }
}

/** Build an agent network; `horizon` is the longest episode it will act in (caps the transformer's window). */
export function createPolicy(architecture: AgentArchitecture, sizes: NetworkSizes, rng: Rng, horizon: number): PolicyNetwork {
  const store = new ParamStore(rng);
  switch (architecture) {
    case 'reactive_agent':
      return new Reactive(store, sizes);
    case 'planning_agent':
      return new Planning(store, sizes);
    case 'hybrid_agent':
      return new Hybrid(store, sizes);
    case 'hierarchical_agent':
      return new Hierarchical(store, sizes);
    case 'transformer_agent':
      return new Transformer(store, sizes, horizon);
  }
}

export function parameterCount(net: PolicyNetwork): number {
  return net.store.count();
}

export function disposePolicy(net: PolicyNetwork): void {
  for (const p of net.store.params) p.variable.dispose();
}

export type { Param };
