// Signal and query of agentForgeTrainingWorkflow. Their names and payload types live beside the engine's
// config (activities/agent/config.ts) so activities send them without importing workflow code.
import { defineQuery, defineSignal } from '@temporalio/workflow';
import { QUERIES } from '../../common/constants';
import { AGENT_PROGRESS_SIGNAL, type AgentForgeProgress, type AgentProgressUpdate } from '../../activities/agent/config';

export const agentProgressSignal = defineSignal<[AgentProgressUpdate]>(AGENT_PROGRESS_SIGNAL);
export const agentProgressQuery = defineQuery<AgentForgeProgress>(QUERIES.progress);
