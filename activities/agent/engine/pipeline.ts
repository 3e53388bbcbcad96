// The Agent Forge pipeline's steps as plain functions, shared by the Temporal activities (which only wire
// them to heartbeats, signals and failures) and by runAgentForgeDirect (the same run without Temporal):
// environment planning with its smoke test, the job for each training activity, the summaries the
// workflow receives, and the artifact job built from them. Bad input throws NonRetryableError.
import type { AgentParentRef } from './init-from';
import fs from 'node:fs';
import path from 'node:path';
import { NonRetryableError } from '../../../common/child';
import { checkpointDir, sessionDir } from '../../../common/paths';
import type { AgentArchitecture, AgentForgeConfig, AgentSpec } from '../config';
import type { ArtifactAgentInput, ArtifactJob } from './artifacts';
import { ACTION_COUNT, OBS_SIZE, createEnv, envSettingsFromPlan, planEnvironments, type EnvironmentPlan } from './envs';
import { Rng, hashSeed } from '../../../common/rng';
import { agentJob, evaluationVariant, teamJob, type EvalMetrics, type TrainJob, type TrainResult } from './train';

export interface ResolvedAgent {
  id: string;
  architecture: AgentArchitecture;
  role?: string;
}

export interface EnvironmentSummary {
  id: string;
  type: 'simulation' | 'interactive';
  name: string;
  description: string;
  observationSize: number;
  actionCount: number;
  numAgents: number;
  successCriterion: string;
  coordinationScoreDefinition: string;
}

export interface PreparedEnvironments {
  planPath: string;
  environments: EnvironmentSummary[];
  assignments: EnvironmentPlan['assignments'];
  teamEnvironmentId: string;
}

export interface AgentTrainingSummary {
  agentId: string;
  architecture: AgentArchitecture;
  parameterCount: number;
  environmentId: string;
  episodesRun: number;
  resumedFromEpisode: number;
  checkpointPath: string;
  metrics: { trained: EvalMetrics; random: EvalMetrics };
  episodesToThreshold: number | null;
  wallSeconds: number;
  /** Present on summaries of finished training (chunks in progress are TrainingChunk). */
  complete?: true;
  /** The tfjs backend and device that trained it. */
  backend?: string;
}

export interface CoordinationSummary {
  unit: 'team';
  environmentId: string;
  coordinationStrategy: AgentForgeConfig['coordinationStrategy'];
  /** Environment slots each agent played. */
  slots: Record<string, number[]>;
  episodesRun: number;
  resumedFromEpisode: number;
  checkpointPath: string;
  /** Where each agent's weights after coordination are (the team checkpoint holds all of them). */
  agentCheckpoints: Record<string, string>;
  /** Team evaluation (greedy) and the uniformly random team on the same seeded episodes. */
  trained: EvalMetrics;
  random: EvalMetrics;
  episodesToThreshold: number | null;
  wallSeconds: number;
  complete?: true;
}

/** A training activity that ended its time budget before training ended: the next call continues from `checkpointPath`. */
export interface TrainingChunk {
  unit: string;
  complete: false;
  episodesRun: number;
  /** Episode of a resume after a crash or restart in this chunk (0: none). */
  resumedFromEpisode: number;
  checkpointPath: string;
  /** The tfjs backend and device that trained this chunk. */
  backend?: string;
}

export function resolveAgent(agent: AgentSpec, config: AgentForgeConfig): ResolvedAgent {
  return { id: agent.id, architecture: agent.architecture ?? config.agentArchitecture, role: agent.role };
}

export function planFile(dataDir: string, sessionId: string): string {
  return path.join(checkpointDir(dataDir, 'agent', sessionId, 'environments'), 'plan.json');
}

export function unitCheckpointDir(dataDir: string, sessionId: string, unit: string): string {
  return checkpointDir(dataDir, 'agent', sessionId, unit);
}

export function readPlan(planPath: string): EnvironmentPlan {
  try {
    return JSON.parse(fs.readFileSync(planPath, 'utf8')) as EnvironmentPlan;
  } catch (e) {
    throw new NonRetryableError(`environment plan ${planPath} cannot be read: ${(e as Error).message}`);
  }
}

