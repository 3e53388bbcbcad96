// agentForgeTrainingWorkflow: validate → environments → train each agent (parallel) → train the team →
// artifacts. Deterministic and thin: all work happens in activities; progress arrives by signal.
import { ApplicationFailure, isCancellation, proxyActivities, setCurrentDetails, setHandler, upsertMemo, workflowInfo } from '@temporalio/workflow';
import type { createAgentActivities } from '../../activities/agent';
import { formatZodError } from '../../common/validation';
import { AgentForgeInputSchema, resolveAgents, type AgentForgeInput, type AgentForgeProgress } from '../../activities/agent/config';
import { FAILURE_TYPES, NON_RETRYABLE_TYPES } from '../../common/constants';
import { mean } from '../../common/stats';
import { agentProgressQuery, agentProgressSignal } from './messages';

type Activities = ReturnType<typeof createAgentActivities>;

const { checkInitFrom, prepareTrainingEnvironments, createAgentArtifacts } = proxyActivities<Activities>({
  startToCloseTimeout: '10 minutes',
  retry: { maximumAttempts: 3, nonRetryableErrorTypes: NON_RETRYABLE_TYPES },
});

// Training heartbeats every few seconds; a dead worker is noticed after heartbeatTimeout and the retry
// (on any live worker) resumes from the last checkpoint. WAIT_CANCELLATION_COMPLETED lets the activity
// write its final checkpoint before the workflow reports cancelled.
const { trainAgents, trainMultiAgentCoordination } = proxyActivities<Activities>({
  startToCloseTimeout: '6 hours',
  heartbeatTimeout: '30 seconds',
  cancellationType: 'WAIT_CANCELLATION_COMPLETED',
  retry: { initialInterval: '1 second', maximumInterval: '30 seconds', maximumAttempts: 10, nonRetryableErrorTypes: NON_RETRYABLE_TYPES },
});

/** Share of overall progress at the start of each phase. */
const PHASE_START = { environments: 0, training: 0.05, coordination: 0.8, artifacts: 0.95 } as const;

export async function agentForgeTrainingWorkflow(input: AgentForgeInput) {
  const state: AgentForgeProgress = {
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
    state.agents[update.unit] = update;
    if (update.phase === 'training' || update.phase === 'coordination') {
      const units = Object.values(state.agents).filter((a) => a.phase === update.phase);
      const fraction = units.reduce((s, a) => s + a.episode / Math.max(1, a.totalEpisodes), 0) / Math.max(1, units.length);
      const span = update.phase === 'training' ? PHASE_START.coordination - PHASE_START.training : PHASE_START.artifacts - PHASE_START.coordination;
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

  const enter = (phase: keyof typeof PHASE_START, message: string) => {
    state.phase = phase;
    state.progress = PHASE_START[phase];
    state.message = message;
    // Shown as the run's current details in the Web UI, also for runs started with the plain CLI.
    setCurrentDetails(`**Agent Forge** session ${sessionId} · phase **${phase}** · ${message}`);
  };

  try {
    // Fine-tuning: check the parent (and take its network sizes and architecture) before anything is written.
    const initFrom = request.initFrom
      ? await checkInitFrom({ initFrom: request.initFrom, config, agents: request.agents, explicitFields: Object.keys((input as { config?: object }).config ?? {}) })
      : null;
    if (initFrom) {
      ({ config, agents } = initFrom);
      upsertMemo({ initFrom: `${initFrom.parent.sessionId}/${initFrom.parent.agentId}` });
    }

    enter('environments', `preparing ${config.environmentTypes.join(' and ')} environments`);
    const plan = await prepareTrainingEnvironments({ sessionId, config, agents });

    enter('training', `training ${agents.length} agents (${config.trainingMode})`);
    state.totalEpisodes = config.maxEpisodes;
    const trainingSummaries = await Promise.all(agents.map((agent) => trainAgents({ sessionId, config, agent, planPath: plan.planPath, parent: initFrom?.parent })));

    let coordination: Awaited<ReturnType<Activities['trainMultiAgentCoordination']>> | null = null;
    if (agents.length > 1) {
      enter('coordination', `training ${agents.length} agents together (${config.coordinationStrategy})`);
      const agentCheckpoints = Object.fromEntries(trainingSummaries.map((s) => [s.agentId, s.checkpointPath]));
      coordination = await trainMultiAgentCoordination({ sessionId, config, agents, planPath: plan.planPath, agentCheckpoints });
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
    setCurrentDetails(`**Agent Forge** session ${sessionId} · **completed** · reward ${final.reward.toFixed(3)} · success ${final.successRate.toFixed(2)}`);
    return {
      sessionId,
      workflowId: workflowInfo().workflowId,
      status: 'completed' as const,
      config,
      initFrom: initFrom ? { ...initFrom.parent, inherited: initFrom.inherited } : null,
      environments: plan.environments,
      agents: trainingSummaries,
      coordination,
      artifacts,
    };
  } catch (err) {
    if (isCancellation(err)) {
      state.phase = 'cancelled';
      state.message = 'cancelled: training stopped, last checkpoints kept';
    } else {
      state.phase = 'failed';
      state.message = `failed: ${(err as Error).message}`;
    }
    throw err;
  }
}


