// prepareDatasets: sources -> seeded short/long mixture -> tokenizer -> packed token shards + manifest
// ("forge-token-shards/v1", read by engine/data.ts). The result directory is named by a hash of every
// input that shapes it, built in a staging directory and renamed into place, so a re-run with the same
// inputs reuses it and a crash never leaves a half-written dataset that looks complete.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { ChildContext } from '../../../common/child';
import { NonRetryableError } from '../../../common/child';
import { publishDirectory, sha256File, stagingDirFor, writeJsonAtomic } from '../../../common/export/files';
import { datasetCacheDir } from '../../../common/paths';
import type { CognateConfig } from '../config';
import { DATASET_FORMAT } from '../engine/data';
import { Rng, hashString } from '../../../common/rng';
import { DEFAULT_RETRY, resolveHubEndpoint, type RetryPolicy } from './hub';
import { LONG_SOURCES, type Example, type SourceName } from './records';
import {
  FIXTURES_DIR,
  HUB_DATASETS,
  LOCAL_FILES,
  localFilesPresent,
  openHubSource,
  openLocalSource,
  type RowReader,
  type SourcePool,
  type SplitName,
} from './sources';
import { loadTokenizer, saveTokenizer, trainByteLevelBpe, type Tokenizer } from './tokenizer';

/** Bump when formatting, sampling or the shard layout changes: old prepared datasets stop matching. */
export const PREPARE_VERSION = 1;
const SHARD_TOKENS = 16 * 1024 * 1024;
const TOKENIZER_FILE = 'tokenizer.json';

export type PrepareConfig = Pick<
  CognateConfig,
  | 'datasetSources'
  | 'datasetMode'
  | 'localDatasetDir'
  | 'maxTrainSamples'
  | 'maxEvalSamples'
  | 'shortFraction'
  | 'validationFraction'
  | 'tokenizerPath'
  | 'vocabSize'
  | 'seed'
>;

export interface PrepareJob {
  config: PrepareConfig;
  dataDir: string;
  /** Overrides HF_ENDPOINT and the public hub. */
  hubEndpoint?: string;
  retry?: Partial<RetryPolicy>;
}

export type PrepareStage = 'sources' | 'sampling' | 'tokenizer' | 'encoding' | 'writing';

export interface PrepareEvent {
  kind: 'progress';
  stage: PrepareStage;
  message: string;
  /** Of the whole preparation, 0..1. */
  fraction: number;
}

export interface SplitStats {
  documents: number;
  tokens: number;
  sources: Record<string, number>;
  longDocuments: number;
}

export interface PrepareStats {
  train: SplitStats;
  validation: SplitStats;
  vocabSize: number;
  tokenizer: 'trained' | 'loaded';
  /** Share of short (GSM8K, SVAMP) documents actually reached in train; below target when a source runs out. */
  shortFraction: number;
  sourceFiles: { source: SourceName; origin: 'hub' | 'local'; name: string; sha256: string; bytes: number }[];
  seconds: number;
}

export interface PrepareResult {
  datasetDir: string;
  manifestPath: string;
  reused: boolean;
  stats: PrepareStats;
}

interface ShardEntry {
  file: string;
  tokens: number;
  sha256: string;
}

interface ManifestSplit {
  shards: ShardEntry[];
  documents: number;
  sources: Record<string, number>;
  longDocuments: number;
}

export interface PreparedManifest {
  format: typeof DATASET_FORMAT;
  tokenizer: string;
  tokenizerSha256: string;
  vocabSize: number;
  eosId: number;
  padId: number;
  dtype: 'uint16' | 'uint32';
  splits: Record<SplitName, ManifestSplit>;
  inputs: Record<string, unknown> & { key: string };
  stats: PrepareStats;
  createdAt: string;
}

type Ctx = Pick<ChildContext<PrepareEvent>, 'emit' | 'stopRequested'>;

function checkStop(ctx: Ctx, stage: string): void {
  if (ctx.stopRequested()) throw new Error(`dataset preparation stopped on request during ${stage}; nothing was published`);
}

/** Every (source, split, purpose) gets its own seeded stream. */
function rngFor(seed: number, label: string): Rng {
  return new Rng((seed ^ hashString(label)) >>> 0);
}

// ---- sources ----

