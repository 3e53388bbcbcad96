// The whole Agent Forge run without Temporal: the same pipeline steps the activities run (engine/pipeline.ts),
// in-process. Used by bench/agent.ts and bench/pipeline-overhead.ts to measure the work against the workflow.
import type { AgentArchitecture, AgentForgeConfig } from '../config';
import { writeJsonAtomic } from '../../../common/export/files';
import type { ArtifactFile } from './artifacts';
import { writeAgentArtifactsWithReport } from './report';
import type { EnvironmentPlan } from './envs';
import {
  agentTrainingJob,
  agentTrainingSummary,
  artifactJob,
  coordinationSummary,
  prepareEnvironments,
  teamTrainingJob,
  type AgentTrainingSummary,
  type CoordinationSummary,
} from './pipeline';
import { runTraining, type TrainResult } from './train';

export interface DirectRunResult {
  plan: EnvironmentPlan;
  agents: TrainResult[];
  team: TrainResult | null;
  files: ArtifactFile[];
  wallSeconds: number;
}

/** Agents are trained one after another here (the workflow runs them in parallel activities). */
export async function runAgentForgeDirect(args: {
  sessionId: string;
  config: AgentForgeConfig;
  agents: { id: string; architecture: AgentArchitecture; role?: string }[];
  dataDir: string;
  log?: (line: string) => void;
}): Promise<DirectRunResult> {
  const started = Date.now();
  const { config, agents, dataDir, sessionId } = args;
  const { plan } = prepareEnvironments({ dataDir, sessionId, config, agents, write: writeJsonAtomic });
  const results: TrainResult[] = [];
  const summaries: AgentTrainingSummary[] = [];
  for (const agent of agents) {
    const r = await runTraining(agentTrainingJob({ dataDir, sessionId, config, plan, agent }));
    args.log?.(
      `${agent.id} (${agent.architecture}) in ${r.environmentId}: ${r.wallSeconds.toFixed(1)} s, trained ${JSON.stringify(r.metrics?.trained)}, random ${JSON.stringify(r.metrics?.random)}`,
    );
    results.push(r);
    summaries.push(agentTrainingSummary(agent, r));
  }
  let team: TrainResult | null = null;
  let coordination: CoordinationSummary | null = null;
  if (agents.length > 1) {
    const agentCheckpoints = Object.fromEntries(summaries.map((s) => [s.agentId, s.checkpointPath]));
    const job = teamTrainingJob({ dataDir, sessionId, config, plan, agents, agentCheckpoints });
    team = await runTraining(job);
    coordination = coordinationSummary(config, job, agents, team);
    args.log?.(
      `team in ${team.environmentId}: ${team.wallSeconds.toFixed(1)} s, trained ${JSON.stringify(team.metrics?.trained)}, random ${JSON.stringify(team.metrics?.random)}`,
    );
  }
  const { files } = await writeAgentArtifactsWithReport(
    artifactJob({ dataDir, sessionId, config, plan, agents, trainingSummaries: summaries, coordination }),
  );
  return { plan, agents: results, team, files, wallSeconds: (Date.now() - started) / 1000 };
}
