// Child-process entry of prepareDatasets (see common/child.ts childModulePath): keeps BPE training and
// encoding off the worker's event loop.
import { serveChild } from '../../../common/child';
import { prepareDatasets, type PrepareEvent, type PrepareJob, type PrepareResult } from './prepare';

serveChild<PrepareJob, PrepareEvent, PrepareResult>(prepareDatasets);