async function openSources(job: PrepareJob, ctx: Ctx): Promise<SourcePool[]> {
  const { config } = job;
  const cacheDir = datasetCacheDir(job.dataDir);
  const retry = { ...DEFAULT_RETRY, ...job.retry };
  const endpoint = resolveHubEndpoint(job.hubEndpoint);
  const pools: SourcePool[] = [];
  for (const [i, source] of config.datasetSources.entries()) {
    checkStop(ctx, 'sources');
    const progress = (message: string) =>
      ctx.emit({ kind: 'progress', stage: 'sources', message, fraction: (0.3 * i) / config.datasetSources.length });
    const hubOpts = {
      endpoint,
      cacheDir,
      retry,
      rowsWanted: { train: config.maxTrainSamples, validation: config.maxEvalSamples },
      onFile: progress,
    };
    if (config.datasetMode === 'fixtures') {
      progress(`${source}: bundled fixtures from ${FIXTURES_DIR}`);
      pools.push(openLocalSource(source, FIXTURES_DIR));
    } else if (config.datasetMode === 'download') {
      progress(`${source}: ${HUB_DATASETS[source].repo} (${HUB_DATASETS[source].config}) from ${endpoint}`);
      pools.push((await openHubSource(source, { ...hubOpts, offline: false })) as SourcePool);
    } else {
      // offline: the hub cache first, then the original files; never the network
      const cached = await openHubSource(source, { ...hubOpts, offline: true });
      if (cached) pools.push(cached);
      else if (config.localDatasetDir && localFilesPresent(source, config.localDatasetDir).length === 0)
        pools.push(openLocalSource(source, config.localDatasetDir));
      else {
        const spec = HUB_DATASETS[source];
        const local = config.localDatasetDir
          ? localFilesPresent(source, config.localDatasetDir)
              .map((f) => path.join(config.localDatasetDir as string, f))
              .join(', ')
          : `config.localDatasetDir is not set (it should hold ${[LOCAL_FILES[source].train, LOCAL_FILES[source].validation].filter(Boolean).join(', ')})`;
        throw new NonRetryableError(
          `offline mode: no data for ${source}: not in the hub cache (${spec.repo}@${spec.revision}: ${spec.files.train[0]}, ${spec.files.validation[0]} under ${path.join(cacheDir, 'hub')}) and missing locally: ${local}`,
        );
      }
    }
  }
  return pools;
}

// ---- sampling ----

interface SplitPools {
  train: { pool: SourcePool; reader: RowReader; indices: number[] }[];
  validation: { pool: SourcePool; reader: RowReader; indices: number[] }[];
}

/** A source's train and validation index pools: its own split, or a seeded holdout of validationFraction. */
function splitPools(pools: SourcePool[], config: PrepareConfig): SplitPools {
  const out: SplitPools = { train: [], validation: [] };
  for (const pool of pools) {
    const all = Array.from({ length: pool.train.count }, (_, i) => i);
    if (pool.validation) {
      out.train.push({ pool, reader: pool.train, indices: rngFor(config.seed, `${pool.source}/train`).shuffle(all) });
      const val = Array.from({ length: pool.validation.count }, (_, i) => i);
      out.validation.push({ pool, reader: pool.validation, indices: rngFor(config.seed, `${pool.source}/validation`).shuffle(val) });
    } else {
      const shuffled = rngFor(config.seed, `${pool.source}/holdout`).shuffle(all);
      const holdout = shuffled.length < 2 ? 0 : Math.max(1, Math.round(shuffled.length * config.validationFraction));
      out.validation.push({ pool, reader: pool.train, indices: shuffled.slice(0, holdout) });
      out.train.push({ pool, reader: pool.train, indices: shuffled.slice(holdout) });
    }
  }
  return out;
}

/** Equal shares across sources; a source with fewer rows gives its unused share to the others. */
function allocate(total: number, available: number[]): number[] {
  const order = available.map((a, i) => [a, i] as const).sort((x, y) => x[0] - y[0] || x[1] - y[1]);
  const take = new Array<number>(available.length).fill(0);
  let remaining = total;
  order.forEach(([avail, i], k) => {
    const share = Math.ceil(remaining / (order.length - k));
    take[i] = Math.min(avail, share);
    remaining -= take[i];
  });
  return take;
}

/** Per-source counts for one split: shortFraction of `total` from short sources, the rest from long ones. */
function mixtureCounts(total: number, entries: { pool: SourcePool; indices: number[] }[], shortFraction: number): number[] {
  const isLong = entries.map((e) => LONG_SOURCES.has(e.pool.source));
  const hasShort = isLong.some((l) => !l);
  const hasLong = isLong.some((l) => l);
  const shortTotal = !hasLong ? total : !hasShort ? 0 : Math.round(total * shortFraction);
  const counts = new Array<number>(entries.length).fill(0);
  for (const [group, groupTotal] of [
    [false, shortTotal],
    [true, total - shortTotal],
  ] as const) {
    const members = entries.map((e, i) => [e, i] as const).filter(([, i]) => isLong[i] === group);
    allocate(
      groupTotal,
      members.map(([e]) => e.indices.length),
    ).forEach((n, k) => (counts[members[k][1]] = n));
  }
  return counts;
}

