// Agent Forge activities. Heavy work runs in a child process (child.ts); the activity heartbeats
// { episode, checkpointPath }, forwards progress to the workflow as a rate-limited signal, asks the child
// to checkpoint and stop on cancellation, and resumes from the last checkpoint on a retry.
import fs from 'node:fs';
import path from 'node:path';
import { CancelledFailure, Context } from '@temporalio/activity';
import type { Client } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { childModulePath } from '../../common/child';
import { superviseChild, throttledSignal } from '../../common/supervise';
import { writeJsonAtomic } from '../../common/export/files';
import { checkpointDir, sessionDir } from '../../common/paths';
import { FAILURE_TYPES } from '../../common/constants';
import { createAgentInitFromActivities } from './check-init-from';
import type { AgentParentRef } from './engine/init-from';
import { formatZodError } from '../../common/validation';
import { AGENT_PROGRESS_SIGNAL, type AgentProgressUpdate } from './config';
import { AgentForgeConfigSchema, type AgentArchitecture, type AgentForgeConfig, type AgentSpec } from './config';
import { agentTelemetry } from './telemetry';
import type { ArtifactAgentInput, ArtifactFile, ArtifactJob } from './engine/artifacts';
import type { ChildJob, ChildResult } from './engine/train.child';
import { ACTION_COUNT, OBS_SIZE, createEnv, envSettingsFromPlan, planEnvironments, type EnvironmentPlan } from './engine/envs';
import { Rng, hashSeed } from '../../common/rng';
import { agentJob, evaluationVariant, teamJob, type EvalMetrics, type TrainEvent, type TrainJob, type TrainResult } from './engine/train';

export { runTraining, agentJob, teamJob, evaluate, NULL_CONTEXT } from './engine/train';
export type { EvalMetrics, TrainJob, TrainResult, TrainEvent, TrainContext } from './engine/train';
export { planEnvironments, createEnv } from './engine/envs';
export type { EnvironmentPlan } from './engine/envs';
export { writeAgentArtifacts } from './engine/artifacts';
export { createPolicy, parameterCount } from './engine/policies';

const CHILD_MODULE = childModulePath(path.join(__dirname, 'engine'), 'train');
const HEARTBEAT_MS = 2000;
const SIGNAL_MS = 2000;

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
}

function parseConfig(config: unknown): AgentForgeConfig {
  const parsed = AgentForgeConfigSchema.safeParse(config);
  if (!parsed.success) throw ApplicationFailure.nonRetryable(`invalid agent config: ${formatZodError(parsed.error, 'config')}`, FAILURE_TYPES.invalidConfig);
  return parsed.data;
}

function readPlan(planPath: string): EnvironmentPlan {
  try {
    return JSON.parse(fs.readFileSync(planPath, 'utf8')) as EnvironmentPlan;
  } catch (e) {
    throw ApplicationFailure.nonRetryable(`environment plan ${planPath} cannot be read: ${(e as Error).message}`, FAILURE_TYPES.invalidConfig);
  }
}

function resolveAgent(agent: AgentSpec, config: AgentForgeConfig): ResolvedAgent {
  return { id: agent.id, architecture: agent.architecture ?? config.agentArchitecture, role: agent.role };
}

