// Learning rate: linear warmup, then cosine decay to minLearningRate at the last step (nanoGPT style).
import type { OptimConfig } from '../config';

export type ScheduleConfig = Pick<OptimConfig, 'learningRate' | 'minLearningRate' | 'warmupSteps'>;

/** Learning rate for the optimizer step with 0-based index `step` out of `totalSteps`. */
export function learningRateAt(step: number, config: ScheduleConfig, totalSteps: number): number {
  const { learningRate: peak, minLearningRate: floor, warmupSteps } = config;
  // (step + 1) so the very first update is not a wasted zero-lr step.
  if (step < warmupSteps) return (peak * (step + 1)) / warmupSteps;
  const decaySteps = totalSteps - 1 - warmupSteps;
  if (decaySteps <= 0) return peak;
  const progress = Math.min(1, (step - warmupSteps) / decaySteps);
  return floor + 0.5 * (1 + Math.cos(Math.PI * progress)) * (peak - floor);
}
