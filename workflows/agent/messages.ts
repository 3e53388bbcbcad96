// Signals and queries of agentForgeTrainingWorkflow. Pure: used by the workflow, activities and clients.
import { defineQuery, defineSignal } from '@temporalio/workflow';

/** One agent's (or the team's) live training state, sent by activities at a bounded rate. */
export interface AgentProgressUpdate {
  /** Agent id, or "team" during multi-agent coordination. */
  unit: string;
  phase: 'environments' | 'training' | 'coordination' | 'artifacts';
  episode: number;
  totalEpisodes: number;
  /** Mean episode return of the latest training batch. */
  reward: number;
  /** Success rate of the latest training batch (environment's success criterion). */
  successRate: number;
  coordinationScore: number;
  message: string;
  /** Episode the activity resumed from (0 for a fresh start). */
  resumedFromEpisode?: number;
}

/** The seed's AgentTrainingProgress plus phase and per-agent entries. */
export interface AgentForgeProgress {
  progress: number;
  message: string;
  episode: number;
  totalEpisodes: number;
  reward: number;
  successRate: number;
  coordinationScore: number;
  phase: 'validating' | 'environments' | 'training' | 'coordination' | 'artifacts' | 'completed' | 'failed' | 'cancelled';
  agents: Record<string, AgentProgressUpdate>;
}

export const AGENT_PROGRESS_SIGNAL = 'agentProgress';
export const agentProgressSignal = defineSignal<[AgentProgressUpdate]>(AGENT_PROGRESS_SIGNAL);
export const agentProgressQuery = defineQuery<AgentForgeProgress>('progress');
