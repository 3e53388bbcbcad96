// Training and evaluation without Temporal. `runTraining` is what the child process runs for both
// activities (one agent alone, or the team together); tests and benchmarks call it in-process.
//
// Training modes (config.trainingMode) are distinct objectives:
//   task_specialization       one agent, one task family (its environment), full difficulty, task reward.
//   skill_acquisition         curriculum: starts at level 0 (easier variant) and moves up once the batch
//                             success rate reaches adaptationThreshold or the level has used its share of episodes.
//   behavior_adaptation       learn the task, then the environment changes (spec.shiftDescription) and training
//                             continues until the success rate is back at adaptationThreshold; reports the
//                             episodes that took (episodesToThreshold) and stops there.
//   coordination_training     task reward + a coordination bonus (the environment's coordination signal).
//   multi_agent_collaboration the shared task reward only.
//   communication_protocols   task reward + a bonus when a message reaches the agent that must act on it;
//                             agents are placed in the message games.
// In every mode an agent plays every slot of its environment (shared parameters; the slot is in the
// observation). The team phase seats the different agents in the slots of the team environment.
import crypto from 'node:crypto';
import { NonRetryableError } from '../../../common/child';
import type { AgentArchitecture, AgentForgeConfig, TrainingMode } from '../config';
import { compactPairs, weightedMean } from '../../../common/report/series';
import {
  readCheckpoint,
  readLatestCheckpoint,
  restoreUnit,
  saveCheckpoint,
  type HistoryEntry,
  type TrainableUnit,
  type TrainerState,
} from './checkpoint';
import { createEnv, envSettingsFromPlan, type EnvironmentPlan, type EnvSettings, type EnvVariant, type MultiAgentEnv } from './envs';
import { ppoUpdate } from './learner';
import { loadAgentParent, type AgentParentRef } from './init-from';
import { createPolicy, disposePolicy, parameterCount, type NetworkSizes } from './policies';
import { PPO_DEFAULTS, type PpoHyperparameters } from './rl';
import { AdamW } from '../../../common/optim';
import { mean } from '../../../common/stats';
import { backendInfo } from '../../../common/backend';
import { Rng, hashSeed } from '../../../common/rng';
import { rollout, type Controller, type RewardShaping } from './rollout';

export interface EvalMetrics {
  /** Mean unscaled episode return. */
  reward: number;
  successRate: number;
  coordinationScore: number;
  episodes: number;
  /** How actions were chosen: the trained policy's argmax ("greedy") or uniformly among valid actions. */
  policy: 'greedy' | 'uniform random';
}

export interface TrainUnitSpec {
  id: string;
  architecture: AgentArchitecture;
  /** Environment slots this unit plays. */
  slots: number[];
  /** Start from this unit's weights in another checkpoint (team phase: the agent's own training). */
  initFrom?: { checkpointPath: string; unitId: string };
}

/** Everything a training run needs; JSON-serialisable (it crosses the child-process boundary). */
export interface TrainJob {
  kind: 'agent' | 'team';
  /** Progress label: the agent id, or "team". */
  label: string;
  config: AgentForgeConfig;
  env: EnvSettings;
  units: TrainUnitSpec[];
  checkpointDir: string;
  /** Override of the PPO constants (tests). */
  ppo?: Partial<PpoHyperparameters>;
  /** Fine-tuning (kind "agent"): start the unit from this parent's weights (see init-from.ts); only on a fresh start. */
  parent?: AgentParentRef;
  /**
   * behavior_adaptation: train in the changed environment from the first episode (the parent already learned
   * the original task), and count episodesToThreshold from there. Set by agentJob for fine-tuning runs.
   */
  startShifted?: boolean;
  /**
   * Train for at most this long, then checkpoint and return with complete=false (the workflow calls again
   * and training continues from that checkpoint). Unset: train to the end.
   */
  chunkSeconds?: number;
  /**
   * Where the caller expects training to continue from (the previous chunk's last episode; null: from any
   * checkpoint) and the activity attempt: loading a checkpoint elsewhere, or on a retry, is a resume
   * (recorded); a planned continuation is not.
   */
  continuation?: { fromEpisode: number | null; attempt: number };
}

export interface TrainProgress {
  episode: number;
  totalEpisodes: number;
  reward: number;
  successRate: number;
  coordinationScore: number;
  level: number;
  shifted: boolean;
  message: string;
  resumedFromEpisode: number;
}

export type TrainEvent =
  | { type: 'progress'; progress: TrainProgress }
  | { type: 'checkpoint'; episode: number; path: string; seconds?: number }
  | { type: 'warning'; message: string };

