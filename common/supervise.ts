// Activity-side supervision of a compute child process (common/child.ts): heartbeats carry the latest
// progress details; cancellation (delivered through heartbeats) or worker shutdown asks the child to stop,
// which writes a final checkpoint before the activity reports the cancellation.
import { CancelledFailure, Context } from '@temporalio/activity';
import type { Client } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { ChildFailure, runInChild } from './child';
import { FAILURE_TYPES } from './constants';

export interface SuperviseOptions<Input, Event> {
  modulePath: string;
  input: Input;
  onEvent: (event: Event) => void;
  /** Heartbeat details, read at every beat (keep them small: step and checkpoint path). */
  details: () => unknown;
  heartbeatEveryMs?: number;
  /** How long a stopping child may take to write its checkpoint before it is killed. */
  stopGraceMs?: number;
  /** Failure type when the child reports an error retrying cannot fix (bad config, malformed data). */
  nonRetryableType?: string;
}

/** A cancellation reason as text (an Error's message, else its JSON). */
function stopReasonText(reason: unknown): string {
  return reason instanceof Error ? reason.message : typeof reason === 'string' ? reason : JSON.stringify(reason);
}

export async function superviseChild<Input, Event, Result>(opts: SuperviseOptions<Input, Event>): Promise<Result> {
  const ctx = Context.current();
  const child = runInChild<Input, Event, Result>(opts.modulePath, opts.input, opts.onEvent);
  const beat = setInterval(() => ctx.heartbeat(opts.details()), opts.heartbeatEveryMs ?? 2000);
  ctx.heartbeat(opts.details());
  let stopReason: unknown;
  const onAbort = () => {
    stopReason = ctx.cancellationSignal.reason ?? new CancelledFailure('cancelled');
    child.requestStop();
    setTimeout(() => child.kill(), opts.stopGraceMs ?? 60_000).unref();
  };
  ctx.cancellationSignal.addEventListener('abort', onAbort);
  try {
    const result = await child.result;
    if (stopReason !== undefined) {
      ctx.heartbeat(opts.details()); // the final checkpoint, for the retry or the record
      throw stopReason instanceof Error ? stopReason : new CancelledFailure(stopReasonText(stopReason));
    }
    return result;
  } catch (err) {
    if (stopReason !== undefined) throw stopReason instanceof Error ? stopReason : new CancelledFailure(stopReasonText(stopReason));
    if (err instanceof ChildFailure && err.error.nonRetryable) {
      throw ApplicationFailure.nonRetryable(err.message, opts.nonRetryableType ?? FAILURE_TYPES.invalidConfig, err.error.stack);
    }
    throw err;
  } finally {
    clearInterval(beat);
    ctx.cancellationSignal.removeEventListener('abort', onAbort);
    child.kill();
  }
}

/**
 * Progress signals to the workflow at a bounded rate (history stays small however long training runs).
 * Failures to signal never fail the work: progress is advisory, results travel in the activity's return.
 */
export function throttledSignal<T>(client: Client, signalName: string, minIntervalMs = 2000): { send(update: T, force?: boolean): void; flush(): Promise<void> } {
  const execution = Context.current().info.workflowExecution;
  if (!execution) throw new Error('throttledSignal() needs an activity started by a workflow');
  const handle = client.workflow.getHandle(execution.workflowId);
  let last = 0;
  let pending: Promise<void> = Promise.resolve();
  return {
    send(update, force = false) {
      const now = Date.now();
      if (!force && now - last < minIntervalMs) return;
      last = now;
      pending = pending.then(() =>
        handle.signal(signalName, update).catch((err: Error) => {
          Context.current().log.warn(`progress signal failed: ${err.message}`);
        }),
      );
    },
    flush: () => pending,
  };
}
