// What one Cognate training attempt reports besides its progress signal: TensorBoard scalars under
// $FORGE_DATA_DIR/tensorboard/cognate/<session>/<model>/ and the worker's Prometheus metrics. Fed by the
// compute child's events in the activity process; a failure here is logged once and never fails training.
import { trainingMetrics } from '../../common/metrics';
import { TensorBoardWriter, tensorboardDir } from '../../common/tensorboard';
import type { TrainEvent } from './engine/trainer';

export function cognateTelemetry(args: { dataDir: string; sessionId: string; model: string; warn(message: string): void }) {
  const metrics = trainingMetrics({ pipeline: 'cognate', session: args.sessionId, unit: args.model });
  let tb: TensorBoardWriter | null = null;
  let failed = false;
  const guard = (what: string, fn: () => void): void => {
    if (failed) return;
    try {
      fn();
    } catch (err) {
      failed = true;
      args.warn(`TensorBoard/metrics ${what} failed, no more summaries this attempt: ${(err as Error).message}`);
    }
  };
  guard('start', () => (tb = new TensorBoardWriter(tensorboardDir(args.dataDir, 'cognate', args.sessionId, args.model))));
  return {
    onEvent(event: TrainEvent): void {
      guard(event.kind, () => {
        switch (event.kind) {
          case 'resumed':
            tb?.restartAt(event.fromStep + 1);
            metrics.set({ step: event.fromStep });
            break;
          case 'step':
            tb?.scalars(event.step, {
              'train/loss': event.loss,
              'train/cross_entropy': event.ce,
              'train/learning_rate': event.learningRate,
              'train/tokens_per_second': event.tokensPerSecond,
              'train/grad_norm': event.gradNorm,
              'act/mean_depth': event.meanDepth,
              'ltm/fill': event.ltmFill,
            });
            metrics.set({
              step: event.step,
              loss: event.loss,
              learningRate: event.learningRate,
              tokensPerSecond: event.tokensPerSecond,
              actDepth: event.meanDepth,
              ltmFill: event.ltmFill,
            });
            break;
          case 'validation':
            tb?.scalars(event.step, {
              'validation/loss': event.loss,
              'validation/perplexity': event.perplexity,
              'validation/token_accuracy': event.tokenAccuracy,
              'validation/act_mean_depth': event.meanDepth,
            });
            metrics.set({ validationLoss: event.loss });
            break;
          case 'checkpoint':
            tb?.scalars(event.step, { 'checkpoint/seconds': event.seconds, 'checkpoint/mebibytes': event.bytes / 2 ** 20 });
            metrics.checkpoint(event.seconds);
            break;
        }
      });
    },
    close(): void {
      guard('close', () => tb?.close());
      metrics.close();
    },
  };
}
