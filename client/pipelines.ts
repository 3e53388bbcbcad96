// What a client needs to know about each pipeline: its input schema, workflow type, task queue and how to
// summarise a run for the Temporal Web UI. The one place where both pipelines meet, on the client side.
import type { z } from 'zod';
import { TASK_QUEUES, WORKFLOW_TYPES, workflowIdFor, type Pipeline } from '../common/constants';
import { AgentForgeInputSchema, resolveAgents, type AgentForgeRequest } from '../activities/agent/config';
import { CognateInputSchema, DEFAULT_MODELS, type CognateRequest } from '../activities/cognate/config';

export interface PipelineInfo<S extends z.ZodType> {
  pipeline: Pipeline;
  schema: S;
  workflowType: string;
  taskQueue: string;
  /** One line for the Web UI's summary field. */
  summary(request: z.output<S>): string;
  /** Key configuration, shown as the run's details in the Web UI (markdown). */
  details(request: z.output<S>): string;
}

export const PIPELINES = {
  agent: {
    pipeline: 'agent',
    schema: AgentForgeInputSchema,
    workflowType: WORKFLOW_TYPES.agent,
    taskQueue: TASK_QUEUES.agent,
    summary: (r: AgentForgeRequest) =>
      `Agent Forge · session ${r.sessionId} · ${r.config.trainingMode} · ${resolveAgents(r).length} agents · ${r.config.maxEpisodes} episodes`,
    details: (r: AgentForgeRequest) =>
      [
        `**pipeline** agent-forge`,
        `**session** ${r.sessionId}`,
        `**agents** ${resolveAgents(r)
          .map((a) => `${a.id} (${a.architecture})`)
          .join(', ')}`,
        `**environments** ${r.config.environmentTypes.join(', ')} · **protocols** ${r.config.communicationProtocols.join(', ')}`,
        `**coordination** ${r.config.coordinationStrategy} · **seed** ${r.config.seed}`,
      ].join('\n'),
  } satisfies PipelineInfo<typeof AgentForgeInputSchema>,
  cognate: {
    pipeline: 'cognate',
    schema: CognateInputSchema,
    workflowType: WORKFLOW_TYPES.cognate,
    taskQueue: TASK_QUEUES.cognate,
    summary: (r: CognateRequest) =>
      `Cognate pretraining · session ${r.sessionId} · ${(r.models ?? DEFAULT_MODELS).length} models · ${r.config.maxSteps} steps · d${r.config.dModel}×${r.config.nLayers}`,
    details: (r: CognateRequest) =>
      [
        `**pipeline** cognate-pretraining`,
        `**session** ${r.sessionId}`,
        `**models** ${(r.models ?? DEFAULT_MODELS).map((m) => m.name).join(', ')}`,
        `**datasets** ${r.config.datasetSources.join(', ')} (${r.config.datasetMode})`,
        `**model** dModel ${r.config.dModel}, ${r.config.nLayers} layers, ${r.config.nHeads} heads, vocab ${r.config.vocabSize}`,
        `**optim** lr ${r.config.learningRate}, batch ${r.config.batchSize}×${r.config.gradientAccumulationSteps}, GrokFast ${r.config.grokfastMode}`,
      ].join('\n'),
  } satisfies PipelineInfo<typeof CognateInputSchema>,
} as const;

export function pipelineInfo(name: string) {
  if (name !== 'agent' && name !== 'cognate') throw new Error(`unknown pipeline "${name}" (expected "agent" or "cognate")`);
  return PIPELINES[name];
}

export { workflowIdFor };