export interface TrainResult {
  label: string;
  environmentId: string;
  units: { id: string; architecture: AgentArchitecture; parameterCount: number }[];
  episodesRun: number;
  resumedFromEpisode: number;
  checkpointPath: string;
  /** Null when training stopped early on request (no evaluation was run). */
  metrics: { trained: EvalMetrics; random: EvalMetrics } | null;
  episodesToThreshold: number | null;
  wallSeconds: number;
  stopped: boolean;
  /** Training reached its end (metrics evaluated); false after a stop request or the end of a chunk. */
  complete: boolean;
  /** The tfjs backend and device this ran on (undefined where no backend was initialised through common/backend). */
  backend?: string;
  finalVariant: EnvVariant;
  /** The parent a fine-tuning run started from. */
  parent?: TrainerState['parent'];
}

export interface TrainContext {
  emit(event: TrainEvent): void;
  stopRequested(): boolean;
}

/** Plain Adam (Kingma & Ba defaults, no weight decay): PPO's usual optimizer for small policies. */
const ADAM = { beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weightDecay: 0, decoupled: true } as const;

export const NULL_CONTEXT: TrainContext = { emit: () => undefined, stopRequested: () => false };

export function networkSizes(config: AgentForgeConfig): NetworkSizes {
  return {
    hiddenSize: config.hiddenSize,
    numLayers: config.numLayers,
    numHeads: config.numHeads,
    maxContextLength: config.maxContextLength,
  };
}

export function modeShaping(mode: TrainingMode): RewardShaping {
  return { coordination: mode === 'coordination_training' ? 1 : 0, delivery: mode === 'communication_protocols' ? 0.5 : 0 };
}

/** The fixed variant a finished policy is evaluated in, and the team trains in. */
export function evaluationVariant(env: MultiAgentEnv, mode: TrainingMode): EnvVariant {
  return { level: env.spec.curriculumLevels - 1, shifted: mode === 'behavior_adaptation' };
}

export function makeEnvs(settings: EnvSettings, copies: number, variant: EnvVariant): MultiAgentEnv[] {
  return Array.from({ length: copies }, () => {
    const env = createEnv(settings);
    env.setVariant(variant);
    return env;
  });
}

/**
 * Seeded evaluation episodes, in batches of `batch` lockstep copies. `controllers` null = the uniformly
 * random policy. The seed is independent of training, so trained and random see the same episodes.
 */
export function evaluate(
  settings: EnvSettings,
  variant: EnvVariant,
  controllers: Controller[] | null,
  episodes: number,
  seed: number,
  batch = 32,
): EvalMetrics {
  const rng = new Rng(hashSeed(seed, 0xe7a1));
  let reward = 0;
  let success = 0;
  let coordination = 0;
  for (let done = 0; done < episodes; done += batch) {
    const envs = makeEnvs(settings, Math.min(batch, episodes - done), variant);
    envs.forEach((e) => e.reset(new Rng(rng.nextUint32())));
    const actRng = new Rng(rng.nextUint32());
    const r = controllers
      ? rollout({ envs, controllers, rng: actRng, mode: 'greedy', epsilon: 0, shaping: { coordination: 0, delivery: 0 } })
      : rollout({
          envs,
          controllers: [{ net: null, slots: envs[0].spec.numAgents ? Array.from({ length: envs[0].spec.numAgents }, (_, i) => i) : [] }],
          rng: actRng,
          mode: 'random',
          epsilon: 0,
          shaping: { coordination: 0, delivery: 0 },
        });
    reward += r.returns.reduce((a, b) => a + b, 0);
    success += r.success.filter(Boolean).length;
    coordination += r.coordination.reduce((a, b) => a + b, 0);
  }
  return {
    reward: reward / episodes,
    successRate: success / episodes,
    coordinationScore: coordination / episodes,
    episodes,
    policy: controllers ? 'greedy' : 'uniform random',
  };
}

/** What makes a checkpoint resumable by this job. */
function fingerprintOf(job: TrainJob): string {
  const c = job.config;
  const relevant = {
    kind: job.kind,
    env: job.env,
    units: job.units.map((u) => [u.id, u.architecture, u.slots]),
    sizes: networkSizes(c),
    mode: c.trainingMode,
    seed: c.seed,
    batchSize: c.batchSize,
    learningRate: c.learningRate,
    explorationRate: c.explorationRate,
    adaptationThreshold: c.adaptationThreshold,
    maxEpisodes: c.maxEpisodes,
    ppo: job.ppo ?? null,
    // A fine-tuning run never resumes a fresh run's checkpoint (or another parent's), and vice versa.
    ...(job.parent ? { parent: [job.parent.weightsSha256, job.parent.optimizerState] } : {}),
    ...(job.startShifted ? { startShifted: true } : {}),
  };
  return crypto.createHash('sha256').update(JSON.stringify(relevant)).digest('hex').slice(0, 16);
}

