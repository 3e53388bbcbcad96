// Compute process of the agent activities (started with common/child.ts runInChild): trains one agent
// or the team, or writes the artifacts, so the worker's event loop stays free.
import { serveChild } from '../../../common/child';
import { PIPELINE_BACKEND, initBackend } from '../../../common/backend';
import type { ArtifactFile, ArtifactJob } from './artifacts';
import { writeAgentArtifactsWithReport } from './report';
import { runTraining, type TrainEvent, type TrainJob, type TrainResult } from './train';

export type ChildJob = ({ kind: 'agent' | 'team' } & TrainJob) | ArtifactJob;
export type ChildResult = TrainResult | { files: ArtifactFile[]; report: string };

serveChild<ChildJob, TrainEvent, ChildResult>(async (job, ctx) => {
  await initBackend(undefined, PIPELINE_BACKEND.agent);
  if (job.kind === 'artifacts') return writeAgentArtifactsWithReport(job);
  return runTraining(job, ctx);
});