function summarize(plan: EnvironmentPlan): EnvironmentSummary[] {
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

/**
 * Run a compute job in the child with heartbeats, progress signals and cooperative cancellation.
 * Cancellation (delivered through heartbeats) asks the child to checkpoint and stop, then rethrows.
 */
async function runComputeActivity<R extends ChildResult>(
  deps: { client: Client; dataDir: string },
  job: ChildJob,
  progress: { unit: string; phase: AgentProgressUpdate['phase']; sessionId: string } | null,
): Promise<R> {
  const details = Context.current().info.heartbeatDetails as { episode?: number; checkpointPath?: string } | undefined;
  const beat = { episode: details?.episode ?? 0, checkpointPath: details?.checkpointPath ?? '' };
  const signal = progress ? throttledSignal<AgentProgressUpdate>(deps.client, AGENT_PROGRESS_SIGNAL, SIGNAL_MS) : null;
  let latest: AgentProgressUpdate | null = null;
  const telemetry = progress ? agentTelemetry({ dataDir: deps.dataDir, sessionId: progress.sessionId, unit: progress.unit, warn: (m) => Context.current().log.warn(m) }) : null;
  const onEvent = (event: TrainEvent): void => {
    telemetry?.onEvent(event);
    if (event.type === 'checkpoint') {
      beat.checkpointPath = event.path;
      beat.episode = event.episode;
      return;
    }
    const p = event.progress;
    beat.episode = p.episode;
    if (!progress || !signal) return;
    latest = {
      unit: progress.unit,
      phase: progress.phase,
      episode: p.episode,
      totalEpisodes: p.totalEpisodes,
      reward: p.reward,
      successRate: p.successRate,
      coordinationScore: p.coordinationScore,
      message: p.message,
      resumedFromEpisode: p.resumedFromEpisode,
    };
    signal.send(latest);
  };
  try {
    const result = await superviseChild<ChildJob, TrainEvent, R>({ modulePath: CHILD_MODULE, input: job, onEvent, details: () => beat, heartbeatEveryMs: HEARTBEAT_MS });
    if (progress && latest) signal?.send({ ...(latest as AgentProgressUpdate), message: `${progress.unit}: training finished` }, true);
    if ('metrics' in result && result.metrics) telemetry?.evaluation(result.episodesRun, result.metrics);
    return result;
  } finally {
    telemetry?.close();
    await signal?.flush();
  }
}

export function createAgentActivities(deps: { client: Client; dataDir: string }) {
  const { dataDir } = deps;
  const planFile = (sessionId: string): string => path.join(checkpointDir(dataDir, 'agent', sessionId, 'environments'), 'plan.json');

  return {
    ...createAgentInitFromActivities(deps),
    /** Build, seed and step every environment the config asks for; write the plan (environments, assignments, team seating). */
    async prepareTrainingEnvironments(input: { sessionId: string; config: AgentForgeConfig; agents: AgentSpec[] }) {
      const config = parseConfig(input.config);
      const agents = input.agents.map((a) => resolveAgent(a, config));
      let plan: EnvironmentPlan;
      try {
        plan = planEnvironments(config, agents);
      } catch (e) {
        throw ApplicationFailure.nonRetryable((e as Error).message, FAILURE_TYPES.invalidConfig);
      }
      // Every environment must step: a few seeded random episodes, checking observations and masks.
      const smoke: Record<string, { episodes: number; meanReturn: number }> = {};
      for (const { settings } of plan.environments) {
        const env = createEnv(settings);
        const rng = new Rng(hashSeed(config.seed, 0x5e7));
        const obs = new Float32Array(OBS_SIZE);
        const mask = new Float32Array(ACTION_COUNT);
        let total = 0;
        for (let e = 0; e < 4; e++) {
          env.reset(rng);
          for (let t = 0; t < env.spec.horizon; t++) {
            const actions = Array.from({ length: settings.numAgents }, (_, i) => {
              env.observe(i, obs, 0);
              env.actionMask(i, mask, 0);
              if (!obs.every(Number.isFinite) || !mask.some((m) => m > 0)) throw ApplicationFailure.nonRetryable(`environment ${settings.id} produced an invalid observation or no valid action`, FAILURE_TYPES.invalidConfig);
              return rng.categorical(mask);
            });
            total += env.step(actions).reward;
          }
          env.outcome();
        }
        smoke[settings.id] = { episodes: 4, meanReturn: total / 4 };
      }
      const planPath = planFile(input.sessionId);
      writeJsonAtomic(planPath, { ...plan, smokeTest: smoke, createdAt: new Date().toISOString() });
      return { planPath, environments: summarize(plan), assignments: plan.assignments, teamEnvironmentId: plan.teamEnvironmentId };
    },

    /** Train one agent alone in its assigned environment (resumes from its last checkpoint on a retry). */
    async trainAgents(input: { sessionId: string; config: AgentForgeConfig; agent: AgentSpec; planPath: string; parent?: AgentParentRef }): Promise<AgentTrainingSummary> {
      const config = parseConfig(input.config);
      const plan = readPlan(input.planPath);
      const agent = resolveAgent(input.agent, config);
      let job: TrainJob;
      try {
        job = agentJob({ config, plan, agent, checkpointDir: checkpointDir(dataDir, 'agent', input.sessionId, agent.id), parent: input.parent });
      } catch (e) {
        throw ApplicationFailure.nonRetryable((e as Error).message, FAILURE_TYPES.invalidConfig);
      }
      const r = await runComputeActivity<TrainResult>(deps, job, { unit: agent.id, phase: 'training', sessionId: input.sessionId });
      if (!r.metrics) throw new CancelledFailure('training stopped before completion');
      return {
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
      };
    },

    /** Train the agents together in the team environment, each starting from its own checkpoint. */
    async trainMultiAgentCoordination(input: {
      sessionId: string;
      config: AgentForgeConfig;
      agents: AgentSpec[];
      planPath: string;
      agentCheckpoints: Record<string, string>;
    }): Promise<CoordinationSummary> {
      const config = parseConfig(input.config);
      const plan = readPlan(input.planPath);
      const agents = input.agents.map((a) => resolveAgent(a, config));
      for (const a of agents) {
        const p = input.agentCheckpoints[a.id];
        if (!p || !fs.existsSync(path.join(p, 'state.json'))) throw ApplicationFailure.nonRetryable(`no checkpoint for agent "${a.id}" (got ${p ?? 'nothing'})`, FAILURE_TYPES.invalidConfig);
      }
      let job: TrainJob;
      try {
        job = teamJob({ config, plan, agents, agentCheckpoints: input.agentCheckpoints, checkpointDir: checkpointDir(dataDir, 'agent', input.sessionId, 'team') });
      } catch (e) {
        throw ApplicationFailure.nonRetryable((e as Error).message, FAILURE_TYPES.invalidConfig);
      }
      const r = await runComputeActivity<TrainResult>(deps, job, { unit: 'team', phase: 'coordination', sessionId: input.sessionId });
      if (!r.metrics) throw new CancelledFailure('coordination training stopped before completion');
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
      };
    },

    /** Export every agent (weights in three formats, config, behaviour, stats, manifest), published atomically. */
    async createAgentArtifacts(input: {
      sessionId: string;
      config: AgentForgeConfig;
      agents: AgentSpec[];
      trainingSummaries: AgentTrainingSummary[];
      coordination: CoordinationSummary | null;
    }): Promise<{ files: ArtifactFile[]; report: string }> {
      const config = parseConfig(input.config);
      const planPath = planFile(input.sessionId);
      const plan = readPlan(planPath);
      const agents: ArtifactAgentInput[] = input.agents.map((spec) => {
        const a = resolveAgent(spec, config);
        const summary = input.trainingSummaries.find((s) => s.agentId === a.id);
        if (!summary) throw ApplicationFailure.nonRetryable(`no training summary for agent "${a.id}"`, FAILURE_TYPES.invalidConfig);
        const environment = envSettingsFromPlan(plan, summary.environmentId);
        const team = input.coordination
          ? {
              checkpoint: input.coordination.checkpointPath,
              environment: envSettingsFromPlan(plan, input.coordination.environmentId),
              variant: evaluationVariant(createEnv(envSettingsFromPlan(plan, input.coordination.environmentId)), config.trainingMode),
              slots: input.coordination.slots[a.id] ?? [],
              metrics: { trained: input.coordination.trained, random: input.coordination.random },
            }
          : undefined;
        return {
          id: a.id,
          architecture: a.architecture,
          role: a.role,
          weightsCheckpoint: input.coordination?.agentCheckpoints[a.id] ?? summary.checkpointPath,
          trainingCheckpoint: summary.checkpointPath,
          environment,
          variant: evaluationVariant(createEnv(environment), config.trainingMode),
          metrics: summary.metrics,
          episodesToThreshold: summary.episodesToThreshold,
          team,
        };
      });
      const job: ArtifactJob = { kind: 'artifacts', sessionId: input.sessionId, config, sessionDir: sessionDir(dataDir, 'agent', input.sessionId), agents };
      return runComputeActivity<{ files: ArtifactFile[]; report: string }>(deps, job, null);
    },
  };
}

export type AgentActivities = ReturnType<typeof createAgentActivities>;
