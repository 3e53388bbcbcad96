// Client helpers on @temporalio/client: validate, start, watch, cancel and list pipeline runs.
import { WorkflowIdConflictPolicy, WorkflowIdReusePolicy, type Client, type WorkflowHandle } from '@temporalio/client';
import { QUERIES, workflowIdFor, type Pipeline } from '../common/constants';
import { SA } from '../common/search-attributes';
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
    // Findable from the first moment; the workflow keeps phase, step and the latest metric current.
    typedSearchAttributes: [
      { key: SA.pipeline, value: pipeline },
      { key: SA.session, value: request.sessionId },
      { key: SA.phase, value: 'validating' },
      ...(parentOf(request) ? [{ key: SA.parent, value: parentOf(request) as string }] : []),
    ],
  });
  return { pipeline, sessionId: request.sessionId, workflowId, runId: handle.firstExecutionRunId, handle };
}

/** A fine-tuning run's parent as `<session>/<unit>` or its folder (the ForgeParent search attribute). */
function parentOf(request: unknown): string | undefined {
  const init = (request as { initFrom?: { sessionId?: string; agent?: string; model?: string; path?: string } }).initFrom;
  if (!init) return undefined;
  return init.path ?? `${init.sessionId}/${init.agent ?? init.model}`;
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
  /** Forge's search attributes (absent on runs started before they existed). */
  phase?: string;
  step?: number;
  loss?: number;
  successRate?: number;
  backend?: string;
  /** Lineage: the parent `<session>/<agent|model>` (or folder) a fine-tuning run was initialised from. */
  parent?: string;
}

export interface ListFilter {
  pipeline?: Pipeline;
  phase?: string;
  session?: string;
  /** Any further visibility query, ANDed (e.g. `ForgeLoss < 3`). */
  query?: string;
}

/** A visibility query string: string values are quoted with ' escaped (they come from users). */
export function listQuery(filter: ListFilter): string {
  const q = (v: string) => `'${v.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
  const types = filter.pipeline
    ? [pipelineInfo(filter.pipeline).workflowType]
    : [pipelineInfo('agent').workflowType, pipelineInfo('cognate').workflowType];
  const parts = [`(${types.map((t) => `WorkflowType = ${q(t)}`).join(' OR ')})`];
  if (filter.phase) parts.push(`${SA.phase.name} = ${q(filter.phase)}`);
  if (filter.session) parts.push(`${SA.session.name} = ${q(filter.session)}`);
  if (filter.query) parts.push(`(${filter.query})`);
  return parts.join(' AND ');
}

export async function listRuns(client: Client, filter: ListFilter = {}, limit = 50): Promise<RunListing[]> {
  const out: RunListing[] = [];
  for await (const wf of client.workflow.list({ query: listQuery(filter) })) {
    const sa = wf.typedSearchAttributes;
    out.push({
      workflowId: wf.workflowId,
      runId: wf.runId,
      type: wf.type,
      status: wf.status.name,
      startTime: wf.startTime,
      closeTime: wf.closeTime,
      phase: sa.get(SA.phase),
      step: sa.get(SA.step),
      loss: sa.get(SA.loss),
      successRate: sa.get(SA.successRate),
      backend: sa.get(SA.backend),
      parent: sa.get(SA.parent) || (typeof wf.memo?.initFrom === 'string' ? wf.memo.initFrom : undefined),
    });
    if (out.length >= limit) break;
  }
  return out;
}
