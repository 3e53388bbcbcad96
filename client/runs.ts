// Client helpers on @temporalio/client: validate, start, watch, cancel and list pipeline runs.
import { WorkflowIdConflictPolicy, WorkflowIdReusePolicy, type Client, type WorkflowHandle } from '@temporalio/client';
import { QUERIES, workflowIdFor, type Pipeline } from '../common/constants';
import { parseOrThrow } from '../common/validation';
import { pipelineInfo } from './pipelines';

export interface StartedRun {
  pipeline: Pipeline;
  sessionId: string;
  workflowId: string;
  runId: string;
  handle: WorkflowHandle;
}

/**
 * Validate `input` (throws InvalidInputError naming each bad field; nothing is started) and start the run.
 * The workflow id is derived from the sessionId: re-starting a finished or failed session continues from its
 * checkpoints; starting a session that is still running is refused.
 */
export async function startRun(client: Client, pipeline: Pipeline, input: unknown): Promise<StartedRun> {
  const info = pipelineInfo(pipeline);
  const request = parseOrThrow(info.schema, input) as { sessionId: string };
  const workflowId = workflowIdFor(pipeline, request.sessionId);
  const handle = await client.workflow.start(info.workflowType, {
    taskQueue: info.taskQueue,
    workflowId,
    args: [input],
    workflowIdReusePolicy: WorkflowIdReusePolicy.ALLOW_DUPLICATE,
    workflowIdConflictPolicy: WorkflowIdConflictPolicy.FAIL,
    staticSummary: (info.summary as (r: unknown) => string)(request),
    staticDetails: (info.details as (r: unknown) => string)(request),
  });
  return { pipeline, sessionId: request.sessionId, workflowId, runId: handle.firstExecutionRunId, handle };
}

export function runHandle(client: Client, pipeline: Pipeline, sessionId: string): WorkflowHandle {
  return client.workflow.getHandle(workflowIdFor(pipeline, sessionId));
}

export async function queryProgress<T = Record<string, unknown>>(handle: WorkflowHandle): Promise<T> {
  return handle.query<T>(QUERIES.progress);
}

/** The input the session's latest run was started with (for `forge resume`). */
export async function lastInput(client: Client, pipeline: Pipeline, sessionId: string): Promise<unknown> {
  const handle = runHandle(client, pipeline, sessionId);
  const history = await handle.fetchHistory();
  const started = history.events?.[0]?.workflowExecutionStartedEventAttributes;
  const payload = started?.input?.payloads?.[0];
  if (!payload?.data) throw new Error(`no input recorded for ${pipeline} session "${sessionId}"`);
  return JSON.parse(Buffer.from(payload.data).toString('utf8'));
}

export interface RunListing {
  workflowId: string;
  runId: string;
  type: string;
  status: string;
  startTime: Date;
  closeTime?: Date;
  /** Lineage: the parent `<session>/<agent|model>` of a fine-tuning run (memo set by the workflow). */
  initFrom?: string;
}

export async function listRuns(client: Client, pipeline?: Pipeline, limit = 50): Promise<RunListing[]> {
  const types = pipeline ? [pipelineInfo(pipeline).workflowType] : [pipelineInfo('agent').workflowType, pipelineInfo('cognate').workflowType];
  const query = types.map((t) => `WorkflowType = '${t}'`).join(' OR ');
  const out: RunListing[] = [];
  for await (const wf of client.workflow.list({ query })) {
    const initFrom = typeof wf.memo?.initFrom === 'string' ? wf.memo.initFrom : undefined;
    out.push({ workflowId: wf.workflowId, runId: wf.runId, type: wf.type, status: wf.status.name, startTime: wf.startTime, closeTime: wf.closeTime, ...(initFrom ? { initFrom } : {}) });
    if (out.length >= limit) break;
  }
  return out;
}
