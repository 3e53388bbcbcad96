// Child-process entry of Cognate training: the activity forks this file (common/child.ts) so the
// Temporal worker's event loop stays free for heartbeats and cancellation while the CPU trains.
import { serveChild } from '../../../common/child';
import { train, type TrainEvent, type TrainJob, type TrainSummary } from './trainer';

serveChild<TrainJob, TrainEvent, TrainSummary>(train);
