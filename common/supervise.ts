// The one activity-side supervision layer of both pipelines. A compute child process (common/child.ts)
// does the work; here: heartbeats carry the latest details (step/episode and checkpoint, for the retry);
// progress goes to the workflow as throttled signals within a per-activity budget (so a run's history
// stays bounded); cancellation (delivered through heartbeats) or worker shutdown asks the child to stop
// at its next micro-batch boundary and write a final checkpoint, with a grace period that follows the
// measured step time, before the activity reports the cancellation.
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
  /** How long a stopping child may take to write its checkpoint before it is killed (read when the stop is asked). */
  stopGraceMs?: number | (() => number);
  /** Failure type when the child reports an error retrying cannot fix (bad config, malformed data). */
  nonRetryableType?: string;
}

/** A cancellation reason as text (an Error's message, else its JSON). */
function stopReasonText(reason: unknown): string {
  return reason instanceof Error ? reason.message : typeof reason === 'string' ? reason : JSON.stringify(reason);
}

/** Grace for a stopping child when nothing measured says more is needed. */
export const DEFAULT_STOP_GRACE_MS = 60_000;

/**
 * The grace period for a stop: the default, or enough for the slowest unit of work the child must finish
 * before it can checkpoint (a micro-batch) plus the checkpoint write itself, both as measured, with margin.
 */
export function graceFollowingMeasurements(unitSeconds: number | null, checkpointSeconds: number | null): number {
  const needed = 3 * (unitSeconds ?? 0) + 3 * (checkpointSeconds ?? 0);
  return Math.max(DEFAULT_STOP_GRACE_MS, Math.ceil(needed * 1000));
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
    const grace = typeof opts.stopGraceMs === 'function' ? opts.stopGraceMs() : (opts.stopGraceMs ?? DEFAULT_STOP_GRACE_MS);
    setTimeout(() => child.kill(), grace).unref();
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

export interface ProgressSender<T> {
  /** Send unless the last one was less than the interval ago (force: regardless of the interval). */
  send(update: T, force?: boolean): void;
  flush(): Promise<void>;
  /** Signals sent so far. */
  readonly sent: number;
}

/**
 * Progress signals to the workflow at a bounded rate and at most `maxSignals` in all (the workflow hands
 * each activity its share of the run's signal budget). Failures to signal never fail the work: progress is
 * advisory, results travel in the activity's return.
 */
export function throttledSignal<T>(client: Client, signalName: string, minIntervalMs = 2000, maxSignals = Infinity): ProgressSender<T> {
  const execution = Context.current().info.workflowExecution;
  if (!execution) throw new Error('throttledSignal() needs an activity started by a workflow');
  const handle = client.workflow.getHandle(execution.workflowId);
  let last = 0;
  let sent = 0;
  let pending: Promise<void> = Promise.resolve();
  return {
    get sent() {
      return sent;
    },
    send(update, force = false) {
      const now = Date.now();
      if ((!force && now - last < minIntervalMs) || sent >= maxSignals) return;
      last = now;
      sent++;
      pending = pending.then(() =>
        handle.signal(signalName, update).catch((err: Error) => {
          Context.current().log.warn(`progress signal failed: ${err.message}`);
        }),
      );
    },
    flush: () => pending,
  };
}

export interface ComputeActivityOptions<Input, Event, Result, Update> {
  client: Client;
  modulePath: string;
  input: Input;
  /** Heartbeat details, updated in place by onEvent and read at every beat. */
  details: Record<string, unknown>;
  /** Progress signalled to the workflow; `update` is updated in place by onEvent. Null: no progress signals. */
  progress: { signalName: string; update: Update; intervalMs: number; maxSignals?: number; final?: (result: Result) => string } | null;
  /** Apply a child event to details/update; return 'signal' to send the update (throttled) or 'now' to send it at once. */
  onEvent(event: Event): 'signal' | 'now' | void;
  heartbeatEveryMs?: number;
  stopGraceMs?: number | (() => number);
  nonRetryableType?: string;
}

/** superviseChild plus progress signals: what every compute activity of both pipelines runs. */
export async function superviseCompute<Input, Event, Result, Update extends { message: string }>(
  opts: ComputeActivityOptions<Input, Event, Result, Update>,
): Promise<Result> {
  const progress = opts.progress;
  const signal = progress ? throttledSignal<Update>(opts.client, progress.signalName, progress.intervalMs, progress.maxSignals) : null;
  let signalled = false;
  const onEvent = (event: Event): void => {
    const what = opts.onEvent(event);
    if (!what || !progress || !signal) return;
    signal.send({ ...progress.update }, what === 'now');
    signalled = true;
  };
  try {
    const result = await superviseChild<Input, Event, Result>({
      modulePath: opts.modulePath,
      input: opts.input,
      onEvent,
      details: () => opts.details,
      heartbeatEveryMs: opts.heartbeatEveryMs,
      stopGraceMs: opts.stopGraceMs,
      nonRetryableType: opts.nonRetryableType,
    });
    if (progress && signal && signalled && progress.final) signal.send({ ...progress.update, message: progress.final(result) }, true);
    return result;
  } finally {
    await signal?.flush();
  }
}
