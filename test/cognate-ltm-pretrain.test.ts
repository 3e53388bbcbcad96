// Memory in pretraining (issue 10): a long document is read by one batch row segment by segment, in order,
// and that row's LTM stream carries the document's earlier segments and is cleared when the row starts the
// next example. The trainer check compares the bank in a real checkpoint with what the data order says it
// must hold: a bank reset every batch holds at most one segment, a bank never reset holds earlier examples too.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { testBackendChoice, useTestBackend } from './helpers/backend';
import { writeTinyDataset } from './helpers/tiny-dataset';
import { findDocuments, openDataset, TrainSampler, type LongDocumentOptions } from '../activities/cognate/engine/data';
import { dataSeedOf, train, type CheckpointState, type TrainJob } from '../activities/cognate/engine/trainer';
import { listCheckpoints, readCheckpoint } from '../common/checkpoint';
import { CognateConfigSchema } from '../activities/cognate/config';

const tmpRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'cognate-ltm-pretrain-'));
afterAll(() => fs.rmSync(tmpRoot, { recursive: true, force: true }));

const SEQ_LEN = 8;
const BATCH = 3;
// writeTinyDataset: EOS is 0, PAD 1, documents of 6..25 tokens with their EOS: those above SEQ_LEN + 1 are long.
const segments: LongDocumentOptions = { mode: 'segments', eosId: 0, padId: 1 };
let dataDir: string;

beforeAll(async () => {
  await useTestBackend();
  dataDir = path.join(tmpRoot, 'data');
  writeTinyDataset(dataDir, { vocabSize: 40, trainDocs: 60, valDocs: 10, seed: 5 });
});

/** Per row, the tokens read since its last reset (the real positions), replaying `batches` batches of a sampler. */
function replay(sampler: TrainSampler, batches: number): { sinceReset: number[][]; resets: number[][]; readSinceStart: number[] } {
  const sinceReset: number[][] = Array.from({ length: BATCH }, () => []);
  const resets: number[][] = [];
  const readSinceStart = new Array<number>(BATCH).fill(0);
  for (let i = 0; i < batches; i++) {
    const b = sampler.nextBatch();
    resets.push(b.resetRows ?? []);
    for (let row = 0; row < BATCH; row++) {
      if (b.resetRows?.includes(row)) sinceReset[row] = [];
      for (let t = 0; t < SEQ_LEN; t++) {
        const at = row * SEQ_LEN + t;
        if (!b.mask || b.mask[at] > 0) {
          sinceReset[row].push(b.inputs[at]);
          readSinceStart[row]++;
        }
      }
    }
  }
  return { sinceReset, resets, readSinceStart };
}

describe('segments mode sampler', () => {
  test('a long document goes to one row in order, segment after segment, and the row is reset only when it starts an example', () => {
    const ds = openDataset(dataDir, 64);
    const docs = findDocuments(ds.train, 0);
    const long = docs.filter((d) => d.end - d.start > SEQ_LEN + 1);
    expect(long.length).toBeGreaterThan(5);
    const sampler = new TrainSampler(ds.train, SEQ_LEN, BATCH, 7, segments);
    const rowsRead: number[][][] = Array.from({ length: BATCH }, () => []); // per row, its examples' real input tokens
    for (let i = 0; i < 60; i++) {
      const b = sampler.nextBatch();
      if (i === 0) expect(b.resetRows).toEqual([0, 1, 2]);
      for (let row = 0; row < BATCH; row++) {
        if (b.resetRows?.includes(row)) rowsRead[row].push([]);
        const example = rowsRead[row].at(-1)!;
        for (let t = 0; t < SEQ_LEN; t++) if (b.mask![row * SEQ_LEN + t] > 0) example.push(b.inputs[row * SEQ_LEN + t]);
      }
    }
    const asKey = (tokens: ArrayLike<number>) => Array.from(tokens).join(',');
    // A finished long example read exactly one document: every token but its closing EOS (the last target), in order.
    const longInputs = new Set(long.map((d) => asKey(ds.train.tokens.subarray(d.start, d.end - 1))));
    const finished = rowsRead.flatMap((examples) => examples.slice(0, -1));
    const longRead = finished.filter((e) => e.length > SEQ_LEN);
    expect(longRead.length).toBeGreaterThan(3);
    for (const e of longRead) expect(longInputs.has(asKey(e))).toBe(true);
    // Short examples are one full window each.
    for (const e of finished.filter((x) => x.length <= SEQ_LEN)) expect(e).toHaveLength(SEQ_LEN);
  });

  test('state and load continue mid-document exactly', () => {
    const ds = openDataset(dataDir, 64);
    const a = new TrainSampler(ds.train, SEQ_LEN, BATCH, 3, segments);
    for (let i = 0; i < 5; i++) a.nextBatch();
    const saved = JSON.parse(JSON.stringify(a.state())) as ReturnType<TrainSampler['state']>;
    expect(saved.rows?.some((r) => r?.kind === 'long' && r.nextSegment > 0)).toBe(true);
    const b = new TrainSampler(ds.train, SEQ_LEN, BATCH, 3, segments);
    b.load(saved);
    for (let i = 0; i < 8; i++) expect(b.nextBatch()).toEqual(a.nextBatch());
  });
});

