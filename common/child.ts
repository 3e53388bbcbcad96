// Heavy compute runs in a child process so the Temporal worker's event loop keeps serving heartbeats,
// queries and cancellation. Protocol over the IPC channel:
//   parent -> child: {type:'start', input} once, then optionally {type:'stop'} (checkpoint and finish early)
//   child -> parent: {type:'event', event}* then {type:'done', result} or {type:'error', error}
// The child exits when the IPC channel closes, so a SIGKILLed worker leaves no orphaned trainer behind.
import { fork, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

export interface ChildError {
  message: string;
  /** Bad input or unrecoverable state: retrying the activity cannot help. */
  nonRetryable?: boolean;
  stack?: string;
}

export class ChildFailure extends Error {
  constructor(readonly error: ChildError) {
    super(error.message);
    this.name = 'ChildFailure';
  }
}

export interface ChildHandle<Result> {
  /** Resolves with the child's result; rejects with ChildFailure or when the process dies. */
  result: Promise<Result>;
  /** Ask the child to finish early (it writes a final checkpoint and returns normally). */
  requestStop(): void;
  kill(): void;
  pid: number | undefined;
}

/**
 * The one convention for compute entry points: a file `<name>.child.ts` beside the code it runs, whose only
 * statement is `serveChild(fn)`. Returns its path with the extension this process runs from (.ts under
 * tsx and jest, .js once compiled), so nothing hard-codes '.ts'.
 */
export function childModulePath(dir: string, name: string): string {
  for (const ext of ['.js', '.ts']) {
    const candidate = path.join(dir, `${name}.child${ext}`);
    if (fs.existsSync(candidate)) return candidate;
  }
  throw new Error(`compute entry ${path.join(dir, name)}.child.(js|ts) does not exist`);
}

/** Fork `modulePath` (a .ts file runs through tsx) and hand it `input`. */
export function runInChild<Input, Event, Result>(modulePath: string, input: Input, onEvent: (event: Event) => void): ChildHandle<Result> {
  const execArgv = modulePath.endsWith('.ts') ? ['--import', 'tsx'] : [];
  const child: ChildProcess = fork(modulePath, [], { execArgv, stdio: ['ignore', 'inherit', 'inherit', 'ipc'], env: process.env });
  let settled = false;
  const result = new Promise<Result>((resolve, reject) => {
    child.on('message', (raw) => {
      const msg = raw as { type: string; event?: Event; result?: Result; error?: ChildError };
      if (msg.type === 'event') onEvent(msg.event as Event);
      else if (msg.type === 'done') {
        settled = true;
        resolve(msg.result as Result);
      } else if (msg.type === 'error') {
        settled = true;
        reject(new ChildFailure(msg.error as ChildError));
      }
    });
    child.on('error', (err) => {
      if (!settled) reject(err);
      settled = true;
    });
    child.on('exit', (code, signal) => {
      if (!settled) reject(new Error(`compute process ${modulePath} exited (code ${code}, signal ${signal}) before reporting a result`));
      settled = true;
    });
  });
  child.send({ type: 'start', input });
  return {
    result,
    pid: child.pid,
    requestStop: () => {
      if (child.connected) child.send({ type: 'stop' });
    },
    kill: () => {
      child.kill('SIGKILL');
    },
  };
}

export interface ChildContext<Event> {
  emit(event: Event): void;
  /** True once the parent asked to stop: finish the current step, checkpoint, return. */
  stopRequested(): boolean;
}

/** Entry point of a child module: `serveChild(async (input, ctx) => result)`. */
export function serveChild<Input, Event, Result>(main: (input: Input, ctx: ChildContext<Event>) => Promise<Result>): void {
  if (!process.send) throw new Error('serveChild() must run in a process started by runInChild()');
  let stop = false;
  process.on('disconnect', () => process.exit(1));
  process.on('message', (raw) => {
    const msg = raw as { type: string; input?: Input };
    if (msg.type === 'stop') stop = true;
    if (msg.type !== 'start') return;
    const ctx: ChildContext<Event> = {
      emit: (event) => process.send?.({ type: 'event', event }),
      stopRequested: () => stop,
    };
    main(msg.input as Input, ctx).then(
      (result) => process.send?.({ type: 'done', result }, () => process.exit(0)),
      (err: unknown) => {
        const e = err as Error & { nonRetryable?: boolean };
        process.send?.(
          { type: 'error', error: { message: e?.message ?? String(err), nonRetryable: e?.nonRetryable, stack: e?.stack } },
          () => process.exit(1),
        );
      },
    );
  });
}

/** An error the child marks as not worth retrying (bad config, malformed data). */
export class NonRetryableError extends Error {
  readonly nonRetryable = true;
}