/** Every environment must step: a few seeded random episodes, checking observations and action masks. */
export function smokeTestEnvironments(plan: EnvironmentPlan, seed: number): Record<string, { episodes: number; meanReturn: number }> {
  const smoke: Record<string, { episodes: number; meanReturn: number }> = {};
  for (const { settings } of plan.environments) {
    const env = createEnv(settings);
    const rng = new Rng(hashSeed(seed, 0x5e7));
    const obs = new Float32Array(OBS_SIZE);
    const mask = new Float32Array(ACTION_COUNT);
    let total = 0;
    for (let e = 0; e < 4; e++) {
      env.reset(rng);
      for (let t = 0; t < env.spec.horizon; t++) {
        const actions = Array.from({ length: settings.numAgents }, (_, i) => {
          env.observe(i, obs, 0);
          env.actionMask(i, mask, 0);
          if (!obs.every(Number.isFinite) || !mask.some((m) => m > 0))
            throw new NonRetryableError(`environment ${settings.id} produced an invalid observation or no valid action`);
          return rng.categorical(mask);
        });
        total += env.step(actions).reward;
      }
      env.outcome();
    }
    smoke[settings.id] = { episodes: 4, meanReturn: total / 4 };
  }
  return smoke;
}

export function summarizeEnvironments(plan: EnvironmentPlan): EnvironmentSummary[] {
  return plan.environments.map(({ spec }) => ({
    id: spec.id,
    type: spec.type,
    name: spec.name,
    description: spec.description,
    observationSize: spec.observationSize,
    actionCount: spec.actionCount,
    numAgents: spec.numAgents,
    successCriterion: spec.successCriterion,
    coordinationScoreDefinition: spec.coordinationScoreDefinition,
  }));
}

/** Plan, smoke-test and write the environment plan (the first step of a run). */
export function prepareEnvironments(args: {
  dataDir: string;
  sessionId: string;
  config: AgentForgeConfig;
  agents: ResolvedAgent[];
  write: (file: string, value: unknown) => void;
}): PreparedEnvironments & { plan: EnvironmentPlan } {
  let plan: EnvironmentPlan;
  try {
    plan = planEnvironments(args.config, args.agents);
  } catch (e) {
    throw new NonRetryableError((e as Error).message);
  }
  const smokeTest = smokeTestEnvironments(plan, args.config.seed);
  const planPath = planFile(args.dataDir, args.sessionId);
  args.write(planPath, { ...plan, smokeTest, createdAt: new Date().toISOString() });
  return {
    plan,
    planPath,
    environments: summarizeEnvironments(plan),
    assignments: plan.assignments,
    teamEnvironmentId: plan.teamEnvironmentId,
  };
}

function wrapped<T>(make: () => T): T {
  try {
    return make();
  } catch (e) {
    throw e instanceof NonRetryableError ? e : new NonRetryableError((e as Error).message);
  }
}

export function agentTrainingJob(args: {
  dataDir: string;
  sessionId: string;
  config: AgentForgeConfig;
  plan: EnvironmentPlan;
  agent: ResolvedAgent;
  parent?: AgentParentRef;
}): TrainJob {
  return wrapped(() =>
    agentJob({
      config: args.config,
      plan: args.plan,
      agent: args.agent,
      checkpointDir: unitCheckpointDir(args.dataDir, args.sessionId, args.agent.id),
      parent: args.parent,
    }),
  );
}

export function teamTrainingJob(args: {
  dataDir: string;
  sessionId: string;
  config: AgentForgeConfig;
  plan: EnvironmentPlan;
  agents: ResolvedAgent[];
  agentCheckpoints: Record<string, string>;
}): TrainJob {
  for (const a of args.agents) {
    const p = args.agentCheckpoints[a.id];
    if (!p || !fs.existsSync(p)) throw new NonRetryableError(`no checkpoint for agent "${a.id}" (got ${p ?? 'nothing'})`);
  }
  return wrapped(() =>
    teamJob({
      config: args.config,
      plan: args.plan,
      agents: args.agents,
      agentCheckpoints: args.agentCheckpoints,
      checkpointDir: unitCheckpointDir(args.dataDir, args.sessionId, 'team'),
    }),
  );
}

