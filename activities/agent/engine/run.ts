// The whole Agent Forge run without Temporal: plan, train every agent, train the team, export artifacts.
// Used by bench/agent.ts (and by the integrator to measure Temporal's overhead against the same work).
import path from 'node:path';
import type { AgentArchitecture, AgentForgeConfig } from '../config';
import type { ArtifactFile } from './artifacts';
import { writeAgentArtifactsWithReport } from './report';
import { createEnv, envSettingsFromPlan, planEnvironments, type EnvironmentPlan } from './envs';
import { agentJob, evaluationVariant, runTraining, teamJob, type TrainResult } from './train';

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
  const ckpt = (unit: string): string => path.join(dataDir, 'checkpoints', 'agent', sessionId, unit);
  const plan = planEnvironments(config, agents);
  const results: TrainResult[] = [];
  for (const agent of agents) {
    const r = await runTraining(agentJob({ config, plan, agent, checkpointDir: ckpt(agent.id) }));
    args.log?.(`${agent.id} (${agent.architecture}) in ${r.environmentId}: ${r.wallSeconds.toFixed(1)} s, trained ${JSON.stringify(r.metrics?.trained)}, random ${JSON.stringify(r.metrics?.random)}`);
    results.push(r);
  }
  let team: TrainResult | null = null;
  if (agents.length > 1) {
    const agentCheckpoints = Object.fromEntries(results.map((r) => [r.label, r.checkpointPath]));
    team = await runTraining(teamJob({ config, plan, agents, agentCheckpoints, checkpointDir: ckpt('team') }));
    args.log?.(`team in ${team.environmentId}: ${team.wallSeconds.toFixed(1)} s, trained ${JSON.stringify(team.metrics?.trained)}, random ${JSON.stringify(team.metrics?.random)}`);
  }
  const { files } = await writeAgentArtifactsWithReport({
    kind: 'artifacts',
    sessionId,
    config,
    sessionDir: path.join(dataDir, 'agent', sessionId),
    agents: agents.map((a, i) => {
      const r = results[i];
      const environment = envSettingsFromPlan(plan, r.environmentId);
      const teamEnv = team ? envSettingsFromPlan(plan, team.environmentId) : null;
      return {
        id: a.id,
        architecture: a.architecture,
        role: a.role,
        weightsCheckpoint: team?.checkpointPath ?? r.checkpointPath,
        trainingCheckpoint: r.checkpointPath,
        environment,
        variant: r.finalVariant,
        metrics: r.metrics!,
        episodesToThreshold: r.episodesToThreshold,
        team:
          team && teamEnv
            ? {
                checkpoint: team.checkpointPath,
                environment: teamEnv,
                variant: evaluationVariant(createEnv(teamEnv), config.trainingMode),
                slots: team.units.length ? (teamJob({ config, plan, agents, agentCheckpoints: {}, checkpointDir: '' }).units.find((u) => u.id === a.id)?.slots ?? []) : [],
                metrics: team.metrics!,
              }
            : undefined,
      };
    }),
  });
  return { plan, agents: results, team, files, wallSeconds: (Date.now() - started) / 1000 };
}
