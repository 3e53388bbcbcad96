// What fine-tuning buys: the same job trained from a parent and from scratch, evaluated on seeded greedy
// episodes every `evalEvery` episodes, reporting the first episode count at which the evaluation success
// rate reaches config.adaptationThreshold. Used by bench/finetune.ts and test/agent-finetune.test.ts.
import path from 'node:path';
import type { AgentArchitecture, AgentForgeConfig } from '../config';
import { readCheckpoint, restoreUnit } from './checkpoint';
import { createEnv, planEnvironments, type EnvVariant } from './envs';
import { inspectAgentParent, loadAgentParent } from './init-from';
import { runAgentForgeDirect } from './run';
import { createPolicy, disposePolicy } from './policies';
import { Rng, hashSeed } from '../../../common/rng';
import { agentJob, evaluate, evaluationVariant, networkSizes, runTraining, type TrainJob } from './train';

export interface AdaptationCurvePoint {
  episode: number;
  successRate: number;
  reward: number;
}

export interface AdaptationRun {
  /** First evaluated episode count with success >= threshold (0: already there before training), or null within the budget. */
  episodesToThreshold: number | null;
  /** The engine's own measure: first training batch (epsilon-sampled) at the threshold. */
  trainingBatchEpisodesToThreshold: number | null;
  curve: AdaptationCurvePoint[];
  episodesRun: number;
  wallSeconds: number;
}

/** Greedy success of the weights the job starts from (the parent's, or runTraining's seeded initialisation). */
function evaluateStart(job: TrainJob, variant: EnvVariant, episodes: number, seed: number): { successRate: number; reward: number } {
  const unit = job.units[0];
  const net = createPolicy(
    unit.architecture,
    networkSizes(job.config),
    new Rng(hashSeed(job.config.seed, 0x1417, 0)),
    createEnv(job.env).spec.horizon,
  );
  try {
    if (job.parent)
      loadAgentParent(
        { ...job.parent, optimizerState: false },
        { meta: { id: unit.id, architecture: unit.architecture, slots: unit.slots, parameterCount: 0 }, net, optimizer: null as never },
      );
    const m = evaluate(job.env, variant, [{ net, slots: unit.slots }], episodes, seed);
    return { successRate: m.successRate, reward: m.reward };
  } finally {
    disposePolicy(net);
  }
}

/** Greedy success of the weights in `checkpointPath` on `evalEpisodes` seeded episodes of `variant`. */
function evaluateCheckpoint(
  job: TrainJob,
  checkpointPath: string,
  variant: EnvVariant,
  episodes: number,
  seed: number,
): { successRate: number; reward: number } {
  const unit = job.units[0];
  const net = createPolicy(unit.architecture, networkSizes(job.config), new Rng(0), createEnv(job.env).spec.horizon);
  try {
    restoreUnit(readCheckpoint(checkpointPath), unit.id, net);
    const m = evaluate(job.env, variant, [{ net, slots: unit.slots }], episodes, seed);
    return { successRate: m.successRate, reward: m.reward };
  } finally {
    disposePolicy(net);
  }
}

/**
 * Evaluate the starting weights, then train `job` (its checkpointEvery is the evaluation interval), evaluating
 * every checkpoint in `variant`; stop once the evaluation reaches the threshold.
 */
export async function trainUntilThreshold(job: TrainJob, variant: EnvVariant, evalEpisodes: number): Promise<AdaptationRun> {
  const started = Date.now();
  const threshold = job.config.adaptationThreshold;
  const seed = hashSeed(job.config.seed, 0xada7);
  const curve: AdaptationCurvePoint[] = [];
  const start = evaluateStart(job, variant, evalEpisodes, seed);
  curve.push({ episode: 0, ...start });
  if (start.successRate >= threshold)
    return {
      episodesToThreshold: 0,
      trainingBatchEpisodesToThreshold: null,
      curve,
      episodesRun: 0,
      wallSeconds: (Date.now() - started) / 1000,
    };
  let reached: number | null = null;
  const result = await runTraining(job, {
    emit: (event) => {
      if (event.type !== 'checkpoint' || reached !== null) return;
      const m = evaluateCheckpoint(job, event.path, variant, evalEpisodes, seed);
      curve.push({ episode: event.episode, ...m });
      if (m.successRate >= threshold) reached = event.episode;
    },
    stopRequested: () => reached !== null,
  });
  return {
    episodesToThreshold: reached,
    trainingBatchEpisodesToThreshold: result.episodesToThreshold,
    curve,
    episodesRun: result.episodesRun,
    wallSeconds: (Date.now() - started) / 1000,
  };
}

export interface FineTuneScenario {
  /** Data dir for the parent's artifacts and every checkpoint. */
  dataDir: string;
  name: string;
  architecture: AgentArchitecture;
  /** Role that places the agent in its environment (see planEnvironments). */
  role: string;
  /** Parent run: trained with this config (mode, budget). */
  parentConfig: AgentForgeConfig;
  /** Child runs (fine-tuned and scratch alike): mode, budget, evaluation interval (checkpointEvery). */
  childConfig: AgentForgeConfig;
  evalEpisodes: number;
}

export interface FineTuneComparison {
  name: string;
  environmentId: string;
  evaluatedVariant: EnvVariant;
  parent: {
    trainingMode: string;
    episodes: number;
    evaluation: { successRate: number; reward: number };
    weightsSha256: string;
    wallSeconds: number;
  };
  fineTuned: AdaptationRun;
  scratch: AdaptationRun;
}

/**
 * Train a parent, publish its artifacts, then run the child config twice on the same seeds: once from the
 * parent (through the same inspect/load path the workflow uses) and once from random weights.
 */
export async function compareFineTuning(s: FineTuneScenario): Promise<FineTuneComparison> {
  const agent = { id: 'agent', architecture: s.architecture, role: s.role };
  const parentSession = `${s.name}-parent`;
  const parentRun = await runAgentForgeDirect({ sessionId: parentSession, config: s.parentConfig, agents: [agent], dataDir: s.dataDir });
  const inspected = inspectAgentParent(s.dataDir, { sessionId: parentSession, agent: agent.id, optimizerState: false });
  const plan = planEnvironments(s.childConfig, [agent]);
  const job = (kind: 'finetune' | 'scratch'): TrainJob => {
    const j = agentJob({
      config: s.childConfig,
      plan,
      agent,
      checkpointDir: path.join(s.dataDir, 'checkpoints', 'agent', `${s.name}-${kind}`, agent.id),
      parent: kind === 'finetune' ? inspected.ref : undefined,
    });
    // From scratch on the changed task: the same starting variant as the fine-tuned run, random weights.
    return kind === 'scratch' ? { ...j, startShifted: s.childConfig.trainingMode === 'behavior_adaptation' } : j;
  };
  const fine = job('finetune');
  const variant = evaluationVariant(createEnv(fine.env), s.childConfig.trainingMode);
  const fineTuned = await trainUntilThreshold(fine, variant, s.evalEpisodes);
  const scratch = await trainUntilThreshold(job('scratch'), variant, s.evalEpisodes);
  const parentMetrics = parentRun.agents[0].metrics!.trained;
  return {
    name: s.name,
    environmentId: fine.env.id,
    evaluatedVariant: variant,
    parent: {
      trainingMode: s.parentConfig.trainingMode,
      episodes: parentRun.agents[0].episodesRun,
      evaluation: { successRate: parentMetrics.successRate, reward: parentMetrics.reward },
      weightsSha256: inspected.ref.weightsSha256,
      wallSeconds: parentRun.wallSeconds,
    },
    fineTuned,
    scratch,
  };
}