describe('the trainer carries the bank across a document and resets it between documents', () => {
  const config = CognateConfigSchema.parse({
    dModel: 16,
    nLayers: 2,
    nHeads: 2,
    vocabSize: 64,
    maxSeqLen: SEQ_LEN,
    dFF: 32,
    memCapacity: 64, // above the longest document: nothing is evicted, so a stream's fill is what it was given
    memTopK: 2,
    seqLen: SEQ_LEN,
    batchSize: BATCH,
    gradientAccumulationSteps: 2,
    maxSteps: 7,
    saveSteps: 1, // a checkpoint after every step: the bank is checked at each
    keepCheckpoints: 100,
    evalSteps: 100,
    evalBatches: 2,
    warmupSteps: 1,
    learningRate: 3e-3,
    actEnabled: false,
  });

  test('after every step each stream holds exactly the real positions its row read since it started its current example', async () => {
    expect(config.longDocuments).toBe('segments'); // the documented default
    const checkpointDir = path.join(tmpRoot, 'ckpt');
    const job: TrainJob = { config, seed: 11, datasetDir: dataDir, checkpointDir, modelName: 'tiny', backend: testBackendChoice() };
    const summary = await train(job, { emit: () => undefined, stopRequested: () => false });
    expect(summary.finalStep).toBe(config.maxSteps);
    const saved = listCheckpoints(checkpointDir).map((c) => readCheckpoint<CheckpointState>(c.path).state);
    expect(saved.map((s) => s.step).sort((a, b) => a - b)).toEqual(Array.from({ length: config.maxSteps }, (_, i) => i + 1));

    const ds = openDataset(dataDir, 64);
    let deepInDocument = false;
    let resetSinceStart = false;
    for (const state of saved) {
      const batches = state.sampler.windowsDrawn / BATCH;
      expect(batches).toBe(state.step * 2);
      const expected = replay(new TrainSampler(ds.train, SEQ_LEN, BATCH, dataSeedOf(11), segments), batches);
      const fills = state.memory!.streams.map((s) => s.fill);
      expect(fills).toEqual(expected.sinceReset.map((tokens) => tokens.length));
      deepInDocument ||= fills.some((f) => f > SEQ_LEN);
      resetSinceStart ||= expected.readSinceStart.some((n, row) => n > fills[row]);
    }
    // The check can fail both ways: some row was deep in a document (more than one segment in its bank: a
    // per-batch reset would hold at most SEQ_LEN), and some row had been reset after its first example (a
    // bank never reset would also hold its earlier examples).
    expect(deepInDocument).toBe(true);
    expect(resetSinceStart).toBe(true);
    // The bank was read (rows past their document's first segment) and written (real positions only).
    const total = replay(new TrainSampler(ds.train, SEQ_LEN, BATCH, dataSeedOf(11), segments), config.maxSteps * 2).readSinceStart;
    expect(summary.ltm!.reads).toBeGreaterThan(0);
    expect(summary.ltm!.writes).toBe(total.reduce((a, b) => a + b, 0));
  });
});
