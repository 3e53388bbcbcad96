// Agent Forge activities: Temporal wiring only. The pipeline's steps are engine functions
// (engine/pipeline.ts, also run without Temporal by engine/run.ts); compute runs in a child process under
// the shared supervision layer (common/supervise.ts: heartbeats, throttled progress signals within a
// budget, cancellation that checkpoints). Engine errors marked NonRetryableError become non-retryable
// InvalidConfig failures. Each training activity trains ONE unit (an agent, or the team) for at most
// `chunkSeconds`, checkpoints and returns; the workflow calls it again until training is complete.
import path from 'node:path';
import { Context } from '@temporalio/activity';
import type { Client } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { childModulePath, NonRetryableError } from '../../common/child';
import { superviseCompute } from '../../common/supervise';
import { writeJsonAtomic } from '../../common/export/files';
import { FAILURE_TYPES } from '../../common/constants';
import { formatZodError } from '../../common/validation';
import { createAgentInitFromActivities } from './check-init-from';
import type { AgentParentRef } from './engine/init-from';
import { agentTelemetry } from './telemetry';
import { AGENT_PROGRESS_SIGNAL, AgentForgeConfigSchema, type AgentForgeConfig, type AgentProgressUpdate, type AgentSpec } from './config';
import type { ArtifactFile } from './engine/artifacts';
import type { ChildJob, ChildResult } from './engine/train.child';
import type { TrainEvent, TrainJob, TrainResult } from './engine/train';
import {
  agentTrainingJob,
  agentTrainingSummary,
  artifactJob,
  coordinationSummary,
  planFile,
  prepareEnvironments,
  readPlan,
  resolveAgent,
  teamTrainingJob,
  trainingChunk,
  type AgentTrainingSummary,
  type CoordinationSummary,
  type PreparedEnvironments,
  type TrainingChunk,
} from './engine/pipeline';

export type { AgentTrainingSummary, CoordinationSummary, EnvironmentSummary, ResolvedAgent, TrainingChunk } from './engine/pipeline';

const CHILD_MODULE = childModulePath(path.join(__dirname, 'engine'), 'train');
const HEARTBEAT_MS = 2000;

/** How one call of a training activity trains: its time budget, where it continues from, its signal share. */
export interface ChunkInput {
  /** Train at most this long, then checkpoint and return a TrainingChunk. Unset: train to the end. */
  chunkSeconds?: number;
  /**
   * Episode the previous chunk ended at (a checkpoint elsewhere, or a retry, counts as a resume); null: any
   * checkpoint is the planned continuation (first chunk after continue-as-new); unset: every checkpoint is a resume.
   */
  fromEpisode?: number | null;
  /** Most progress signals this call may send (its share of the workflow run's budget). */
  maxSignals?: number;
}

function engineCall<T>(fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (e instanceof NonRetryableError) throw ApplicationFailure.nonRetryable(e.message, FAILURE_TYPES.invalidConfig);
    throw e;
  }
}

function parseConfig(config: unknown): AgentForgeConfig {
  const parsed = AgentForgeConfigSchema.safeParse(config);
  if (!parsed.success)
    throw ApplicationFailure.nonRetryable(`invalid agent config: ${formatZodError(parsed.error, 'config')}`, FAILURE_TYPES.invalidConfig);
  return parsed.data;
}

