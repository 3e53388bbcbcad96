// Child-process entry of createModelArtifacts: exporting a 25M model is heavy compute.
import { serveChild } from '../../../common/child';
import { exportArtifacts, type ExportJob, type ExportResult } from './artifacts';

serveChild<ExportJob, { stage: string }, ExportResult>(exportArtifacts);
