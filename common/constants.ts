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

/**
 * Failure types that retrying cannot fix: the workflows list them as non-retryable and the activities
 * raise them (ApplicationFailure.nonRetryable(message, FAILURE_TYPES.x)).
 */
export const FAILURE_TYPES = {
  /** The workflow input failed its zod schema. */
  invalidInput: 'InvalidInput',
  /** A config or plan that parsed but cannot be run (an environment that cannot seat the team, a missing checkpoint). */
  invalidConfig: 'InvalidConfig',
  /** Dataset files that are missing, malformed or inconsistent. */
  invalidDataset: 'InvalidDataset',
  /** A fine-tuning parent (initFrom) that is missing, damaged or does not fit the run's architecture. */
  invalidParent: 'InvalidParent',
} as const;

export const NON_RETRYABLE_TYPES: string[] = Object.values(FAILURE_TYPES);