/** Train `job` (one unit) in the child under the shared supervision layer. */
async function superviseTraining(
  deps: { client: Client; dataDir: string },
  sessionId: string,
  job: TrainJob,
  phase: AgentProgressUpdate['phase'],
  config: AgentForgeConfig,
  chunk: ChunkInput,
): Promise<TrainResult> {
  const { client } = deps;
  const ctx = Context.current();
  // TensorBoard scalars and Prometheus series from the same events (activities/agent/telemetry.ts).
  const telemetry = agentTelemetry({ dataDir: deps.dataDir, sessionId, unit: job.label, warn: (m) => ctx.log.warn(m) });
  const prior = ctx.info.heartbeatDetails as { episode?: number; checkpointPath?: string } | undefined;
  const details = { episode: prior?.episode ?? chunk.fromEpisode ?? 0, checkpointPath: prior?.checkpointPath ?? '' };
  const update: AgentProgressUpdate = {
    unit: job.label,
    phase,
    episode: details.episode,
    totalEpisodes: config.maxEpisodes,
    reward: 0,
    successRate: 0,
    coordinationScore: 0,
    message: `${job.label}: starting`,
    resumedFromEpisode: 0,
  };
  const input: ChildJob = {
    ...job,
    chunkSeconds: chunk.chunkSeconds,
    continuation: chunk.fromEpisode !== undefined ? { fromEpisode: chunk.fromEpisode, attempt: ctx.info.attempt } : undefined,
  };
  const result = superviseCompute<ChildJob, TrainEvent, ChildResult, AgentProgressUpdate>({
    client,
    modulePath: CHILD_MODULE,
    input,
    details,
    heartbeatEveryMs: HEARTBEAT_MS,
    progress: {
      signalName: AGENT_PROGRESS_SIGNAL,
      update,
      intervalMs: config.progressIntervalSeconds * 1000,
      maxSignals: chunk.maxSignals,
      final: (r) =>
        `${job.label}: ${(r as TrainResult).complete ? 'training finished' : `checkpointed at episode ${(r as TrainResult).episodesRun}`}`,
    },
    onEvent: (event) => {
      telemetry.onEvent(event);
      if (event.type === 'checkpoint') {
        details.checkpointPath = event.path;
        details.episode = event.episode;
        return;
      }
      if (event.type === 'warning') {
        ctx.log.warn(event.message);
        return;
      }
      const p = event.progress;
      details.episode = p.episode;
      Object.assign(update, {
        episode: p.episode,
        totalEpisodes: p.totalEpisodes,
        reward: p.reward,
        successRate: p.successRate,
        coordinationScore: p.coordinationScore,
        message: p.message,
        resumedFromEpisode: p.resumedFromEpisode,
      });
      return 'signal';
    },
  }) as Promise<TrainResult>;
  try {
    const r = await result;
    if (r.complete && r.metrics) telemetry.evaluation(r.episodesRun, r.metrics);
    return r;
  } finally {
    telemetry.close();
  }
}

export function createAgentActivities(deps: { client: Client; dataDir: string }) {
  const { client, dataDir } = deps;

  return {
    ...createAgentInitFromActivities(deps),
    /** Build, seed and smoke-test every environment the config asks for; write the plan (environments, assignments, team seating). */
    async prepareTrainingEnvironments(input: {
      sessionId: string;
      config: AgentForgeConfig;
      agents: AgentSpec[];
    }): Promise<PreparedEnvironments> {
      const config = parseConfig(input.config);
      const agents = input.agents.map((a) => resolveAgent(a, config));
      const { plan: _plan, ...prepared } = engineCall(() =>
        prepareEnvironments({ dataDir, sessionId: input.sessionId, config, agents, write: writeJsonAtomic }),
      );
      return prepared;
    },

    /** Train ONE agent alone in its assigned environment, for at most chunkSeconds (resumes from its last checkpoint). */
    async trainAgents(
      input: { sessionId: string; config: AgentForgeConfig; agent: AgentSpec; planPath: string; parent?: AgentParentRef } & ChunkInput,
    ): Promise<AgentTrainingSummary | TrainingChunk> {
      const config = parseConfig(input.config);
      const agent = resolveAgent(input.agent, config);
      const job = engineCall(() =>
        agentTrainingJob({ dataDir, sessionId: input.sessionId, config, plan: readPlan(input.planPath), agent, parent: input.parent }),
      );
      const r = await superviseTraining(deps, input.sessionId, job, 'training', config, input);
      return r.complete ? agentTrainingSummary(agent, r) : trainingChunk(r);
    },

    /** Train the team together in the team environment (ONE unit), each agent starting from its own checkpoint. */
    async trainMultiAgentCoordination(
      input: {
        sessionId: string;
        config: AgentForgeConfig;
        agents: AgentSpec[];
        planPath: string;
        agentCheckpoints: Record<string, string>;
      } & ChunkInput,
    ): Promise<CoordinationSummary | TrainingChunk> {
      const config = parseConfig(input.config);
      const agents = input.agents.map((a) => resolveAgent(a, config));
      const job = engineCall(() =>
        teamTrainingJob({
          dataDir,
          sessionId: input.sessionId,
          config,
          plan: readPlan(input.planPath),
          agents,
          agentCheckpoints: input.agentCheckpoints,
        }),
      );
      const r = await superviseTraining(deps, input.sessionId, job, 'coordination', config, input);
      return r.complete ? coordinationSummary(config, job, agents, r) : trainingChunk(r);
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
      const agents = input.agents.map((a) => resolveAgent(a, config));
      const job = engineCall(() =>
        artifactJob({
          dataDir,
          sessionId: input.sessionId,
          config,
          plan: readPlan(planFile(dataDir, input.sessionId)),
          agents,
          trainingSummaries: input.trainingSummaries,
          coordination: input.coordination,
        }),
      );
      return superviseCompute<ChildJob, TrainEvent, ChildResult, { message: string }>({
        client,
        modulePath: CHILD_MODULE,
        input: job,
        details: { artifacts: input.sessionId },
        progress: null,
        onEvent: () => undefined,
      }) as Promise<{ files: ArtifactFile[]; report: string }>;
    },
  };
}

export type AgentActivities = ReturnType<typeof createAgentActivities>;