async function sampleSplit(split: SplitName, entries: SplitPools[SplitName], total: number, config: PrepareConfig): Promise<Example[]> {
  const counts = mixtureCounts(total, entries, config.shortFraction);
  const docs: Example[] = [];
  for (const [i, e] of entries.entries()) docs.push(...(await e.reader.read(e.indices.slice(0, counts[i]))));
  return rngFor(config.seed, `${split}/order`).shuffle(docs);
}

// ---- tokens ----

function encodeSplit(docs: Example[], tokenizer: Tokenizer, onProgress: (done: number) => void): Uint32Array {
  const parts: number[][] = [];
  let total = 0;
  docs.forEach((doc, i) => {
    const ids = tokenizer.encode(doc.text);
    ids.push(tokenizer.eosId);
    parts.push(ids);
    total += ids.length;
    if (i % 200 === 0) onProgress(i);
  });
  const out = new Uint32Array(total);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

function writeShards(dir: string, split: SplitName, tokens: Uint32Array, dtype: 'uint16' | 'uint32'): ShardEntry[] {
  const shards: ShardEntry[] = [];
  const bytesPer = dtype === 'uint16' ? 2 : 4;
  // At least one (possibly empty) shard per split: the manifest contract lists one or more.
  for (let start = 0, n = 0; start < tokens.length || n === 0; start += SHARD_TOKENS, n++) {
    const slice = tokens.subarray(start, Math.min(tokens.length, start + SHARD_TOKENS));
    const buf = Buffer.alloc(slice.length * bytesPer);
    for (let i = 0; i < slice.length; i++) {
      if (dtype === 'uint16') buf.writeUInt16LE(slice[i], i * 2);
      else buf.writeUInt32LE(slice[i], i * 4);
    }
    const file = `${split}-${String(n).padStart(5, '0')}.bin`;
    fs.writeFileSync(path.join(dir, file), buf);
    shards.push({ file, tokens: slice.length, sha256: crypto.createHash('sha256').update(buf).digest('hex') });
  }
  return shards;
}

function splitStats(docs: Example[], tokens: number): SplitStats {
  const sources: Record<string, number> = {};
  for (const d of docs) sources[d.source] = (sources[d.source] ?? 0) + 1;
  return { documents: docs.length, tokens, sources, longDocuments: docs.filter((d) => d.long).length };
}

/** A prepared dataset is reusable when its manifest has our key and every shard still matches. */
function existingDataset(dir: string, key: string): PreparedManifest | null {
  const manifestPath = path.join(dir, 'manifest.json');
  if (!fs.existsSync(manifestPath)) return null;
  try {
    const manifest = JSON.parse(fs.readFileSync(manifestPath, 'utf8')) as PreparedManifest;
    if (manifest.format !== DATASET_FORMAT || manifest.inputs?.key !== key) return null;
    if (sha256File(path.join(dir, manifest.tokenizer)) !== manifest.tokenizerSha256) return null;
    for (const split of Object.values(manifest.splits)) {
      for (const shard of split.shards) if (sha256File(path.join(dir, shard.file)) !== shard.sha256) return null;
    }
    return manifest;
  } catch {
    return null;
  }
}

export async function prepareDatasets(job: PrepareJob, ctx: Ctx): Promise<PrepareResult> {
  const started = Date.now();
  const { config } = job;
  const pools = await openSources(job, ctx);

  const tokenizerSha = config.tokenizerPath ? sha256File(config.tokenizerPath) : null;
  const inputs = {
    version: PREPARE_VERSION,
    datasetSources: config.datasetSources,
    maxTrainSamples: config.maxTrainSamples,
    maxEvalSamples: config.maxEvalSamples,
    shortFraction: config.shortFraction,
    validationFraction: config.validationFraction,
    seed: config.seed,
    vocabSize: config.vocabSize,
    tokenizer: tokenizerSha ? { file: config.tokenizerPath, sha256: tokenizerSha } : 'byte-level-bpe',
    sources: pools.map((p) => ({ source: p.source, origin: p.origin, files: p.files })),
  };
  const key = crypto.createHash('sha256').update(JSON.stringify(inputs)).digest('hex');
  const datasetDir = path.join(datasetCacheDir(job.dataDir), 'prepared', key.slice(0, 24));
  const manifestPath = path.join(datasetDir, 'manifest.json');

  const existing = existingDataset(datasetDir, key);
  if (existing) {
    ctx.emit({ kind: 'progress', stage: 'writing', message: `reusing prepared dataset ${datasetDir}`, fraction: 1 });
    return { datasetDir, manifestPath, reused: true, stats: existing.stats };
  }

  checkStop(ctx, 'sampling');
  ctx.emit({ kind: 'progress', stage: 'sampling', message: 'sampling train/validation documents', fraction: 0.3 });
  const split = splitPools(pools, config);
  const trainDocs = await sampleSplit('train', split.train, config.maxTrainSamples, config);
  const validationDocs = await sampleSplit('validation', split.validation, config.maxEvalSamples, config);
  if (trainDocs.length === 0)
    throw new NonRetryableError(`no training documents: the sources ${config.datasetSources.join(', ')} gave 0 rows`);

  checkStop(ctx, 'tokenizer');
  let tokenizer: Tokenizer;
  if (config.tokenizerPath) {
    ctx.emit({ kind: 'progress', stage: 'tokenizer', message: `loading ${config.tokenizerPath}`, fraction: 0.4 });
    tokenizer = loadTokenizer(config.tokenizerPath);
  } else {
    ctx.emit({
      kind: 'progress',
      stage: 'tokenizer',
      message: `training byte-level BPE up to ${config.vocabSize} tokens on ${trainDocs.length} documents`,
      fraction: 0.4,
    });
    tokenizer = trainByteLevelBpe(
      trainDocs.map((d) => d.text),
      {
        vocabSize: config.vocabSize,
        onProgress: (done, target) =>
          ctx.emit({
            kind: 'progress',
            stage: 'tokenizer',
            message: `BPE merges ${done}/${target}`,
            fraction: 0.4 + (0.35 * done) / target,
          }),
      },
    );
  }
  if (tokenizer.vocabSize > config.vocabSize) {
    throw new NonRetryableError(
      `tokenizer ${config.tokenizerPath ?? '(trained)'} has ${tokenizer.vocabSize} tokens but config.vocabSize is ${config.vocabSize}; raise vocabSize to at least ${tokenizer.vocabSize}`,
    );
  }

  checkStop(ctx, 'encoding');
  const encodeProgress = (base: number, n: number) => (done: number) =>
    ctx.emit({
      kind: 'progress',
      stage: 'encoding',
      message: `encoded ${done}/${n} documents`,
      fraction: base + (0.1 * done) / Math.max(1, n),
    });
  const trainTokens = encodeSplit(trainDocs, tokenizer, encodeProgress(0.75, trainDocs.length));
  const validationTokens = encodeSplit(validationDocs, tokenizer, encodeProgress(0.85, validationDocs.length));

  ctx.emit({ kind: 'progress', stage: 'writing', message: `writing shards to ${datasetDir}`, fraction: 0.95 });
  const dtype = tokenizer.vocabSize <= 65535 ? 'uint16' : 'uint32';
  const staging = stagingDirFor(datasetDir); // created, next to datasetDir
  try {
    saveTokenizer(tokenizer, path.join(staging, TOKENIZER_FILE));
    const trainStats = splitStats(trainDocs, trainTokens.length);
    const stats: PrepareStats = {
      train: trainStats,
      validation: splitStats(validationDocs, validationTokens.length),
      vocabSize: tokenizer.vocabSize,
      tokenizer: config.tokenizerPath ? 'loaded' : 'trained',
      shortFraction: trainStats.documents ? (trainStats.documents - trainStats.longDocuments) / trainStats.documents : 0,
      sourceFiles: pools.flatMap((p) => p.files.map((f) => ({ source: p.source, origin: p.origin, ...f }))),
      seconds: (Date.now() - started) / 1000,
    };
    const manifest: PreparedManifest = {
      format: DATASET_FORMAT,
      tokenizer: TOKENIZER_FILE,
      tokenizerSha256: sha256File(path.join(staging, TOKENIZER_FILE)),
      vocabSize: tokenizer.vocabSize,
      eosId: tokenizer.eosId,
      padId: tokenizer.padId,
      dtype,
      splits: {
        train: {
          shards: writeShards(staging, 'train', trainTokens, dtype),
          documents: trainDocs.length,
          sources: stats.train.sources,
          longDocuments: stats.train.longDocuments,
        },
        validation: {
          shards: writeShards(staging, 'validation', validationTokens, dtype),
          documents: validationDocs.length,
          sources: stats.validation.sources,
          longDocuments: stats.validation.longDocuments,
        },
      },
      inputs: { ...inputs, key },
      stats,
      createdAt: new Date().toISOString(),
    };
    writeJsonAtomic(path.join(staging, 'manifest.json'), manifest);
    publishDirectory(staging, datasetDir);
    ctx.emit({
      kind: 'progress',
      stage: 'writing',
      message: `prepared ${trainDocs.length} train / ${validationDocs.length} validation documents (${trainTokens.length} / ${validationTokens.length} tokens)`,
      fraction: 1,
    });
    return { datasetDir, manifestPath, reused: false, stats };
  } finally {
    fs.rmSync(staging, { recursive: true, force: true });
  }
}
