// Child-process entry: runInChild(require.resolve('./child'), job, onEvent) keeps BPE training and
// encoding off the worker's event loop.
import { serveChild } from '../../../common/child';
import { prepareDatasets, type PrepareEvent, type PrepareJob, type PrepareResult } from './prepare';

serveChild<PrepareJob, PrepareEvent, PrepareResult>(prepareDatasets);
