// What one Cognate training attempt reports besides its progress signal: TensorBoard scalars under
// $FORGE_DATA_DIR/tensorboard/cognate/<session>/<model>/ and the worker's Prometheus metrics. Fed by the
// compute child's events in the activity process, through the shared sink (common/telemetry.ts).
import { telemetrySink } from '../../common/telemetry';
import type { TrainEvent } from './engine/trainer';

export function cognateTelemetry(args: { dataDir: string; sessionId: string; model: string; warn(message: string): void }) {
  const sink = telemetrySink({ ...args, pipeline: 'cognate', unit: args.model });
  return {
    onEvent(event: TrainEvent): void {
      sink.guard(event.kind, (tb, metrics) => {
        switch (event.kind) {
          case 'resumed':
            tb.restartAt(event.fromStep + 1);
            metrics.set({ step: event.fromStep });
            break;
          case 'step':
            tb.scalars(event.step, {
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
            tb.scalars(event.step, {
              'validation/loss': event.loss,
              'validation/perplexity': event.perplexity,
              'validation/token_accuracy': event.tokenAccuracy,
              'validation/act_mean_depth': event.meanDepth,
            });
            metrics.set({ validationLoss: event.loss });
            break;
          case 'checkpoint':
            tb.scalars(event.step, { 'checkpoint/seconds': event.seconds, 'checkpoint/mebibytes': event.bytes / 2 ** 20 });
            metrics.checkpoint(event.seconds);
            break;
        }
      });
    },
    close: sink.close,
  };
}
