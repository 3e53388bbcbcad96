// Cognate dataset preparation on real rows: the bundled fixtures (first rows of GSM8K, SVAMP, HotpotQA, in
// the original file formats and layout), also served as hub parquet by a loopback server, and — where a
// developer's or CI's checkout has it — the full original files in ../shared/datasets.
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CognateConfigSchema, type CognateConfig } from '../activities/cognate/config';
import { openDataset } from '../activities/cognate/engine/data';
import { prepareDatasets, type PrepareEvent, type PrepareJob } from '../activities/cognate/data/prepare';
import { hubCachePath, hubFileUrl, resolveHubEndpoint } from '../activities/cognate/data/hub';
import { FIXTURES_DIR, HUB_DATASETS } from '../activities/cognate/data/sources';
import { formatGsm8k, formatHotpotQa, formatSvamp } from '../activities/cognate/data/records';
import { loadTokenizer, saveTokenizer, trainByteLevelBpe } from '../activities/cognate/data/tokenizer';
import { childModulePath, runInChild } from '../common/child';
import type { PrepareResult } from '../activities/cognate/data/prepare';
import { startHubServer, type HubServer } from './helpers/hub-server';

// The full datasets sit beside the project's root (../shared/datasets) on developers' and CI machines only;
// a user's clone has none, so the test of the full files skips there (the fixtures cover the same code).
const SHARED = path.resolve(__dirname, '..', '..', 'shared', 'datasets');
const HAS_SHARED = fs.existsSync(path.join(SHARED, 'gsm8k', 'train.jsonl'));
if (!HAS_SHARED) console.warn(`skipping the full-dataset test: ${SHARED} is absent (only developer and CI machines have it)`);
const FAST_RETRY = { attempts: 3, baseDelayMs: 5 };

function config(overrides: Partial<CognateConfig> = {}): CognateConfig {
  return CognateConfigSchema.parse({ maxTrainSamples: 60, maxEvalSamples: 20, vocabSize: 400, ...overrides });
}

function tempDir(label: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `forge-cognate-${label}-`));
}

function recorder() {
  const events: PrepareEvent[] = [];
  return { events, ctx: { emit: (e: PrepareEvent) => events.push(e), stopRequested: () => false } };
}

async function prepare(job: PrepareJob) {
  return prepareDatasets(job, recorder().ctx);
}

/** Resolves with the rejection so a test can look at message and flags. */
async function failure(p: Promise<unknown>): Promise<Error & { nonRetryable?: boolean }> {
  try {
    await p;
  } catch (err) {
    return err as Error & { nonRetryable?: boolean };
  }
  throw new Error('expected a failure, but the call succeeded');
}

const readTokens = (dir: string, file: string, dtype: string) => {
  const buf = fs.readFileSync(path.join(dir, file));
  return Array.from(
    dtype === 'uint16'
      ? new Uint16Array(buf.buffer, buf.byteOffset, buf.length / 2)
      : new Uint32Array(buf.buffer, buf.byteOffset, buf.length / 4),
  );
};

describe('hub layout', () => {
  const saved = process.env.HF_ENDPOINT;
  afterEach(() => {
    if (saved === undefined) delete process.env.HF_ENDPOINT;
    else process.env.HF_ENDPOINT = saved;
  });

  test('resolve URLs as huggingface_hub builds them; job endpoint beats HF_ENDPOINT beats huggingface.co', () => {
    delete process.env.HF_ENDPOINT;
    expect(resolveHubEndpoint()).toBe('https://huggingface.co');
    process.env.HF_ENDPOINT = 'https://mirror.example/';
    expect(resolveHubEndpoint()).toBe('https://mirror.example');
    expect(resolveHubEndpoint('http://127.0.0.1:9')).toBe('http://127.0.0.1:9');
    const gsm = HUB_DATASETS.GSM8K;
    expect(hubFileUrl('https://huggingface.co', gsm.repo, gsm.revision, gsm.files.train[0])).toBe(
      'https://huggingface.co/datasets/openai/gsm8k/resolve/740312add88f781978c0658806c59bc2815b9866/main/train-00000-of-00001.parquet',
    );
    const svamp = HUB_DATASETS.SVAMP;
    expect(hubFileUrl('https://huggingface.co', svamp.repo, svamp.revision, svamp.files.validation[0])).toBe(
      'https://huggingface.co/datasets/ChilleD/SVAMP/resolve/refs%2Fconvert%2Fparquet/default/test/0000.parquet',
    );
  });
});

