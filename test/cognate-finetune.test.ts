// Cognate continued pretraining / fine-tuning (initFrom) on the real dev server at the tiny preset:
// a parent run is exported, a GSM8K-only fine-tuning run started with `forge start cognate --init-from`
// reuses its weights, LTM bank and tokenizer, reports validation loss before and after, and records the
// parent; parents that do not fit (vocabSize, tokenizer) are refused before anything is written; a resumed
// fine-tuning run continues from its own checkpoint even when the parent is gone; a parent trained without ACT
// is fine-tuned with ACT on (the halting units are new, everything else is the parent's).
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import type { Client } from '@temporalio/client';
import { WorkflowFailedError } from '@temporalio/client';
import type { ApplicationFailure } from '@temporalio/common';
import { TINY_COGNATE } from '../client/presets';
import { startRun } from '../client/runs';
import { sha256File } from '../common/export/files';
import { readSafetensors } from '../common/export/safetensors';
import { train, type TrainEvent, type TrainJob } from '../activities/cognate/engine/trainer';
import type { CognateParentRef } from '../activities/cognate/engine/init-from';
import { CognateConfigSchema, type CognateConfig } from '../activities/cognate/config';
import { checkCognateInitFrom } from '../activities/cognate/check-init-from';
import { killAndWait, ROOT, sessionId, spawnWorker, testClient } from './helpers/temporal';

jest.setTimeout(10 * 60_000);
const run = promisify(execFile);
const dataDir = () => process.env.FORGE_DATA_DIR!;
const forge = (...args: string[]) =>
  run(process.execPath, ['--import', 'tsx', path.join(ROOT, 'cli', 'forge.ts'), ...args], {
    cwd: ROOT,
    env: process.env,
    maxBuffer: 16 << 20,
  });

let client: Client;
let worker: ReturnType<typeof spawnWorker>;
const parentSession = sessionId('cft-parent');
const parentDir = () => path.join(dataDir(), 'cognate', parentSession, 'm1');

/** The training (not model) fields of the tiny preset: the model fields come from the parent. */
const TRAINING_FIELDS = (({
  maxSteps,
  batchSize,
  gradientAccumulationSteps,
  seqLen,
  saveSteps,
  evalSteps,
  evalBatches,
  maxTrainSamples,
  maxEvalSamples,
  datasetMode,
}) => ({
  maxSteps,
  batchSize,
  gradientAccumulationSteps,
  seqLen,
  saveSteps,
  evalSteps,
  evalBatches,
  maxTrainSamples,
  maxEvalSamples,
  datasetMode,
}))(TINY_COGNATE as Required<typeof TINY_COGNATE>);

beforeAll(async () => {
  client = await testClient();
  worker = spawnWorker('cognate');
  const parent = await startRun(client, 'cognate', {
    sessionId: parentSession,
    config: { ...TINY_COGNATE, maxSteps: 20 },
    models: [{ name: 'm1' }],
  });
  await parent.handle.result();
});
afterAll(async () => {
  await killAndWait(worker.proc, 'SIGTERM');
  await client.connection.close();
});

async function refusal(id: string, config: Record<string, unknown>): Promise<{ cause: ApplicationFailure; activities: number }> {
  const handle = await client.workflow.start('cognatePretrainingWorkflow', {
    taskQueue: 'cognate-pretraining',
    workflowId: `cognate-${id}`,
    args: [{ sessionId: id, config, initFrom: { sessionId: parentSession, model: 'm1' } }],
  });
  const err = await handle.result().catch((e: unknown) => e);
  expect(err).toBeInstanceOf(WorkflowFailedError);
  const activities = ((await handle.fetchHistory()).events ?? []).filter((e) => e.activityTaskScheduledEventAttributes).length;
  return { cause: (err as WorkflowFailedError).cause?.cause as ApplicationFailure, activities };
}

