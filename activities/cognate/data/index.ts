// Cognate dataset preparation: public surface for the activities and the trainer.
export {
  prepareDatasets,
  PREPARE_VERSION,
  type PrepareJob,
  type PrepareEvent,
  type PrepareResult,
  type PrepareStats,
  type PreparedManifest,
} from './prepare';
export { loadTokenizer, saveTokenizer, trainByteLevelBpe, type Tokenizer } from './tokenizer';
export { HUB_DATASETS, LOCAL_FILES, FIXTURES_DIR } from './sources';
export { resolveHubEndpoint, hubFileUrl } from './hub';