describe('download mode (loopback hub)', () => {
  let hub: HubServer | undefined;
  afterEach(async () => {
    await hub?.close();
    hub = undefined;
  });

  test('downloads parquet, verifies checksums, caches; the second run makes no file requests and reuses the dataset', async () => {
    hub = await startHubServer();
    const dataDir = tempDir('download');
    const { events, ctx } = recorder();
    const first = await prepareDatasets({ config: config(), dataDir, hubEndpoint: hub.url, retry: FAST_RETRY }, ctx);
    expect(first.reused).toBe(false);
    expect(first.stats.sourceFiles.every((f) => f.origin === 'hub')).toBe(true);
    // HotpotQA's first train shard (5 rows) is short of maxTrainSamples, so the second is fetched too
    expect(first.stats.sourceFiles.map((f) => f.name)).toContain(
      'hotpotqa/hotpot_qa@1908d6afbbead072334abe2965f91bd2709910ab/distractor/train-00001-of-00002.parquet',
    );
    const expected = Object.values(HUB_DATASETS).flatMap((spec) =>
      [...spec.files.train, ...spec.files.validation].map((file) => ({
        name: `${spec.repo}@${spec.revision}/${file}`,
        sha256: hub?.files.get(`${spec.repo}/${file}`)?.sha256,
      })),
    );
    expect(first.stats.sourceFiles.map((f) => ({ name: f.name, sha256: f.sha256 }))).toEqual(expected);
    const gsm = HUB_DATASETS.GSM8K;
    const cached = hubCachePath(path.join(dataDir, 'datasets'), gsm.repo, gsm.revision, gsm.files.train[0]);
    expect(fs.existsSync(cached)).toBe(true);
    expect(JSON.parse(fs.readFileSync(`${cached}.meta.json`, 'utf8')).sha256).toBe(
      hub.files.get(`openai/gsm8k/${gsm.files.train[0]}`)?.sha256,
    );
    // hub split sizes: GSM8K 40/10, SVAMP 30/10, HotpotQA 9/3 -> all short validation rows are hub test rows
    expect(first.stats.validation.sources).toEqual({ GSM8K: 7, SVAMP: 7, HotpotQA: 3 });
    expect(events.some((e) => e.stage === 'tokenizer')).toBe(true);
    expect(events.map((e) => e.fraction)).toEqual([...events.map((e) => e.fraction)].sort((a, b) => a - b));

    const before = hub.requests.length;
    const second = await prepare({ config: config(), dataDir, hubEndpoint: hub.url, retry: FAST_RETRY });
    expect(hub.requests.length).toBe(before);
    expect(second).toMatchObject({ reused: true, datasetDir: first.datasetDir });
  });

  test('a 500 and a cut-off body are retried; HF_ENDPOINT is used when the job names no endpoint', async () => {
    hub = await startHubServer({
      failures: [
        { file: 'main/train-00000-of-00001.parquet', kind: 'status', status: 500, times: 1 },
        { file: 'default/train/0000.parquet', kind: 'truncate', times: 1 },
      ],
    });
    const saved = process.env.HF_ENDPOINT;
    process.env.HF_ENDPOINT = hub.url;
    try {
      const result = await prepare({
        config: config({ datasetSources: ['GSM8K', 'SVAMP'] }),
        dataDir: tempDir('retry'),
        retry: FAST_RETRY,
      });
      expect(result.stats.train.documents).toBeGreaterThan(0);
    } finally {
      if (saved === undefined) delete process.env.HF_ENDPOINT;
      else process.env.HF_ENDPOINT = saved;
    }
    const gsmResolves = hub.requests.filter((r) => r.path.endsWith('main/train-00000-of-00001.parquet'));
    expect(gsmResolves.map((r) => r.status)).toEqual([500, 302]);
    const svampResolves = hub.requests.filter((r) => r.path.endsWith('default/train/0000.parquet'));
    expect(svampResolves).toHaveLength(2); // the first body was cut short, so the file was fetched again
  });

  test('a 404 is a non-retryable error naming the URL; persistent 5xx gives up with a retryable one', async () => {
    hub = await startHubServer({
      failures: [
        { file: 'main/test-00000-of-00001.parquet', kind: 'status', status: 404 },
        { file: 'default/test/0000.parquet', kind: 'status', status: 503 },
      ],
    });
    const notFound = await failure(
      prepare({ config: config({ datasetSources: ['GSM8K'] }), dataDir: tempDir('404'), hubEndpoint: hub.url, retry: FAST_RETRY }),
    );
    expect(notFound.message).toContain(
      `${hub.url}/datasets/openai/gsm8k/resolve/740312add88f781978c0658806c59bc2815b9866/main/test-00000-of-00001.parquet: 404 not found`,
    );
    expect(notFound.nonRetryable).toBe(true);

    const unavailable = await failure(
      prepare({ config: config({ datasetSources: ['SVAMP'] }), dataDir: tempDir('503'), hubEndpoint: hub.url, retry: FAST_RETRY }),
    );
    expect(unavailable.message).toMatch(/default\/test\/0000\.parquet failed after 3 attempts: .*HTTP 503/);
    expect(unavailable.nonRetryable).toBeUndefined();
  });

  test('a truncated parquet file on the hub is a non-retryable error naming the file', async () => {
    hub = await startHubServer({ failures: [{ file: 'distractor/validation-00000-of-00001.parquet', kind: 'corrupt' }] });
    const err = await failure(
      prepare({ config: config({ datasetSources: ['HotpotQA'] }), dataDir: tempDir('corrupt'), hubEndpoint: hub.url, retry: FAST_RETRY }),
    );
    expect(err.message).toContain('distractor/validation-00000-of-00001.parquet');
    expect(err.message).toContain('not a readable parquet file');
    expect(err.nonRetryable).toBe(true);
  });

  test('offline mode reads the hub cache without any network', async () => {
    hub = await startHubServer();
    const dataDir = tempDir('offline-cache');
    await prepare({ config: config({ datasetSources: ['GSM8K'] }), dataDir, hubEndpoint: hub.url });
    await hub.close();
    hub = undefined;
    const offline = await prepare({
      config: config({ datasetSources: ['GSM8K'], datasetMode: 'offline' }),
      dataDir,
      hubEndpoint: 'http://127.0.0.1:9',
    });
    expect(offline.reused).toBe(true);
    expect(offline.stats.sourceFiles.every((f) => f.origin === 'hub')).toBe(true);
  });
});

