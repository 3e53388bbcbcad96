// agentForgeTrainingWorkflow: validate → environments → train each agent (parallel) → train the team →
// artifacts. Deterministic and thin: all work happens in activities; progress arrives by signal.
// Training runs in chunks (each activity trains one unit for at most trainingChunkSeconds); the run continues
// as new when its history budget is spent (workflows/shared/rollover.ts), carrying its state in `carried`.
import {
  ApplicationFailure,
  continueAsNew,
  isCancellation,
  patched,
  proxyActivities,
  setCurrentDetails,
  setHandler,
  upsertMemo,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { createAgentActivities } from '../../activities/agent';
import type { AgentTrainingSummary, CoordinationSummary, TrainingChunk } from '../../activities/agent/activities';
import type { PreparedEnvironments } from '../../activities/agent/engine/pipeline';
import { PATCHES, RunBudget } from '../shared/rollover';
import { formatZodError } from '../../common/validation';
import { AgentForgeInputSchema, resolveAgents, type AgentForgeInput, type AgentForgeProgress } from '../../activities/agent/config';
import { FAILURE_TYPES, NON_RETRYABLE_TYPES } from '../../common/constants';
import { mean } from '../../common/stats';
import { progressAttributeUpdates, type ProgressAttributes } from '../../common/search-attributes';
import { agentProgressQuery, agentProgressSignal } from './messages';

type Activities = ReturnType<typeof createAgentActivities>;

const { checkInitFrom, prepareTrainingEnvironments } = proxyActivities<Activities>({
  startToCloseTimeout: '10 minutes',
  retry: { maximumAttempts: 3, nonRetryableErrorTypes: NON_RETRYABLE_TYPES },
});
// The export runs in a supervised compute child that heartbeats every 2 s: a dead worker is noticed in
// seconds, not after the 10-minute start-to-close timeout.
const { createAgentArtifacts } = proxyActivities<Activities>({
  startToCloseTimeout: '10 minutes',
  heartbeatTimeout: '30 seconds',
  retry: { maximumAttempts: 3, nonRetryableErrorTypes: NON_RETRYABLE_TYPES },
});

// Training heartbeats every few seconds; a dead worker is noticed after heartbeatTimeout and the retry
// (on any live worker) resumes from the last checkpoint. WAIT_CANCELLATION_COMPLETED lets the activity
// write its final checkpoint before the workflow reports cancelled.
const TRAINING_OPTIONS = {
  startToCloseTimeout: '6 hours',
  heartbeatTimeout: '30 seconds',
  cancellationType: 'WAIT_CANCELLATION_COMPLETED',
  retry: { initialInterval: '1 second', maximumInterval: '30 seconds', maximumAttempts: 10, nonRetryableErrorTypes: NON_RETRYABLE_TYPES },
} as const;
const { trainAgents, trainMultiAgentCoordination } = proxyActivities<Activities>(TRAINING_OPTIONS);
/** The same activities with a one-line summary the Web UI shows on the event, so chunks stand out from progress signals. */
const chunkActivities = (summary: string) => proxyActivities<Activities>({ ...TRAINING_OPTIONS, summary });

/** What a run hands to the next one at continue-as-new. */
export interface AgentCarried {
  state: AgentForgeProgress;
  plan: PreparedEnvironments;
  /** The latest chunk's result per agent (a summary once its training is complete). */
  agents: Record<string, AgentTrainingSummary | TrainingChunk>;
  coordination: CoordinationSummary | TrainingChunk | null;
  /** Episode of the latest resume after a crash or restart, per unit (0: none). */
  resumedFromEpisode: Record<string, number>;
  /** Runs before this one. */
  runs: number;
  /** The checked fine-tuning parent (checkInitFrom runs once, in the first run). */
  initFrom?: InitFromResult | null;
}

type InitFromResult = Awaited<ReturnType<Activities['checkInitFrom']>>;

const isComplete = <T extends object>(r: T | TrainingChunk | null | undefined): r is T =>
  !!r && (r as { complete?: boolean }).complete !== false;

/** Share of overall progress at the start of each phase. */
const PHASE_START = { environments: 0, training: 0.05, coordination: 0.8, artifacts: 0.95 } as const;

export async function agentForgeTrainingWorkflow(input: AgentForgeInput, carried?: AgentCarried) {
  const budget = new RunBudget();
  const state: AgentForgeProgress = carried?.state ?? {
    progress: 0,
    message: 'validating input',
    episode: 0,
    totalEpisodes: 0,
    reward: 0,
    successRate: 0,
    coordinationScore: 0,
    phase: 'validating',
    agents: {},
  };
  setHandler(agentProgressQuery, () => state);
  setHandler(agentProgressSignal, (update) => {
    budget.signals++;
    state.agents[update.unit] = update;
    if (update.phase === 'training' || update.phase === 'coordination') {
      const units = Object.values(state.agents).filter((a) => a.phase === update.phase);
      const fraction = units.reduce((s, a) => s + a.episode / Math.max(1, a.totalEpisodes), 0) / Math.max(1, units.length);
      const span =
        update.phase === 'training' ? PHASE_START.coordination - PHASE_START.training : PHASE_START.artifacts - PHASE_START.coordination;
      state.progress = PHASE_START[update.phase] + span * Math.min(1, fraction);
      state.episode = Math.min(...units.map((a) => a.episode));
      state.totalEpisodes = update.totalEpisodes;
      state.reward = mean(units.map((a) => a.reward)) ?? 0;
      state.successRate = mean(units.map((a) => a.successRate)) ?? 0;
      state.coordinationScore = mean(units.map((a) => a.coordinationScore)) ?? 0;
      state.message = update.message;
    }
  });

  const parsed = AgentForgeInputSchema.safeParse(input);
  if (!parsed.success) {
    state.phase = 'failed';
    state.message = `invalid input: ${formatZodError(parsed.error)}`;
    throw ApplicationFailure.nonRetryable(state.message, FAILURE_TYPES.invalidInput);
  }
  const request = parsed.data;
  const { sessionId } = request;
  let config = request.config;
  let agents = resolveAgents(request);
  let initFrom: InitFromResult | null = carried?.initFrom ?? null;
  if (initFrom) ({ config, agents } = initFrom);

  // Search attributes (ForgePhase, ForgeStep, ForgeSuccessRate, ForgeBackend) are updated at phase changes and
  // chunk ends only: each update is one history event. Behind a patch: recorded histories have none.
  const attributes = (p: ProgressAttributes): void => {
    if (patched(PATCHES.searchAttributes)) upsertSearchAttributes(progressAttributeUpdates(p));
  };

  const enter = (phase: keyof typeof PHASE_START, message: string) => {
    state.phase = phase;
    state.progress = PHASE_START[phase];
    state.message = message;
    // Shown as the run's current details in the Web UI, also for runs started with the plain CLI.
    setCurrentDetails(`**Agent Forge** session ${sessionId} · phase **${phase}** · ${message}`);
    attributes({ phase });
  };

  try {
    // Fine-tuning: check the parent (and take its network sizes and architecture) before anything is written.
    // Once per session: a continued run carries the result.
    if (!carried && request.initFrom) {
      initFrom = await checkInitFrom({
        initFrom: request.initFrom,
        config,
        agents: request.agents,
        explicitFields: Object.keys((input as { config?: object }).config ?? {}),
      });
      ({ config, agents } = initFrom);
      upsertMemo({ initFrom: `${initFrom.parent.sessionId}/${initFrom.parent.agentId}` });
    }

    let plan: PreparedEnvironments;
    if (carried) {
      plan = carried.plan;
    } else {
      enter('environments', `preparing ${config.environmentTypes.join(' and ')} environments`);
      plan = await prepareTrainingEnvironments({ sessionId, config, agents });
    }

    let trainingSummaries: AgentTrainingSummary[];
    let coordination: CoordinationSummary | null = null;
    if (!patched(PATCHES.chunkedTraining)) {
      // Histories recorded before chunked training: one activity per unit for the whole training.
      enter('training', `training ${agents.length} agents (${config.trainingMode})`);
      state.totalEpisodes = config.maxEpisodes;
      trainingSummaries = (await Promise.all(
        agents.map((agent) => trainAgents({ sessionId, config, agent, planPath: plan.planPath, parent: initFrom?.parent })),
      )) as AgentTrainingSummary[];
      if (agents.length > 1) {
        enter('coordination', `training ${agents.length} agents together (${config.coordinationStrategy})`);
        const agentCheckpoints = Object.fromEntries(trainingSummaries.map((s) => [s.agentId, s.checkpointPath]));
        coordination = (await trainMultiAgentCoordination({
          sessionId,
          config,
          agents,
          planPath: plan.planPath,
          agentCheckpoints,
        })) as CoordinationSummary;
      }
    } else {
      const latest: Record<string, AgentTrainingSummary | TrainingChunk> = { ...carried?.agents };
      let team: CoordinationSummary | TrainingChunk | null = carried?.coordination ?? null;
      const resumed: Record<string, number> = { ...carried?.resumedFromEpisode };
      const note = (unit: string, r: { resumedFromEpisode: number }) =>
        (resumed[unit] = Math.max(resumed[unit] ?? 0, r.resumedFromEpisode));
      if (carried)
        setCurrentDetails(`**Agent Forge** session ${sessionId} · phase **${state.phase}** · continued (run ${carried.runs + 1})`);
      budget.watch();

      // The first chunk of a continued run takes whatever checkpoint is newest as the continuation (a chunk
      // cancelled for the roll-over wrote it); a fresh run expects none, so one found there is a resume.
      const trainUnit = async <T extends object>(
        unit: string,
        units: number,
        already: T | TrainingChunk | null | undefined,
        call: (fromEpisode: number | null, maxSignals: number) => Promise<T | TrainingChunk>,
      ): Promise<T | TrainingChunk | null> => {
        let last = already ?? null;
        let from: number | null = carried ? null : 0;
        while (!isComplete<T>(last)) {
          const r = await budget.chunk(() => call(from, budget.signalShare(units)));
          if (!r) break;
          last = r;
          from = (r as { episodesRun: number }).episodesRun;
          note(unit, r as { resumedFromEpisode: number });
          const c = r as {
            episodesRun: number;
            backend?: string;
            metrics?: { trained: { successRate: number } };
            trained?: { successRate: number };
          };
          attributes({
            step: c.episodesRun,
            successRate: c.metrics?.trained.successRate ?? c.trained?.successRate ?? state.successRate,
            backend: c.backend,
          });
        }
        return last;
      };

      if (!agents.every((a) => isComplete<AgentTrainingSummary>(latest[a.id]))) {
        if (!carried) {
          enter('training', `training ${agents.length} agents (${config.trainingMode})`);
          state.totalEpisodes = config.maxEpisodes;
        }
        await Promise.all(
          agents.map(async (agent) => {
            const r = await trainUnit<AgentTrainingSummary>(agent.id, agents.length, latest[agent.id], (fromEpisode, maxSignals) =>
              chunkActivities(`${agent.id}: from episode ${fromEpisode ?? 'checkpoint'} (≤ ${config.trainingChunkSeconds} s)`).trainAgents({
                sessionId,
                config,
                agent,
                planPath: plan.planPath,
                parent: initFrom?.parent,
                chunkSeconds: config.trainingChunkSeconds,
                fromEpisode,
                maxSignals,
              }),
            );
            if (r) latest[agent.id] = r;
          }),
        );
      }
      const agentsDone = agents.every((a) => isComplete<AgentTrainingSummary>(latest[a.id]));
      if (agentsDone && agents.length > 1 && !isComplete<CoordinationSummary>(team)) {
        const summaries = agents.map((a) => latest[a.id] as AgentTrainingSummary);
        if (state.phase !== 'coordination')
          enter('coordination', `training ${agents.length} agents together (${config.coordinationStrategy})`);
        const agentCheckpoints = Object.fromEntries(summaries.map((s) => [s.agentId, s.checkpointPath]));
        team = await trainUnit<CoordinationSummary>('team', 1, team, (fromEpisode, maxSignals) =>
          chunkActivities(
            `team: from episode ${fromEpisode ?? 'checkpoint'} (≤ ${config.trainingChunkSeconds} s)`,
          ).trainMultiAgentCoordination({
            sessionId,
            config,
            agents,
            planPath: plan.planPath,
            agentCheckpoints,
            chunkSeconds: config.trainingChunkSeconds,
            fromEpisode,
            maxSignals,
          }),
        );
      }
      if (!agentsDone || (agents.length > 1 && !isComplete<CoordinationSummary>(team))) {
        return await continueAsNew<typeof agentForgeTrainingWorkflow>(input, {
          state,
          plan,
          agents: latest,
          coordination: team,
          resumedFromEpisode: resumed,
          runs: (carried?.runs ?? 0) + 1,
          initFrom,
        });
      }
      trainingSummaries = agents.map((a) => ({ ...(latest[a.id] as AgentTrainingSummary), resumedFromEpisode: resumed[a.id] ?? 0 }));
      coordination = agents.length > 1 ? { ...(team as CoordinationSummary), resumedFromEpisode: resumed.team ?? 0 } : null;
    }

    enter('artifacts', 'writing artifacts');
    const artifacts = await createAgentArtifacts({ sessionId, config, agents, trainingSummaries, coordination });

    const final = coordination?.trained ?? trainingSummaries[0].metrics.trained;
    state.phase = 'completed';
    state.progress = 1;
    state.reward = final.reward;
    state.successRate = final.successRate;
    state.coordinationScore = final.coordinationScore;
    state.message = `completed: ${artifacts.files.length} files written`;
    setCurrentDetails(
      `**Agent Forge** session ${sessionId} · **completed** · reward ${final.reward.toFixed(3)} · success ${final.successRate.toFixed(2)}`,
    );
    attributes({ phase: 'completed', successRate: final.successRate });
    return {
      sessionId,
      workflowId: workflowInfo().workflowId,
      status: 'completed' as const,
      config,
      environments: plan.environments,
      agents: trainingSummaries,
      coordination,
      artifacts,
      initFrom: initFrom ? { ...initFrom.parent, inherited: initFrom.inherited } : null,
    };
  } catch (err) {
    if (isCancellation(err)) {
      state.phase = 'cancelled';
      state.message = 'cancelled: training stopped, last checkpoints kept';
    } else {
      state.phase = 'failed';
      state.message = `failed: ${(err as Error).message}`;
    }
    attributes({ phase: state.phase });
    throw err;
  }
}
