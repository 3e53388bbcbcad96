// The sink both pipelines' training telemetry writes through: one TensorBoard writer under
// $FORGE_DATA_DIR/tensorboard/<pipeline>/<session>/<unit>/ and the worker's Prometheus gauges for that unit.
// Telemetry is an aid, never a reason to lose training: the first failure is logged once and every later
// write of this attempt is skipped (a half-written summary stream is worse than a stopped one).
import type { Pipeline } from './constants';
import { trainingMetrics } from './metrics';
import { TensorBoardWriter, tensorboardDir } from './tensorboard';

export interface TelemetrySink {
  /** Runs `fn` unless an earlier write failed; a throw is logged once (naming `what`) and stops all later writes. */
  guard: (what: string, fn: (tb: TensorBoardWriter, metrics: ReturnType<typeof trainingMetrics>) => void) => void;
  close: () => void;
}

export function telemetrySink(args: {
  dataDir: string;
  pipeline: Pipeline;
  sessionId: string;
  unit: string;
  warn(message: string): void;
}): TelemetrySink {
  const metrics = trainingMetrics({ pipeline: args.pipeline, session: args.sessionId, unit: args.unit });
  let tb: TensorBoardWriter | null = null;
  let failed = false;
  const run = (what: string, fn: () => void): void => {
    if (failed) return;
    try {
      fn();
    } catch (err) {
      failed = true;
      args.warn(`TensorBoard/metrics ${what} failed, no more summaries this attempt: ${(err as Error).message}`);
    }
  };
  run('start', () => (tb = new TensorBoardWriter(tensorboardDir(args.dataDir, args.pipeline, args.sessionId, args.unit))));
  return {
    guard: (what, fn) => run(what, () => tb && fn(tb, metrics)),
    close: () => {
      run('close', () => tb?.close());
      metrics.close();
    },
  };
}