describe('loopback hub files', () => {
  const hasPyarrow = spawnSync('python3', ['-c', 'import pyarrow'], { stdio: 'ignore' }).status === 0;
  (hasPyarrow ? test : test.skip)('pyarrow reads them with the hub schemas (skipped without pyarrow)', async () => {
    const hub = await startHubServer();
    const dir = tempDir('pyarrow');
    try {
      for (const [name, source] of [
        ['gsm8k', 'GSM8K'],
        ['svamp', 'SVAMP'],
        ['hotpot', 'HotpotQA'],
      ] as const) {
        const spec = HUB_DATASETS[source];
        const res = await fetch(hubFileUrl(hub.url, spec.repo, spec.revision, spec.files.validation[0]));
        fs.writeFileSync(path.join(dir, `${name}.parquet`), Buffer.from(await res.arrayBuffer()));
      }
    } finally {
      await hub.close();
    }
    const script = [
      'import json, sys, pyarrow.parquet as pq',
      'out = {}',
      'for n in ["gsm8k", "svamp", "hotpot"]:',
      '    t = pq.read_table(f"{sys.argv[1]}/{n}.parquet")',
      '    out[n] = {"schema": {f.name: str(f.type) for f in t.schema}, "rows": t.num_rows, "first": t.slice(0, 1).to_pylist()[0]}',
      'print(json.dumps(out))',
    ].join('\n');
    const out = JSON.parse(execFileSync('python3', ['-c', script, dir], { encoding: 'utf8' }));
    expect(out.gsm8k.schema).toEqual({ question: 'string', answer: 'string' });
    expect(out.gsm8k.rows).toBe(10);
    expect(out.svamp.schema).toEqual({
      ID: 'string',
      Body: 'string',
      Question: 'string',
      Equation: 'string',
      Answer: 'double',
      Type: 'string',
      question_concat: 'string',
    });
    expect(out.hotpot.schema).toMatchObject({
      id: 'string',
      supporting_facts: 'struct<title: list<element: string>, sent_id: list<element: int32>>',
      context: 'struct<title: list<element: string>, sentences: list<element: list<element: string>>>',
    });
    const original = JSON.parse(fs.readFileSync(path.join(FIXTURES_DIR, 'hotpotqa/dev_distractor_sample.json'), 'utf8'))[9];
    expect(out.hotpot.first.id).toBe(original._id);
    expect(out.hotpot.first.context.sentences[0]).toEqual(original.context[0][1]);
  });
});

