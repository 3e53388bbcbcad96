// Signal and query of cognatePretrainingWorkflow. Their names and payload types live beside the engine's
// config (activities/cognate/config.ts) so activities send them without importing workflow code.
import { defineQuery, defineSignal } from '@temporalio/workflow';
import { QUERIES } from '../../common/constants';
import { MODEL_PROGRESS_SIGNAL, type CognateProgress, type ModelProgressUpdate } from '../../activities/cognate/config';

export const modelProgressSignal = defineSignal<[ModelProgressUpdate]>(MODEL_PROGRESS_SIGNAL);
export const cognateProgressQuery = defineQuery<CognateProgress>(QUERIES.progress);