export function trainingChunk(r: TrainResult): TrainingChunk {
  return {
    unit: r.label,
    complete: false,
    episodesRun: r.episodesRun,
    resumedFromEpisode: r.resumedFromEpisode,
    checkpointPath: r.checkpointPath,
    backend: r.backend,
  };
}

export function agentTrainingSummary(agent: ResolvedAgent, r: TrainResult): AgentTrainingSummary {
  if (!r.metrics) throw new Error(`training of ${agent.id} has no evaluation (it did not finish)`);
  return {
    backend: r.backend,
    agentId: agent.id,
    architecture: agent.architecture,
    parameterCount: r.units[0].parameterCount,
    environmentId: r.environmentId,
    episodesRun: r.episodesRun,
    resumedFromEpisode: r.resumedFromEpisode,
    checkpointPath: r.checkpointPath,
    metrics: r.metrics,
    episodesToThreshold: r.episodesToThreshold,
    wallSeconds: r.wallSeconds,
    complete: true,
  };
}

export function coordinationSummary(config: AgentForgeConfig, job: TrainJob, agents: ResolvedAgent[], r: TrainResult): CoordinationSummary {
  if (!r.metrics) throw new Error('coordination training has no evaluation (it did not finish)');
  return {
    unit: 'team',
    environmentId: r.environmentId,
    coordinationStrategy: config.coordinationStrategy,
    slots: Object.fromEntries(job.units.map((u) => [u.id, u.slots])),
    episodesRun: r.episodesRun,
    resumedFromEpisode: r.resumedFromEpisode,
    checkpointPath: r.checkpointPath,
    agentCheckpoints: Object.fromEntries(agents.map((a) => [a.id, r.checkpointPath])),
    trained: r.metrics.trained,
    random: r.metrics.random,
    episodesToThreshold: r.episodesToThreshold,
    wallSeconds: r.wallSeconds,
    complete: true,
  };
}

/** The artifact job: every agent's weights (after coordination when there was a team phase), stats and evaluation. */
export function artifactJob(args: {
  dataDir: string;
  sessionId: string;
  config: AgentForgeConfig;
  plan: EnvironmentPlan;
  agents: ResolvedAgent[];
  trainingSummaries: AgentTrainingSummary[];
  coordination: CoordinationSummary | null;
}): ArtifactJob {
  const { config, plan, coordination } = args;
  const agents: ArtifactAgentInput[] = args.agents.map((a) => {
    const summary = args.trainingSummaries.find((s) => s.agentId === a.id);
    if (!summary) throw new NonRetryableError(`no training summary for agent "${a.id}"`);
    const environment = envSettingsFromPlan(plan, summary.environmentId);
    const team = coordination
      ? {
          checkpoint: coordination.checkpointPath,
          environment: envSettingsFromPlan(plan, coordination.environmentId),
          variant: evaluationVariant(createEnv(envSettingsFromPlan(plan, coordination.environmentId)), config.trainingMode),
          slots: coordination.slots[a.id] ?? [],
          metrics: { trained: coordination.trained, random: coordination.random },
        }
      : undefined;
    return {
      id: a.id,
      architecture: a.architecture,
      role: a.role,
      weightsCheckpoint: coordination?.agentCheckpoints[a.id] ?? summary.checkpointPath,
      trainingCheckpoint: summary.checkpointPath,
      environment,
      variant: evaluationVariant(createEnv(environment), config.trainingMode),
      metrics: summary.metrics,
      episodesToThreshold: summary.episodesToThreshold,
      team,
    };
  });
  return { kind: 'artifacts', sessionId: args.sessionId, config, sessionDir: sessionDir(args.dataDir, 'agent', args.sessionId), agents };
}