/** Curriculum and behaviour-shift bookkeeping after each batch; returns true when the mode's goal ends training. */
function advanceSchedule(state: TrainerState, mode: TrainingMode, config: AgentForgeConfig, levels: number, batchSuccess: number): boolean {
  const threshold = config.adaptationThreshold;
  if (mode === 'skill_acquisition' && state.level < levels - 1) {
    const levelBudget = config.maxEpisodes / (2 * (levels - 1));
    if (batchSuccess >= threshold || state.episode - state.levelStartEpisode >= levelBudget) {
      state.level++;
      state.levelStartEpisode = state.episode;
    }
    return false;
  }
  if (mode === 'behavior_adaptation') {
    if (!state.shifted) {
      if (batchSuccess >= threshold || state.episode >= config.maxEpisodes / 2) {
        state.shifted = true;
        state.shiftEpisode = state.episode;
      }
      return false;
    }
    if (batchSuccess >= threshold && state.episodesToThreshold === null) {
      state.episodesToThreshold = state.episode - (state.shiftEpisode ?? 0);
      return true;
    }
    return false;
  }
  if (batchSuccess >= threshold && state.episodesToThreshold === null) state.episodesToThreshold = state.episode;
  return false;
}

/** Batch averages: an empty batch cannot happen (batchSize >= 1), so 0 only stands in for "no data". */
const meanOf = (xs: number[]): number => mean(xs) ?? 0;

/** Per-batch history kept in the trainer state (checkpointed): at most this many entries, however long the run. */
const MAX_HISTORY = 2048;

/** Two neighbouring history entries as one: batch-weighted means, the later one's position and schedule. */
function mergeHistory(a: HistoryEntry, b: HistoryEntry): HistoryEntry {
  const wa = a.batches ?? 1;
  const wb = b.batches ?? 1;
  const m = (k: 'reward' | 'successRate' | 'coordinationScore' | 'policyLoss' | 'valueLoss' | 'entropy') =>
    weightedMean(a[k], wa, b[k], wb);
  return {
    ...b,
    reward: m('reward'),
    successRate: m('successRate'),
    coordinationScore: m('coordinationScore'),
    policyLoss: m('policyLoss'),
    valueLoss: m('valueLoss'),
    entropy: m('entropy'),
    batches: wa + wb,
  };
}