describe('offline mode with original files', () => {
  test('reads original-format GSM8K jsonl, SVAMP json and HotpotQA json from a local folder (the committed fixtures)', async () => {
    const dataDir = tempDir('offline-fixtures');
    const result = await prepare({
      config: config({ datasetMode: 'offline', localDatasetDir: FIXTURES_DIR, maxTrainSamples: 40, maxEvalSamples: 10 }),
      dataDir,
      hubEndpoint: 'http://127.0.0.1:9',
    });
    const { stats } = result;
    expect(stats.sourceFiles.map((f) => [f.name, f.sha256])).toEqual([
      ['gsm8k/train.jsonl', '36031994776bdec88b524a9cb53d166d4da21a651cfa4e0c5aac5f80e2ea21aa'],
      ['gsm8k/test.jsonl', 'c73251ecc8da95f6a1ffb21b5904b246680dd7e2211cabb683199827c9dd62bf'],
      ['svamp/SVAMP.json', 'c6c92e49ec66c4fca80c317ed5e9ac545172e40d5aff5f1a10b8a76c8a846f9a'],
      ['hotpotqa/dev_distractor_sample.json', 'ec6f08ae7eaf6e7ac0d3205ebb08e0fd0bfbe06fe96a1f08fe1110bca21f60f7'],
    ]);
    expect(Object.keys(stats.train.sources).sort()).toEqual(['GSM8K', 'HotpotQA', 'SVAMP']);
    expect(stats.train.longDocuments).toBe(stats.train.sources.HotpotQA);
    expect(fs.existsSync(path.join(dataDir, 'datasets', 'hub'))).toBe(false);
  });

  (HAS_SHARED ? test : test.skip)(
    'reads the full original GSM8K jsonl, SVAMP json and HotpotQA json (../shared/datasets, developer and CI machines only)',
    async () => {
      const dataDir = tempDir('offline');
      const result = await prepare({
        config: config({ datasetMode: 'offline', localDatasetDir: SHARED, maxTrainSamples: 100, maxEvalSamples: 30 }),
        dataDir,
        hubEndpoint: 'http://127.0.0.1:9',
      });
      const { stats } = result;
      expect(stats.sourceFiles.map((f) => [f.name, f.sha256])).toEqual([
        ['gsm8k/train.jsonl', '17f347dc51477c50d4efb83959dbb7c56297aba886e5544ee2aaed3024813465'],
        ['gsm8k/test.jsonl', '3730d312f6e3440559ace48831e51066acaca737f6eabec99bccb9e4b3c39d14'],
        ['svamp/SVAMP.json', '5be77703a6d891ae476d7c082787ad361392aa02453b132516cdd5f4e7934e3e'],
        ['hotpotqa/dev_distractor_sample.json', 'df25c74b745e9155ed7c5a68ac432bc8b07c172d1a677dc064e736229c05e96c'],
      ]);
      // shortFraction 0.7 of 100: 70 short split equally over GSM8K and SVAMP, 30 long
      expect(stats.train.sources).toEqual({ GSM8K: 35, SVAMP: 35, HotpotQA: 30 });
      expect(stats.train.longDocuments).toBe(30);
      expect(stats.validation.sources).toEqual({ GSM8K: 10, SVAMP: 11, HotpotQA: 9 });
      expect(fs.existsSync(path.join(dataDir, 'datasets', 'hub'))).toBe(false);
    },
  );

  test('without cache or local files: a clear error naming what is missing', async () => {
    const empty = tempDir('empty');
    const err = await failure(
      prepare({
        config: config({ datasetMode: 'offline', localDatasetDir: empty, datasetSources: ['SVAMP'] }),
        dataDir: tempDir('offline-missing'),
      }),
    );
    expect(err.message).toContain('offline mode: no data for SVAMP');
    expect(err.message).toContain('refs/convert/parquet');
    expect(err.message).toContain(path.join(empty, 'svamp/SVAMP.json'));
    expect(err.nonRetryable).toBe(true);
  });

  test('malformed original files: errors name the file, the row and the field', async () => {
    const dir = tempDir('malformed');
    fs.mkdirSync(path.join(dir, 'svamp'));
    const rows = JSON.parse(fs.readFileSync(path.join(FIXTURES_DIR, 'svamp/SVAMP.json'), 'utf8')) as Record<string, unknown>[];
    delete rows[2].Equation;
    fs.writeFileSync(path.join(dir, 'svamp/SVAMP.json'), JSON.stringify(rows));
    const missing = await failure(
      prepare({ config: config({ datasetMode: 'offline', localDatasetDir: dir, datasetSources: ['SVAMP'] }), dataDir: tempDir('m1') }),
    );
    expect(missing.message).toBe(`${path.join(dir, 'svamp/SVAMP.json')} row 3: missing field "Equation"`);
    expect(missing.nonRetryable).toBe(true);

    rows[2].Equation = '( 1.0 + 2.0 )';
    rows[5].Answer = 'many';
    fs.writeFileSync(path.join(dir, 'svamp/SVAMP.json'), JSON.stringify(rows));
    const wrongType = await failure(
      prepare({ config: config({ datasetMode: 'offline', localDatasetDir: dir, datasetSources: ['SVAMP'] }), dataDir: tempDir('m2') }),
    );
    expect(wrongType.message).toBe(`${path.join(dir, 'svamp/SVAMP.json')} row 6: field "Answer" must be a number (found string "many")`);

    fs.mkdirSync(path.join(dir, 'gsm8k'));
    fs.writeFileSync(path.join(dir, 'gsm8k/train.jsonl'), '{"question": "q", "answer": "a"}\n{"question": "q2", "answer": 7}\n');
    fs.writeFileSync(path.join(dir, 'gsm8k/test.jsonl'), '{"question": "q", "answer": "a"}\n{"question": "trunc');
    const badLine = await failure(
      prepare({ config: config({ datasetMode: 'offline', localDatasetDir: dir, datasetSources: ['GSM8K'] }), dataDir: tempDir('m3') }),
    );
    expect(badLine.message).toBe(`${path.join(dir, 'gsm8k/train.jsonl')} line 2: field "answer" must be a string (found number 7)`);
  });
});

