// What one Agent Forge training attempt (an agent alone, or the team) reports besides its progress signal:
// TensorBoard scalars under $FORGE_DATA_DIR/tensorboard/agent/<session>/<unit>/ (per training batch, and the
// final greedy evaluation beside a uniformly random policy's on the same episodes) and the worker's
// Prometheus metrics, through the shared sink (common/telemetry.ts): a failure never fails training.
import { telemetrySink } from '../../common/telemetry';
import type { EvalMetrics, TrainEvent } from './engine/train';

export function agentTelemetry(args: { dataDir: string; sessionId: string; unit: string; warn(message: string): void }) {
  const sink = telemetrySink({ ...args, pipeline: 'agent' });
  let restarted = false;
  return {
    onEvent(event: TrainEvent): void {
      sink.guard(event.type, (tb, metrics) => {
        if (event.type === 'checkpoint') {
          metrics.checkpoint(event.seconds);
          tb.scalars(event.episode, { 'checkpoint/seconds': event.seconds });
          return;
        }
        if (event.type === 'warning') return;
        const p = event.progress;
        // The first batch after a resume: an earlier attempt's batches past the checkpoint are superseded.
        if (!restarted && p.resumedFromEpisode > 0) tb.restartAt(p.resumedFromEpisode + 1);
        restarted = true;
        tb.scalars(p.episode, {
          'train/reward': p.reward,
          'train/success_rate': p.successRate,
          'train/coordination_score': p.coordinationScore,
          'train/curriculum_level': p.level,
        });
        metrics.set({ episode: p.episode, reward: p.reward, successRate: p.successRate, coordination: p.coordinationScore });
      });
    },
    /** The final evaluation: trained greedy policy and the uniformly random one on the same seeded episodes. */
    evaluation(episode: number, m: { trained: EvalMetrics; random: EvalMetrics }): void {
      sink.guard('evaluation', (tb) =>
        tb.scalars(episode, {
          'eval/reward_trained': m.trained.reward,
          'eval/reward_random': m.random.reward,
          'eval/success_rate_trained': m.trained.successRate,
          'eval/success_rate_random': m.random.successRate,
          'eval/coordination_trained': m.trained.coordinationScore,
          'eval/coordination_random': m.random.coordinationScore,
        }),
      );
    },
    close: sink.close,
  };
}