/** Train (or resume) the job's units; checkpoint every config.checkpointEvery episodes; evaluate at the end. */
export async function runTraining(job: TrainJob, ctx: TrainContext = NULL_CONTEXT): Promise<TrainResult> {
  const started = Date.now();
  const { config } = job;
  const mode = config.trainingMode;
  const hp: PpoHyperparameters = { ...PPO_DEFAULTS, ...job.ppo };
  const fingerprint = fingerprintOf(job);
  const probe = createEnv(job.env);
  const levels = probe.spec.curriculumLevels;
  const startVariant = (): EnvVariant => ({ level: mode === 'skill_acquisition' ? 0 : levels - 1, shifted: false });
  const teamVariant = job.kind === 'team' ? evaluationVariant(probe, mode) : null;

  // Networks are initialised from a stream of their own so resuming never depends on init draws.
  const units: TrainableUnit[] = job.units.map((u, i) => {
    const net = createPolicy(u.architecture, networkSizes(config), new Rng(hashSeed(config.seed, 0x1417, i)), probe.spec.horizon);
    return {
      meta: { id: u.id, architecture: u.architecture, slots: u.slots, parameterCount: parameterCount(net) },
      net,
      optimizer: new AdamW(
        net.store.params.map((p) => ({ name: p.name, variable: p.variable })),
        ADAM,
      ),
    };
  });
  const fresh = (): TrainerState => ({
    episode: 0,
    rng: new Rng(hashSeed(config.seed, job.kind === 'team' ? 0x7ea3 : 0xa6e7, ...Buffer.from(job.label))).state(),
    level: startVariant().level,
    levelStartEpisode: 0,
    shifted: job.startShifted === true,
    shiftEpisode: job.startShifted ? 0 : null,
    episodesToThreshold: null,
    finished: false,
    history: [],
    resumes: [],
    ...(job.parent
      ? {
          parent: {
            sessionId: job.parent.sessionId,
            agentId: job.parent.agentId,
            dir: job.parent.dir,
            weightsSha256: job.parent.weightsSha256,
            optimizerState: job.parent.optimizerState,
          },
        }
      : {}),
  });

  let state: TrainerState;
  let checkpointPath = '';
  const latest = readLatestCheckpoint(job.checkpointDir, (message) => {
    console.warn(`[agent ${job.label}] ${message}`);
    ctx.emit({ type: 'warning', message });
  });
  const continuing =
    latest !== null &&
    job.continuation !== undefined &&
    job.continuation.attempt === 1 &&
    (job.continuation.fromEpisode === null || latest.meta.trainer.episode === job.continuation.fromEpisode);
  if (latest) {
    if (latest.meta.fingerprint !== fingerprint) {
      throw new NonRetryableError(
        `checkpoint ${latest.path} was written by a different configuration (fingerprint ${latest.meta.fingerprint}, this run ${fingerprint}); use a new sessionId or remove ${job.checkpointDir}`,
      );
    }
    units.forEach((u) => restoreUnit(latest, u.meta.id, u.net, u.optimizer));
    state = latest.meta.trainer;
    if (!continuing) state.resumes.push({ fromEpisode: state.episode, at: new Date().toISOString() });
    checkpointPath = latest.path;
  } else {
    state = fresh();
    for (const [i, u] of job.units.entries()) {
      if (!u.initFrom) continue;
      restoreUnit(readCheckpoint(u.initFrom.checkpointPath), u.initFrom.unitId, units[i].net);
    }
    // Only here, on a fresh start: a retry resumes from this run's own checkpoint above, never the parent.
    if (job.parent) loadAgentParent(job.parent, units[0]);
  }
  const resumedFromEpisode = latest && !continuing ? state.episode : 0;
  let savedEpisode = latest ? state.episode : -1;
  const rng = Rng.fromState(state.rng);
  const controllers: Controller[] = units.map((u) => ({ net: u.net, slots: u.meta.slots }));
  const shaping = modeShaping(mode);
  const variantNow = (): EnvVariant => teamVariant ?? { level: state.level, shifted: state.shifted };
  const save = (): string => {
    state.rng = rng.state();
    const saveStarted = performance.now();
    checkpointPath = saveCheckpoint(job.checkpointDir, { kind: job.kind, fingerprint, environmentId: job.env.id, trainer: state }, units);
    savedEpisode = state.episode;
    ctx.emit({ type: 'checkpoint', episode: state.episode, path: checkpointPath, seconds: (performance.now() - saveStarted) / 1000 });
    return checkpointPath;
  };

  let stopped = false;
  let chunkEnded = false;
  const chunkDeadline = job.chunkSeconds !== undefined ? started + job.chunkSeconds * 1000 : Infinity;
  while (!state.finished && state.episode < config.maxEpisodes) {
    if (ctx.stopRequested()) {
      stopped = true;
      break;
    }
    if (Date.now() >= chunkDeadline) {
      chunkEnded = true;
      break;
    }
    const copies = Math.min(config.batchSize, config.maxEpisodes - state.episode);
    const envs = makeEnvs(job.env, copies, variantNow());
    envs.forEach((e) => e.reset(new Rng(rng.nextUint32())));
    const batch = rollout({ envs, controllers, rng, mode: 'sample', epsilon: config.explorationRate, shaping });
    const stats = units.map((u, i) => ppoUpdate(u.net, u.optimizer, config.learningRate, batch.trajectories[i], hp, rng));
    const before = state.episode;
    state.episode += copies;
    const successRate = batch.success.filter(Boolean).length / copies;
    const entry: HistoryEntry = {
      episode: state.episode,
      reward: meanOf(batch.returns),
      successRate,
      coordinationScore: meanOf(batch.coordination),
      level: variantNow().level,
      shifted: variantNow().shifted,
      policyLoss: meanOf(stats.map((s) => s.policyLoss)),
      valueLoss: meanOf(stats.map((s) => s.valueLoss)),
      entropy: meanOf(stats.map((s) => s.entropy)),
    };
    state.history.push(entry);
    compactPairs(state.history, MAX_HISTORY, mergeHistory);
    if (job.kind === 'agent') state.finished = advanceSchedule(state, mode, config, levels, successRate);
    else if (successRate >= config.adaptationThreshold && state.episodesToThreshold === null) state.episodesToThreshold = state.episode;
    ctx.emit({
      type: 'progress',
      progress: {
        episode: state.episode,
        totalEpisodes: config.maxEpisodes,
        reward: entry.reward,
        successRate,
        coordinationScore: entry.coordinationScore,
        level: entry.level,
        shifted: entry.shifted,
        resumedFromEpisode,
        message: `${job.label}: episode ${state.episode}/${config.maxEpisodes} in ${job.env.id}${entry.shifted ? ' (after the change)' : ''}, success ${successRate.toFixed(2)}`,
      },
    });
    if (Math.floor(state.episode / config.checkpointEvery) > Math.floor(before / config.checkpointEvery)) save();
    // Let the event loop run so a stop request (IPC message) can arrive between updates.
    await new Promise((resolve) => setImmediate(resolve));
  }
  const complete = !stopped && !chunkEnded;
  if (complete) state.finished = true;
  if (state.episode !== savedEpisode || complete) save();

  let metrics: TrainResult['metrics'] = null;
  const finalVariant = teamVariant ?? (job.kind === 'agent' ? evaluationVariant(probe, mode) : variantNow());
  if (complete) {
    const evalSeed = hashSeed(config.seed, 0xe1a1);
    metrics = {
      trained: evaluate(job.env, finalVariant, controllers, config.evalEpisodes, evalSeed),
      random: evaluate(job.env, finalVariant, null, config.evalEpisodes, evalSeed),
    };
  }
  const result: TrainResult = {
    label: job.label,
    environmentId: job.env.id,
    units: units.map((u) => ({ id: u.meta.id, architecture: u.meta.architecture, parameterCount: u.meta.parameterCount })),
    episodesRun: state.episode,
    // The latest resume in the checkpointed record, not only this call's: a call that resumed may be cancelled
    // for a roll-over before it returns, and the workflow would otherwise never hear of that resume.
    resumedFromEpisode: state.resumes.at(-1)?.fromEpisode ?? 0,
    checkpointPath,
    metrics,
    episodesToThreshold: state.episodesToThreshold,
    wallSeconds: (Date.now() - started) / 1000,
    stopped,
    complete,
    backend: currentBackend(),
    finalVariant,
    ...(state.parent ? { parent: state.parent } : {}),
  };
  for (const u of units) {
    u.optimizer.dispose();
    disposePolicy(u.net);
  }
  return result;
}