test('a parent whose vocabSize or tokenizer differs is refused before anything is written, naming the difference', async () => {
  const a = sessionId('cft-vocab');
  const vocab = await refusal(a, { ...TRAINING_FIELDS, vocabSize: 2048 });
  expect(vocab.cause.type).toBe('InvalidParent');
  expect(vocab.cause.message).toMatch(/vocabSize \(vocab_size\): parent 1024, this run 2048/);

  const other = path.join(dataDir(), `other-tokenizer-${process.pid}.json`);
  fs.writeFileSync(other, fs.readFileSync(path.join(parentDir(), 'tokenizer.json'), 'utf8').replace(/\s*$/, '\n\n'));
  const b = sessionId('cft-tok');
  const tok = await refusal(b, { ...TRAINING_FIELDS, tokenizerPath: other });
  expect(tok.cause.type).toBe('InvalidParent');
  expect(tok.cause.message).toMatch(/tokenizer: config\.tokenizerPath .* is not the parent's tokenizer\.json/);

  // The parent named by its folder passes the same check; a folder outside FORGE_DATA_DIR is refused.
  const byPath = checkCognateInitFrom(dataDir(), {
    sessionId: 'x',
    initFrom: { path: parentDir() },
    config: CognateConfigSchema.parse({ ...TRAINING_FIELDS }),
    explicitFields: Object.keys(TRAINING_FIELDS),
  });
  expect(byPath.parent).toMatchObject({ sessionId: parentSession, model: 'm1' });
  expect(() =>
    checkCognateInitFrom(dataDir(), {
      sessionId: 'x',
      initFrom: { path: '/etc' },
      config: CognateConfigSchema.parse({}),
      explicitFields: [],
    }),
  ).toThrow(/not under FORGE_DATA_DIR/);

  for (const [id, r] of [
    [a, vocab],
    [b, tok],
  ] as const) {
    expect(r.activities).toBe(1); // checkInitFrom only: no dataset preparation, no training
    expect(fs.existsSync(path.join(dataDir(), 'cognate', id))).toBe(false);
    expect(fs.existsSync(path.join(dataDir(), 'checkpoints', 'cognate', id))).toBe(false);
  }
});

let fineTuned: {
  config: CognateConfig;
  initFrom: CognateParentRef & { inherited: string[] };
  models: { model: string; seed: number; validationBefore: number; validationLoss: number }[];
  dataset: { datasetDir: string };
};

test('forge start cognate --init-from <session>/<model>: GSM8K only, own schedule; validation before and after; the parent recorded; forge list shows it', async () => {
  const id = sessionId('cft-gsm8k');
  const configFile = path.join(dataDir(), `${id}.json`);
  fs.writeFileSync(
    configFile,
    JSON.stringify({
      ...TRAINING_FIELDS,
      maxSteps: 12,
      datasetSources: ['GSM8K'],
      learningRate: 1e-3,
      minLearningRate: 1e-4,
      warmupSteps: 2,
    }),
  );
  await forge('start', 'cognate', '--session', id, '--config', configFile, '--init-from', `${parentSession}/m1`);
  fineTuned = JSON.parse((await forge('result', 'cognate', id)).stdout);

  expect(fineTuned.initFrom).toMatchObject({ sessionId: parentSession, model: 'm1' });
  expect(fineTuned.initFrom.inherited).toEqual(expect.arrayContaining(['dModel', 'nLayers', 'vocabSize', 'maxSeqLen']));
  expect(fineTuned.config).toMatchObject({ dModel: 64, nLayers: 2, vocabSize: 1024, datasetSources: ['GSM8K'], learningRate: 1e-3 });
  expect(fineTuned.config.tokenizerPath).toBe(path.join(parentDir(), 'tokenizer.json'));
  const [m] = fineTuned.models;
  expect(m.model).toBe('m1');
  expect(Number.isFinite(m.validationBefore) && Number.isFinite(m.validationLoss)).toBe(true);
  console.log(`GSM8K validation loss: parent ${m.validationBefore.toFixed(4)}, after 12 fine-tuning steps ${m.validationLoss.toFixed(4)}`);
  expect(m.validationLoss).toBeLessThan(m.validationBefore);

  const out = path.join(dataDir(), 'cognate', id, 'm1');
  const stats = JSON.parse(fs.readFileSync(path.join(out, 'training_stats.json'), 'utf8'));
  const parentWeights = sha256File(path.join(parentDir(), 'model.safetensors'));
  expect(stats.parent).toMatchObject({ sessionId: parentSession, model: 'm1', weightsSha256: parentWeights });
  expect(stats.validationBefore.loss).toBeCloseTo(m.validationBefore, 6);
  expect(stats.validationAfter.loss).toBeCloseTo(m.validationLoss, 6);
  expect(stats.datasets.sources).toEqual(['GSM8K']);
  expect(JSON.parse(fs.readFileSync(path.join(out, 'config.json'), 'utf8')).init_from).toEqual({
    session_id: parentSession,
    model: 'm1',
    weights_sha256: parentWeights,
  });
  // Same tokenizer as the parent: the token ids mean the same strings.
  expect(sha256File(path.join(out, 'tokenizer.json'))).toBe(sha256File(path.join(parentDir(), 'tokenizer.json')));

  const listed = (await forge('list', 'cognate')).stdout.split('\n').find((l) => l.includes(`cognate-${id}`));
  expect(listed).toContain(`<- ${parentSession}/m1`);
});

test('a resumed fine-tuning run continues from its own checkpoint, never the parent (which may be gone)', async () => {
  expect(fineTuned).toBeDefined();
  const config: CognateConfig = { ...fineTuned.config, maxSteps: 4, saveSteps: 2, evalSteps: 4 };
  const job: TrainJob = {
    config,
    seed: fineTuned.models[0].seed,
    datasetDir: fineTuned.dataset.datasetDir,
    checkpointDir: path.join(dataDir(), 'checkpoints', 'cognate', sessionId('cft-resume'), 'm1'),
    modelName: 'm1',
    initFrom: fineTuned.initFrom,
  };
  let saved = false;
  const first = await train(job, { emit: (e: TrainEvent) => void (e.kind === 'checkpoint' && (saved = true)), stopRequested: () => saved });
  expect(first.stopped).toBe(true);
  expect(first.finalStep).toBe(2);
  const before = first.initFrom!.validationBefore.loss;

  const aside = `${parentDir()}.aside`;
  fs.renameSync(parentDir(), aside);
  try {
    await expect(
      train(
        { ...job, checkpointDir: path.join(dataDir(), 'checkpoints', 'cognate', sessionId('cft-gone'), 'm1') },
        { emit: () => undefined, stopRequested: () => false },
      ),
    ).rejects.toThrow(/parent .* is gone/);
    const events: TrainEvent[] = [];
    const resumed = await train(job, { emit: (e) => void events.push(e), stopRequested: () => false });
    expect(events.find((e) => e.kind === 'resumed')).toMatchObject({ fromStep: 2 });
    expect(resumed.finalStep).toBe(4);
    expect(resumed.initFrom?.validationBefore.loss).toBe(before);
  } finally {
    fs.renameSync(aside, parentDir());
  }
});

test('a parent trained without ACT is fine-tuned with ACT on through the workflow: the parent recorded, the export adds its halting units', async () => {
  const plainParent = sessionId('cft-noact');
  const parentRun = await startRun(client, 'cognate', {
    sessionId: plainParent,
    config: { ...TINY_COGNATE, maxSteps: 6, evalSteps: 6, actEnabled: false },
    models: [{ name: 'm1' }],
  });
  await parentRun.handle.result();
  const plainDir = path.join(dataDir(), 'cognate', plainParent, 'm1');
  const tensorNames = (file: string) => readSafetensors(file).tensors.map((t) => t.name);
  expect(tensorNames(path.join(plainDir, 'model.safetensors')).some((n) => n.includes('halting'))).toBe(false);

  const id = sessionId('cft-addact');
  const child = await startRun(client, 'cognate', {
    sessionId: id,
    config: { ...TRAINING_FIELDS, maxSteps: 4, evalSteps: 4, actEnabled: true, actHaltingInit: 0.01 },
    models: [{ name: 'm1' }],
    initFrom: { sessionId: plainParent, model: 'm1' },
  });
  const result = (await child.handle.result()) as typeof fineTuned;
  expect(result.config.actEnabled).toBe(true);
  expect(result.initFrom.inherited).not.toContain('actEnabled'); // set by this run, not taken from the parent
  const out = path.join(dataDir(), 'cognate', id, 'm1');
  expect(JSON.parse(fs.readFileSync(path.join(out, 'config.json'), 'utf8'))).toMatchObject({
    act_enabled: true,
    init_from: { session_id: plainParent, model: 'm1', weights_sha256: sha256File(path.join(plainDir, 'model.safetensors')) },
  });
  const names = tensorNames(path.join(out, 'model.safetensors'));
  expect(names.filter((n) => n.includes('halting.')).sort()).toEqual(['model.layers.0.halting.bias', 'model.layers.0.halting.weight']);
  expect(Number.isFinite(result.models[0].validationBefore)).toBe(true);
});
