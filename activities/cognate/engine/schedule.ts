// Learning rate: linear warmup, then cosine decay to minLearningRate at the last step (nanoGPT style).
// ACT: halting units untrained and no ponder cost during a warmup, then the ponder cost ramps in.
import type { CognateConfig, OptimConfig } from '../config';

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

export type ActScheduleConfig = Pick<CognateConfig, 'actWarmupSteps' | 'actPonderRampSteps'>;

/**
 * ACT for the optimizer step with 0-based index `step`: whether the halting units are trained, and the factor
 * on the ponder cost (0 during the warmup, then rising linearly to 1 over actPonderRampSteps).
 */
export function actScheduleAt(step: number, config: ActScheduleConfig): { trainHalting: boolean; ponderScale: number } {
  const { actWarmupSteps: warmup, actPonderRampSteps: ramp } = config;
  if (step < warmup) return { trainHalting: false, ponderScale: 0 };
  return { trainHalting: true, ponderScale: ramp > 0 ? Math.min(1, (step - warmup + 1) / ramp) : 1 };
}