function currentBackend(): string | undefined {
  try {
    const b = backendInfo();
    return `${b.backend} ${b.device}`;
  } catch {
    return undefined;
  }
}

/** One agent alone in its assigned environment, playing every slot. */
export function agentJob(args: {
  config: AgentForgeConfig;
  plan: EnvironmentPlan;
  agent: { id: string; architecture: AgentArchitecture };
  checkpointDir: string;
  parent?: AgentParentRef;
}): TrainJob {
  const assignment = args.plan.assignments.find((a) => a.agentId === args.agent.id);
  if (!assignment) throw new NonRetryableError(`agent "${args.agent.id}" has no environment in the plan`);
  const env = envSettingsFromPlan(args.plan, assignment.environmentId);
  return {
    kind: 'agent',
    label: args.agent.id,
    config: args.config,
    env,
    units: [{ id: args.agent.id, architecture: args.agent.architecture, slots: Array.from({ length: env.numAgents }, (_, i) => i) }],
    checkpointDir: args.checkpointDir,
    ...(args.parent ? { parent: args.parent, startShifted: args.config.trainingMode === 'behavior_adaptation' } : {}),
  };
}

/** The team in the plan's team environment: slot k is played by teamSlots[k % team size], each starting from its own checkpoint. */
export function teamJob(args: {
  config: AgentForgeConfig;
  plan: EnvironmentPlan;
  agents: { id: string; architecture: AgentArchitecture }[];
  agentCheckpoints: Record<string, string>;
  checkpointDir: string;
}): TrainJob {
  const env = envSettingsFromPlan(args.plan, args.plan.teamEnvironmentId);
  const order = args.plan.teamSlots.filter((id) => args.agents.some((a) => a.id === id));
  if (order.length !== args.agents.length)
    throw new NonRetryableError(
      `the plan's team (${args.plan.teamSlots.join(', ')}) does not match the agents (${args.agents.map((a) => a.id).join(', ')})`,
    );
  const units = order.map((id, k) => {
    const agent = args.agents.find((a) => a.id === id) as { id: string; architecture: AgentArchitecture };
    const slots = Array.from({ length: env.numAgents }, (_, s) => s).filter((s) => s % order.length === k);
    const checkpointPath = args.agentCheckpoints[id];
    return { id, architecture: agent.architecture, slots, initFrom: checkpointPath ? { checkpointPath, unitId: id } : undefined };
  });
  return { kind: 'team', label: 'team', config: args.config, env, units, checkpointDir: args.checkpointDir };
}
