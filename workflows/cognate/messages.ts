// Signals and queries of cognatePretrainingWorkflow. Pure: used by the workflow, activities and clients.
import { defineQuery, defineSignal } from '@temporalio/workflow';

/** One model's live training state, sent by trainModels at a bounded rate. */
export interface ModelProgressUpdate {
  model: string;
  phase: 'datasets' | 'training' | 'validation' | 'artifacts';
  step: number;
  totalSteps: number;
  loss: number | null;
  learningRate: number | null;
  tokensPerSecond?: number;
  valLoss?: number | null;
  message: string;
  resumedFromStep?: number;
}

/** The seed's TrainingProgress plus phase and per-model entries. */
export interface CognateProgress {
  progress: number;
  message: string;
  step: number;
  totalSteps: number;
  loss: number | null;
  learningRate: number | null;
  phase: 'validating' | 'datasets' | 'training' | 'artifacts' | 'completed' | 'failed' | 'cancelled';
  models: Record<string, ModelProgressUpdate>;
}

export const MODEL_PROGRESS_SIGNAL = 'modelProgress';
export const modelProgressSignal = defineSignal<[ModelProgressUpdate]>(MODEL_PROGRESS_SIGNAL);
export const cognateProgressQuery = defineQuery<CognateProgress>('progress');
