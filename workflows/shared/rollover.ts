// Bounded history for workflows of any length (deterministic workflow code, shared by both pipelines).
// Training runs as chunks (each activity trains one unit for at most a time budget, checkpoints, returns);
// a workflow run ends with continue-as-new once the server suggests it, its history passes
// HISTORY_EVENTS_PER_RUN, or it received SIGNALS_PER_RUN progress signals. To roll over promptly, the chunks
// still running are cancelled: they stop at their next micro-batch/update boundary with a checkpoint, and
// the next run continues every unit from its newest checkpoint.
import { ActivityFailure, CancellationScope, condition, isCancellation, workflowInfo } from '@temporalio/workflow';

/** Our own ceiling when the server suggests nothing (its default suggestion is at 4 Ki events; the hard limit 51,200). */
export const HISTORY_EVENTS_PER_RUN = 4000;
/** Progress signals per run (the server accepts 10,000 per run); each costs about 4 events. */
export const SIGNALS_PER_RUN = 800;

/** Names of the patches (workflow.patched) that separate today's workflow logic from recorded histories'. */
export const PATCHES = {
  /** Training in chunks with continue-as-new (before: one activity per unit for the whole training). */
  chunkedTraining: 'chunked-training-v1',
  /** Upserts of Forge's search attributes at phase changes and chunk ends (before: none). */
  searchAttributes: 'forge-search-attributes-v1',
} as const;

export class RunBudget {
  /** Progress signals this run has received. */
  signals = 0;
  private draining = false;
  private readonly scopes = new Set<CancellationScope>();
  private readonly root = CancellationScope.current();

  due(): boolean {
    const info = workflowInfo();
    return info.continueAsNewSuggested || info.historyLength >= HISTORY_EVENTS_PER_RUN || this.signals >= SIGNALS_PER_RUN;
  }

  /** The most signals one activity may send now: an equal share of what is left of the run's budget. */
  signalShare(units: number): number {
    return Math.max(1, Math.floor((SIGNALS_PER_RUN - this.signals) / Math.max(1, units)));
  }

  /** When the budget runs out, cancel the running chunks (each checkpoints) so the run can continue as new. */
  watch(): void {
    condition(() => this.due()).then(
      () => {
        this.draining = true;
        for (const scope of this.scopes) scope.cancel();
      },
      () => undefined, // the workflow was cancelled: the chunks are cancelled with it
    );
  }

  /** Run one chunk; null when the run is rolling over (the chunk did not start, or stopped with a checkpoint). */
  async chunk<T>(start: () => Promise<T>): Promise<T | null> {
    if (this.draining || this.due()) {
      this.draining = true;
      return null;
    }
    const scope = new CancellationScope();
    this.scopes.add(scope);
    try {
      return await scope.run(start);
    } catch (err) {
      // While draining for a roll-over, a chunk that ends in any activity failure (cancelled, or timed out
      // because its worker died while stopping) is left to the next run, which continues from the newest
      // checkpoint; a failure that persists fails there. A cancellation of the whole workflow still propagates.
      if (this.draining && (isCancellation(err) || err instanceof ActivityFailure) && !this.root.consideredCancelled) return null;
      throw err;
    } finally {
      this.scopes.delete(scope);
    }
  }
}