describe('fixtures mode end to end', () => {
  test('shards + manifest + tokenizer.json that the trainer opens; documents decode to the formatted rows', async () => {
    const dataDir = tempDir('fixtures');
    const result = await prepare({ config: config({ datasetMode: 'fixtures', maxTrainSamples: 5000, maxEvalSamples: 500 }), dataDir });
    const manifest = JSON.parse(fs.readFileSync(result.manifestPath, 'utf8'));
    expect(manifest).toMatchObject({ format: 'forge-token-shards/v1', tokenizer: 'tokenizer.json', eosId: 0, padId: 1, dtype: 'uint16' });
    // GSM8K: own test split (10); SVAMP 40 and HotpotQA 12 hold out validationFraction 0.1 -> 4 and 1
    expect(manifest.splits.train.sources).toEqual({ GSM8K: 40, SVAMP: 36, HotpotQA: 11 });
    expect(manifest.splits.validation.sources).toEqual({ GSM8K: 10, SVAMP: 4, HotpotQA: 1 });
    expect(manifest.splits.train.longDocuments).toBe(11);
    expect(manifest.vocabSize).toBeLessThanOrEqual(400);

    // The trainer's reader checks sizes, checksums and ids against the vocabulary.
    const opened = openDataset(result.datasetDir, 400);
    expect(opened.train.tokens.length).toBe(manifest.splits.train.shards[0].tokens);

    const tokenizer = loadTokenizer(path.join(result.datasetDir, 'tokenizer.json'));
    const ids = readTokens(result.datasetDir, manifest.splits.train.shards[0].file, manifest.dtype);
    const docs: number[][] = [[]];
    for (const id of ids) {
      if (id === manifest.eosId) docs.push([]);
      else docs[docs.length - 1].push(id);
    }
    docs.pop();
    expect(docs).toHaveLength(manifest.splits.train.documents);
    const texts = new Set(docs.map((d) => tokenizer.decode(d)));
    const gsmFirst = JSON.parse(fs.readFileSync(path.join(FIXTURES_DIR, 'gsm8k/train.jsonl'), 'utf8').split('\n')[0]);
    expect(texts.has(formatGsm8k(gsmFirst, 'gsm8k').text)).toBe(true);
    const svampRows = JSON.parse(fs.readFileSync(path.join(FIXTURES_DIR, 'svamp/SVAMP.json'), 'utf8'));
    const svampTexts = svampRows.map((r: unknown) => formatSvamp(r, 'svamp').text);
    expect(svampTexts.filter((t: string) => texts.has(t))).toHaveLength(36);
    expect(svampTexts[0]).toBe(
      'Problem: Each pack of dvds costs 76 dollars. If there is a discount of 25 dollars on each pack How much do you have to pay to buy each pack?\nSolution: ( 76.0 - 25.0 ) = 51',
    );
    const hotpot = JSON.parse(fs.readFileSync(path.join(FIXTURES_DIR, 'hotpotqa/dev_distractor_sample.json'), 'utf8'));
    const hotpotText = formatHotpotQa(hotpot[0], 'hotpot').text;
    expect(hotpotText.startsWith('Context:\nEd Wood (film): Ed Wood is a 1994 American biographical period comedy-drama film')).toBe(true);
    expect(hotpotText.endsWith('Question: Were Scott Derrickson and Ed Wood of the same nationality?\nAnswer: yes')).toBe(true);
  });

  test('idempotent: the same inputs reuse the prepared data, another seed prepares a new one', async () => {
    const dataDir = tempDir('idem');
    const job = { config: config({ datasetMode: 'fixtures' }), dataDir };
    const first = await prepare(job);
    const mtime = fs.statSync(first.manifestPath).mtimeMs;
    const second = await prepare(job);
    expect(second).toEqual({ ...first, reused: true });
    expect(fs.statSync(second.manifestPath).mtimeMs).toBe(mtime);
    const other = await prepare({ ...job, config: config({ datasetMode: 'fixtures', seed: 7 }) });
    expect(other.reused).toBe(false);
    expect(other.datasetDir).not.toBe(first.datasetDir);
    // a damaged shard is not reused: the dataset is rebuilt in place
    const shard = path.join(first.datasetDir, 'train-00000.bin');
    fs.writeFileSync(shard, Buffer.alloc(10));
    const rebuilt = await prepare(job);
    expect(rebuilt).toMatchObject({ reused: false, datasetDir: first.datasetDir });
    expect(fs.readdirSync(path.dirname(first.datasetDir)).filter((n) => n.startsWith('.'))).toEqual([]);
  });
});

