// Bad input fails fast, names the field, and writes nothing: at the client helper and inside the workflow
// (a run started without client-side validation, e.g. by the plain `temporal` CLI).
import fs from 'node:fs';
import type { Client } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { TASK_QUEUES, WORKFLOW_TYPES } from '../common/constants';
import { InvalidInputError } from '../common/validation';
import { startRun } from '../client/runs';
import { startWorkflowOnlyWorker, testClient, workflowFailure } from './helpers/temporal';

const INVALID: { name: string; input: Record<string, unknown>; field: string }[] = [
  { name: 'unknown trainingMode', input: { sessionId: 'v1', config: { trainingMode: 'telepathy' } }, field: 'config.trainingMode' },
  {
    name: 'unknown architecture',
    input: { sessionId: 'v2', config: { agentArchitecture: 'lstm_agent' } },
    field: 'config.agentArchitecture',
  },
  { name: 'negative episodes', input: { sessionId: 'v3', config: { maxEpisodes: -5 } }, field: 'config.maxEpisodes' },
  { name: 'fractional episodes', input: { sessionId: 'v4', config: { maxEpisodes: 10.5 } }, field: 'config.maxEpisodes' },
  {
    name: 'more agents than maxAgents',
    input: { sessionId: 'v5', config: { maxAgents: 1 }, agents: [{ id: 'a' }, { id: 'b' }] },
    field: 'agents',
  },
  { name: 'sessionId with ../', input: { sessionId: '../etc' }, field: 'sessionId' },
  { name: 'sessionId with /', input: { sessionId: 'a/b' }, field: 'sessionId' },
  { name: 'unknown config field', input: { sessionId: 'v8', config: { maxEpisodez: 10 } }, field: 'config' },
  { name: 'unknown top-level field', input: { sessionId: 'v9', extra: true }, field: '(input)' },
  { name: 'non-numeric rate', input: { sessionId: 'v10', config: { learningRate: 'fast' } }, field: 'config.learningRate' },
  { name: 'exploration rate above 1', input: { sessionId: 'v11', config: { explorationRate: 1.5 } }, field: 'config.explorationRate' },
  { name: 'empty environment list', input: { sessionId: 'v12', config: { environmentTypes: [] } }, field: 'config.environmentTypes' },
  {
    name: 'unknown protocol',
    input: { sessionId: 'v13', config: { communicationProtocols: ['carrier_pigeon'] } },
    field: 'config.communicationProtocols.0',
  },
  { name: 'duplicate agent ids', input: { sessionId: 'v14', agents: [{ id: 'x' }, { id: 'x' }] }, field: 'agents.1.id' },
  {
    name: 'numHeads not dividing hiddenSize',
    input: { sessionId: 'v15', config: { hiddenSize: 30, numHeads: 8 } },
    field: 'config.numHeads',
  },
  { name: 'missing sessionId', input: { config: {} }, field: 'sessionId' },
  {
    name: 'a team larger than the environments seat',
    input: { sessionId: 'v17', config: { maxAgents: 8 }, agents: ['a', 'b', 'c', 'd', 'e'].map((id) => ({ id })) },
    field: 'agents',
  },
];

let client: Client;
let worker: { stop(): Promise<void> };

beforeAll(async () => {
  client = await testClient();
  worker = await startWorkflowOnlyWorker('agent');
});

afterAll(async () => {
  await worker.stop();
  await client.connection.close();
});

describe('client-side validation', () => {
  test.each(INVALID)('$name is rejected naming $field, and no run starts', async ({ input, field }) => {
    await expect(startRun(client, 'agent', input)).rejects.toThrow(InvalidInputError);
    await expect(startRun(client, 'agent', input)).rejects.toThrow(
      field === '(input)' ? /\(input\)|Unrecognized key/ : new RegExp(`${field.replace(/\./g, '\\.')}:`),
    );
  });
});

describe('workflow-side validation (input that bypassed the client)', () => {
  test.each(INVALID)('$name fails the workflow at once with a non-retryable error naming $field', async ({ input, field }) => {
    const dataDirBefore = fs.existsSync(process.env.FORGE_DATA_DIR!) ? fs.readdirSync(process.env.FORGE_DATA_DIR!) : [];
    const started = Date.now();
    const { cause, activitiesScheduled } = await workflowFailure(client, WORKFLOW_TYPES.agent, TASK_QUEUES.agent, input);
    expect(cause).toBeInstanceOf(ApplicationFailure);
    expect(cause.nonRetryable).toBe(true);
    expect(cause.type).toBe('InvalidInput');
    expect(cause.message).toContain(field === '(input)' ? 'Unrecognized key' : `${field}:`);
    expect(Date.now() - started).toBeLessThan(15_000);
    expect(activitiesScheduled).toBe(0);
    const dataDirAfter = fs.existsSync(process.env.FORGE_DATA_DIR!) ? fs.readdirSync(process.env.FORGE_DATA_DIR!) : [];
    expect(dataDirAfter).toEqual(dataDirBefore);
  });
});
