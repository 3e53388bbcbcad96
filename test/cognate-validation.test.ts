// Contradictory or malformed Cognate configs fail fast, name the field, and start nothing — at the client
// and inside the workflow. (Data-dependent errors — malformed dataset files, a tokenizer larger than
// vocabSize, an unwritable data dir — are tested where the data is read: cognate-pipeline.test.ts.)
import type { Client } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { TASK_QUEUES, WORKFLOW_TYPES } from '../common/constants';
import { InvalidInputError } from '../common/validation';
import { startRun } from '../client/runs';
import { startWorkflowOnlyWorker, testClient, workflowFailure } from './helpers/temporal';

const INVALID: { name: string; config?: Record<string, unknown>; input?: Record<string, unknown>; field: string }[] = [
  { name: 'dModel not divisible by nHeads', config: { dModel: 100, nHeads: 3 }, field: 'config.nHeads' },
  { name: 'odd head dimension (rotary)', config: { dModel: 36, nHeads: 4 }, field: 'config.nHeads' },
  { name: 'unknown dataset', config: { datasetSources: ['GSM8K', 'MMLU'] }, field: 'config.datasetSources.1' },
  { name: 'non-positive steps', config: { maxSteps: 0 }, field: 'config.maxSteps' },
  { name: 'negative batch size', config: { batchSize: -2 }, field: 'config.batchSize' },
  { name: 'unknown dataset mode', config: { datasetMode: 'torrent' }, field: 'config.datasetMode' },
  { name: 'seqLen beyond maxSeqLen', config: { seqLen: 8192, maxSeqLen: 4096 }, field: 'config.seqLen' },
  { name: 'memTopK above memCapacity', config: { memCapacity: 2, memTopK: 4 }, field: 'config.memTopK' },
  { name: 'actThreshold above 1', config: { actThreshold: 1.5 }, field: 'config.actThreshold' },
  { name: 'grokfastAlpha of 1', config: { grokfastAlpha: 1 }, field: 'config.grokfastAlpha' },
  { name: 'string learning rate', config: { learningRate: '2e-4' }, field: 'config.learningRate' },
  { name: 'unknown config field', config: { dropout: 0.1 }, field: 'config' },
  { name: 'model name with a slash', input: { sessionId: 'c1', models: [{ name: 'a/b' }] }, field: 'models.0.name' },
  { name: 'duplicate model names', input: { sessionId: 'c2', models: [{ name: 'm' }, { name: 'm' }] }, field: 'models.1.name' },
  { name: 'sessionId with ..', input: { sessionId: 'x..y' }, field: 'sessionId' },
];

const inputOf = (c: (typeof INVALID)[number]) => c.input ?? { sessionId: 'cfg', config: c.config };

let client: Client;
let worker: { stop(): Promise<void> };

beforeAll(async () => {
  client = await testClient();
  worker = await startWorkflowOnlyWorker('cognate');
});

afterAll(async () => {
  await worker.stop();
  await client.connection.close();
});

test.each(INVALID)('client: $name is rejected naming $field', async (c) => {
  const err = await startRun(client, 'cognate', inputOf(c)).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(InvalidInputError);
  expect((err as Error).message).toContain(`${c.field}:`);
});

test.each(INVALID)('workflow: $name fails at once, non-retryable, naming $field, no activity', async (c) => {
  const { cause, activitiesScheduled } = await workflowFailure(client, WORKFLOW_TYPES.cognate, TASK_QUEUES.cognate, inputOf(c));
  expect(cause).toBeInstanceOf(ApplicationFailure);
  expect(cause.nonRetryable).toBe(true);
  expect(cause.type).toBe('InvalidInput');
  expect(cause.message).toContain(`${c.field}:`);
  expect(activitiesScheduled).toBe(0);
});