describe('process and stop handling', () => {
  test('runs in a child process through common/child', async () => {
    const events: string[] = [];
    const handle = runInChild<PrepareJob, { stage: string }, PrepareResult>(
      childModulePath(path.join(__dirname, '../activities/cognate/data'), 'prepare'),
      { config: config({ datasetMode: 'fixtures' }), dataDir: tempDir('child') },
      (e) => events.push(e.stage),
    );
    const result = await handle.result;
    expect(result.reused).toBe(false);
    expect(fs.existsSync(result.manifestPath)).toBe(true);
    expect(events).toContain('tokenizer');
  });

  test('a stop request before publishing leaves nothing behind', async () => {
    const dataDir = tempDir('stop');
    let calls = 0;
    const err = await failure(
      prepareDatasets(
        { config: config({ datasetMode: 'fixtures' }), dataDir },
        { emit: () => undefined, stopRequested: () => ++calls > 3 },
      ),
    );
    expect(err.message).toMatch(/stopped on request/);
    const prepared = path.join(dataDir, 'datasets', 'prepared');
    expect(fs.existsSync(prepared) ? fs.readdirSync(prepared) : []).toEqual([]);
  });
});

describe('tokenizer', () => {
  const corpus = () =>
    fs
      .readFileSync(path.join(FIXTURES_DIR, 'gsm8k/train.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => formatGsm8k(JSON.parse(l), 'gsm8k').text);

  test('trained BPE round-trips text, compresses, and stays within vocabSize', () => {
    const tokenizer = trainByteLevelBpe(corpus(), { vocabSize: 500 });
    expect(tokenizer.vocabSize).toBeLessThanOrEqual(500);
    expect(tokenizer.vocabSize).toBeGreaterThan(258);
    for (const text of [...corpus().slice(0, 5), 'naïve café — 3½ × 2 = 7 🙂\t\n  trailing  ']) {
      const ids = tokenizer.encode(text);
      expect(tokenizer.decode(ids)).toBe(text);
    }
    const sample = corpus()[0];
    expect(tokenizer.encode(sample).length).toBeLessThan(Buffer.byteLength(sample) * 0.6);
    expect(tokenizer.encode('a<|endoftext|>b')).toEqual([...tokenizer.encode('a'), 0, ...tokenizer.encode('b')]);
    expect(tokenizer.decode(tokenizer.encode('a<|endoftext|>b'), { skipSpecialTokens: false })).toBe('a<|endoftext|>b');
  });

  test('stops early when no pair occurs twice', () => {
    const tokenizer = trainByteLevelBpe(['abcabc'], { vocabSize: 1000 });
    // pre-token "abcabc": ab (2x) -> abc (2x) -> abcabc (1x: not merged)
    expect(tokenizer.toJSON().model.merges).toEqual([
      ['a', 'b'],
      ['ab', 'c'],
    ]);
    expect(tokenizer.vocabSize).toBe(260);
  });

  test('a tokenizer larger than config.vocabSize is an error naming both numbers', async () => {
    const file = path.join(tempDir('tok'), 'tokenizer.json');
    saveTokenizer(trainByteLevelBpe(corpus(), { vocabSize: 600 }), file);
    const size = loadTokenizer(file).vocabSize;
    expect(size).toBe(600);
    const err = await failure(
      prepare({ config: config({ datasetMode: 'fixtures', tokenizerPath: file, vocabSize: 450 }), dataDir: tempDir('vocab') }),
    );
    expect(err.message).toContain(`has ${size} tokens but config.vocabSize is 450`);
    expect(err.nonRetryable).toBe(true);
    const tooSmall = await failure(prepare({ config: config({ datasetMode: 'fixtures', vocabSize: 100 }), dataDir: tempDir('vocab2') }));
    expect(tooSmall.message).toContain('vocabSize 100 is too small for a byte-level BPE: it needs at least 258');
  });

  const hasPythonTokenizers = spawnSync('python3', ['-c', 'import tokenizers'], { stdio: 'ignore' }).status === 0;
  (hasPythonTokenizers ? test : test.skip)(
    'Python `tokenizers` loads tokenizer.json and encodes identically (skipped when not installed)',
    () => {
      const dir = tempDir('py');
      const file = path.join(dir, 'tokenizer.json');
      const hotpot = JSON.parse(fs.readFileSync(path.join(FIXTURES_DIR, 'hotpotqa/dev_distractor_sample.json'), 'utf8'));
      // Runs of U+0085 / U+FEFF: JS's \s and Oniguruma's disagree on both. Repeated so that merges across
      // them are learned, a split that differs from the Rust one then changes the ids.
      const edgeCases = ['x\u0085\u0085y', 'z\ufeff\ufeffw', 'a\u00a0\u00a0 b'];
      const texts = [
        ...corpus(),
        ...hotpot.map((r: unknown) => formatHotpotQa(r, 'hotpot').text),
        ...Array.from({ length: 20 }, () => edgeCases).flat(),
      ];
      const tokenizer = trainByteLevelBpe(texts, { vocabSize: 1500 });
      saveTokenizer(tokenizer, file);
      const probes = [
        ...texts.slice(0, 20),
        ...texts.slice(40, 43),
        ...edgeCases,
        "It's 1,234.5 km\u00a0away;\u0085 we'll see\r\n\tÜber 東京 🙂  ",
        'x<|endoftext|>y<|pad|>',
      ];
      fs.writeFileSync(path.join(dir, 'probes.json'), JSON.stringify(probes));
      const script = [
        'import json, sys',
        'from tokenizers import Tokenizer',
        't = Tokenizer.from_file(sys.argv[1])',
        'probes = json.load(open(sys.argv[2]))',
        'print(json.dumps({"size": t.get_vocab_size(), "ids": [t.encode(p).ids for p in probes], "text": [t.decode(t.encode(p).ids) for p in probes]}))',
      ].join('\n');
      const out = JSON.parse(execFileSync('python3', ['-c', script, file, path.join(dir, 'probes.json')], { encoding: 'utf8' }));
      expect(out.size).toBe(tokenizer.vocabSize);
      expect(out.ids).toEqual(probes.map((p) => tokenizer.encode(p)));
      expect(out.text).toEqual(probes.map((p) => tokenizer.decode(tokenizer.encode(p))));
    },
  );
});
