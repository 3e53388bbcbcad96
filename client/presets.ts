// Small, real configurations: the demo and the end-to-end tests run these to completion in minutes on 2 cores.
import type { CognateConfig } from '../activities/cognate/config';

/** A tiny Cognate (≈0.2M parameters) on the bundled fixtures: ACT, LTM and GrokFast all on. */
export const TINY_COGNATE: Partial<CognateConfig> = {
  dModel: 64,
  nLayers: 2,
  nHeads: 2,
  dFF: 128,
  vocabSize: 1024,
  maxSeqLen: 128,
  seqLen: 64,
  dMem: 64,
  memCapacity: 256,
  memTopK: 4,
  maxSteps: 60,
  batchSize: 4,
  gradientAccumulationSteps: 1,
  saveSteps: 10,
  evalSteps: 20,
  evalBatches: 2,
  warmupSteps: 5,
  learningRate: 3e-3,
  minLearningRate: 3e-4,
  maxTrainSamples: 200,
  maxEvalSamples: 20,
  datasetMode: 'fixtures',
  // A demo run lasts a minute: livelier progress than the default's 10 s costs nothing worth bounding.
  progressIntervalSeconds: 2,
};
