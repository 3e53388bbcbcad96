// Names shared by clients, workers and workflows. Pure constants: workflow code imports this file.

export const TASK_QUEUES = {
  agent: 'agent-forge',
  cognate: 'cognate-pretraining',
} as const;

export const WORKFLOW_TYPES = {
  agent: 'agentForgeTrainingWorkflow',
  cognate: 'cognatePretrainingWorkflow',
} as const;

export const QUERIES = {
  progress: 'progress',
} as const;

export type Pipeline = keyof typeof TASK_QUEUES;

/** Workflow ids are derived from the sessionId so a run is findable and a re-start of the same session is a resume. */
export function workflowIdFor(pipeline: Pipeline, sessionId: string): string {
  return `${pipeline}-${sessionId}`;
}
