// Reads a prepared dataset (format "forge-token-shards/v1", written by data preparation) and serves
// training windows from seeded positions and fixed validation windows.
// Every shard's size and sha256 are checked on open: a truncated or corrupt shard fails loudly, by name,
// instead of silently training on garbage.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { NonRetryableError } from '../../../common/child';
import { formatZodError } from '../../../common/validation';
import { Rng, type RngState } from '../../../common/rng';

export const DATASET_FORMAT = 'forge-token-shards/v1';

const ShardSchema = z.object({
  file: z.string().min(1),
  tokens: z.number().int().min(0),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
});

const SplitSchema = z.object({
  shards: z.array(ShardSchema).min(1),
  documents: z.number().int().min(0),
  sources: z.record(z.string(), z.number()).default({}),
});

export const DatasetManifestSchema = z.looseObject({
  format: z.literal(DATASET_FORMAT),
  tokenizer: z.string().min(1),
  vocabSize: z.number().int().positive(),
  eosId: z.number().int().min(0),
  padId: z.number().int().min(0),
  dtype: z.enum(['uint16', 'uint32']),
  splits: z.looseObject({ train: SplitSchema, validation: SplitSchema }),
  createdAt: z.string().optional(),
});

export type DatasetManifest = z.output<typeof DatasetManifestSchema>;
export type SplitName = 'train' | 'validation';

/** One split's tokens, all shards concatenated in manifest order. */
export interface TokenSplit {
  name: SplitName;
  tokens: Uint16Array | Uint32Array;
  documents: number;
}

export interface TokenDataset {
  dir: string;
  manifest: DatasetManifest;
  train: TokenSplit;
  validation: TokenSplit;
}

function datasetError(dir: string, message: string): NonRetryableError {
  return new NonRetryableError(`prepared dataset ${dir}: ${message}`);
}

function readSplit(dir: string, manifest: DatasetManifest, name: SplitName): TokenSplit {
  const split = manifest.splits[name];
  const bytesPerToken = manifest.dtype === 'uint16' ? 2 : 4;
  const total = split.shards.reduce((n, s) => n + s.tokens, 0);
  const tokens = manifest.dtype === 'uint16' ? new Uint16Array(total) : new Uint32Array(total);
  let at = 0;
  for (const shard of split.shards) {
    const file = path.resolve(dir, shard.file);
    if (path.relative(dir, file).startsWith('..')) throw datasetError(dir, `shard "${shard.file}" points outside the dataset directory`);
    if (!fs.existsSync(file)) throw datasetError(dir, `${name} shard ${shard.file} is missing`);
    const bytes = fs.readFileSync(file);
    const expected = shard.tokens * bytesPerToken;
    if (bytes.length !== expected) {
      const state = bytes.length < expected ? 'truncated' : 'longer than the manifest says';
      throw datasetError(
        dir,
        `${name} shard ${shard.file} is ${state}: ${bytes.length} bytes, expected ${expected} (${shard.tokens} ${manifest.dtype} tokens)`,
      );
    }
    const digest = crypto.createHash('sha256').update(bytes).digest('hex');
    if (digest !== shard.sha256)
      throw datasetError(dir, `${name} shard ${shard.file} is corrupt: sha256 ${digest} does not match the manifest's ${shard.sha256}`);
    // Copy through a fresh aligned buffer; the shard is little-endian like every host Node ships for.
    const aligned = new Uint8Array(bytes.length);
    aligned.set(bytes);
    tokens.set(manifest.dtype === 'uint16' ? new Uint16Array(aligned.buffer) : new Uint32Array(aligned.buffer), at);
    at += shard.tokens;
  }
  let maxId = 0;
  for (let i = 0; i < tokens.length; i++) if (tokens[i] > maxId) maxId = tokens[i];
  if (tokens.length > 0 && maxId >= manifest.vocabSize)
    throw datasetError(dir, `${name} split holds token id ${maxId} but vocabSize is ${manifest.vocabSize}`);
  return { name, tokens, documents: split.documents };
}

/** Open and verify a prepared dataset. `modelVocabSize` is the model's embedding size, which must cover the tokenizer. */
export function openDataset(dir: string, modelVocabSize: number): TokenDataset {
  const manifestPath = path.join(dir, 'manifest.json');
  if (!fs.existsSync(manifestPath)) throw datasetError(dir, 'manifest.json is missing (was data preparation run?)');
  let raw: unknown;
  try {
    raw = JSON.parse(fs.readFileSync(manifestPath, 'utf8'));
  } catch (err) {
    throw datasetError(dir, `manifest.json is not valid JSON (${(err as Error).message})`);
  }
  const parsed = DatasetManifestSchema.safeParse(raw);
  if (!parsed.success) throw datasetError(dir, `manifest.json: ${formatZodError(parsed.error)}`);
  const manifest = parsed.data;
  if (manifest.vocabSize > modelVocabSize)
    throw datasetError(dir, `tokenizer vocabSize ${manifest.vocabSize} exceeds the model's vocabSize ${modelVocabSize}`);
  if (manifest.dtype === 'uint16' && manifest.vocabSize > 65536)
    throw datasetError(dir, `dtype uint16 cannot hold vocabSize ${manifest.vocabSize}`);
  return { dir, manifest, train: readSplit(dir, manifest, 'train'), validation: readSplit(dir, manifest, 'validation') };
}

/** A batch of next-token examples, row-major [batchSize, seqLen]. */
export interface TokenBatch {
  batchSize: number;
  seqLen: number;
  inputs: Int32Array;
  targets: Int32Array;
  /** 1 where a target is real, 0 for the padding after a long document's last token; absent: every position is real. */
  mask?: Float32Array;
  /** Rows that start a new example in this batch: their LTM stream is cleared before the batch is read. */
  resetRows?: number[];
}

function windowsToBatch(split: TokenSplit, starts: number[], seqLen: number): TokenBatch {
  const inputs = new Int32Array(starts.length * seqLen);
  const targets = new Int32Array(starts.length * seqLen);
  starts.forEach((start, row) => {
    for (let t = 0; t < seqLen; t++) {
      inputs[row * seqLen + t] = split.tokens[start + t];
      targets[row * seqLen + t] = split.tokens[start + t + 1];
    }
  });
  return { batchSize: starts.length, seqLen, inputs, targets };
}

function checkSplitLength(split: TokenSplit, seqLen: number): void {
  if (split.tokens.length < seqLen + 1) {
    throw new NonRetryableError(
      `${split.name} split has ${split.tokens.length} tokens, fewer than one window of seqLen + 1 = ${seqLen + 1}`,
    );
  }
}

/** A document of a split: tokens [start, end), its closing EOS included. */
export interface DocumentSpan {
  start: number;
  end: number;
}

/** The split's documents, found by their closing EOS (a trailing run without EOS counts as one). */
export function findDocuments(split: TokenSplit, eosId: number): DocumentSpan[] {
  const docs: DocumentSpan[] = [];
  let start = 0;
  for (let i = 0; i < split.tokens.length; i++) {
    if (split.tokens[i] === eosId) {
      docs.push({ start, end: i + 1 });
      start = i + 1;
    }
  }
  if (start < split.tokens.length) docs.push({ start, end: split.tokens.length });
  return docs;
}

/** Segments a document of `length` tokens takes: one per seqLen predictions (the last may be partial). */
export function segmentCount(length: number, seqLen: number): number {
  return Math.ceil((length - 1) / seqLen);
}

/** How the sampler reads documents longer than one window (config.longDocuments). */
export interface LongDocumentOptions {
  mode: 'segments' | 'windows';
  eosId: number;
  padId: number;
}

/** What one batch row is reading: a long document (the next segment to read) or a short window. */
export type RowState = { kind: 'long'; doc: number; nextSegment: number } | { kind: 'short'; start: number };

export interface SamplerState {
  rng: RngState;
  /** Windows drawn so far: how far into the data order a resumed run continues. */
  windowsDrawn: number;
  /** Segments mode: each row's current example (null: none yet). Absent in checkpoints of windows mode. */
  rows?: (RowState | null)[];
}

/**
 * Training batches. Windows mode (and every example of a split without long documents): windows of
 * seqLen + 1 tokens at uniformly random offsets (nanoGPT style: every offset is a valid example, and
 * document boundaries are marked by EOS inside the window).
 * Segments mode (the long-context mixture): a document longer than one window (seqLen + 1 tokens: in the
 * prepared mixture, the HotpotQA contexts) is read by one batch row, segment after segment in order, one
 * segment per batch, its last segment padded and masked; when a row is free it starts a long document with
 * probability (long documents / documents) and otherwise reads one random window of the short documents
 * (concatenated, EOS between them). A row that starts an example is listed in `resetRows`, so the trainer
 * clears that row's LTM stream: the bank carries a document's earlier segments and nothing else.
 * The order comes from a seeded RNG whose state, with every row's position, is checkpointed, so resume
 * continues the exact same sequence of batches.
 */
export class TrainSampler {
  private rng: Rng;
  windowsDrawn = 0;
  private readonly long: DocumentSpan[] = [];
  /** Short documents concatenated (segments mode); null: short windows come from the whole split. */
  private readonly shortTokens: Uint16Array | Uint32Array | null = null;
  private readonly longShare: number = 0;
  private rows: (RowState | null)[];

  constructor(
    private readonly split: TokenSplit,
    private readonly seqLen: number,
    private readonly batchSize: number,
    seed: number,
    private readonly longDocuments: LongDocumentOptions = { mode: 'windows', eosId: 0, padId: 0 },
  ) {
    checkSplitLength(split, seqLen);
    this.rng = new Rng(seed);
    this.rows = new Array<RowState | null>(batchSize).fill(null);
    if (longDocuments.mode === 'segments') {
      const docs = findDocuments(split, longDocuments.eosId);
      this.long = docs.filter((d) => d.end - d.start > seqLen + 1);
      const short = docs.filter((d) => d.end - d.start <= seqLen + 1);
      const shortLength = short.reduce((n, d) => n + d.end - d.start, 0);
      if (shortLength >= seqLen + 1) {
        const tokens = split.tokens instanceof Uint16Array ? new Uint16Array(shortLength) : new Uint32Array(shortLength);
        let at = 0;
        for (const d of short) {
          tokens.set(split.tokens.subarray(d.start, d.end), at);
          at += d.end - d.start;
        }
        this.shortTokens = tokens;
      }
      // Too few short tokens for one window: short draws fall back to windows of the whole split.
      this.longShare = this.long.length / Math.max(1, docs.length);
    }
  }

  /** Segments mode with at least one long document. */
  private get segmented(): boolean {
    return this.longDocuments.mode === 'segments' && this.long.length > 0;
  }

  nextBatch(): TokenBatch {
    if (!this.segmented) {
      const positions = this.split.tokens.length - this.seqLen; // valid starts: 0 .. N - (seqLen + 1)
      const starts = Array.from({ length: this.batchSize }, () => this.rng.int(positions));
      this.windowsDrawn += this.batchSize;
      return windowsToBatch(this.split, starts, this.seqLen);
    }
    const T = this.seqLen;
    const inputs = new Int32Array(this.batchSize * T);
    const targets = new Int32Array(this.batchSize * T);
    const mask = new Float32Array(this.batchSize * T);
    const resetRows: number[] = [];
    for (let row = 0; row < this.batchSize; row++) {
      let state = this.rows[row];
      if (state === null || state.kind === 'short' || state.nextSegment >= segmentCount(this.docLength(state.doc), T)) {
        state = this.startExample();
        resetRows.push(row);
      }
      this.rows[row] = state;
      const at = row * T;
      if (state.kind === 'short') {
        const source = this.shortTokens ?? this.split.tokens;
        for (let t = 0; t < T; t++) {
          inputs[at + t] = source[state.start + t];
          targets[at + t] = source[state.start + t + 1];
        }
        mask.fill(1, at, at + T);
      } else {
        const doc = this.long[state.doc];
        const from = doc.start + state.nextSegment * T;
        for (let t = 0; t < T; t++) {
          const real = from + t + 1 < doc.end;
          inputs[at + t] = real ? this.split.tokens[from + t] : this.longDocuments.padId;
          targets[at + t] = real ? this.split.tokens[from + t + 1] : this.longDocuments.padId;
          mask[at + t] = real ? 1 : 0;
        }
        this.rows[row] = { ...state, nextSegment: state.nextSegment + 1 };
      }
    }
    this.windowsDrawn += this.batchSize;
    return { batchSize: this.batchSize, seqLen: T, inputs, targets, mask, resetRows };
  }

  private docLength(doc: number): number {
    return this.long[doc].end - this.long[doc].start;
  }

  private startExample(): RowState {
    if (this.rng.next() < this.longShare) return { kind: 'long', doc: this.rng.int(this.long.length), nextSegment: 0 };
    const source = this.shortTokens ?? this.split.tokens;
    return { kind: 'short', start: this.rng.int(source.length - this.seqLen) };
  }

  state(): SamplerState {
    const base = { rng: this.rng.state(), windowsDrawn: this.windowsDrawn };
    return this.segmented ? { ...base, rows: this.rows.map((r) => (r ? { ...r } : null)) } : base;
  }

  load(state: SamplerState): void {
    this.rng.load(state.rng);
    this.windowsDrawn = state.windowsDrawn;
    if (this.segmented) {
      const rows = state.rows ?? [];
      this.rows = Array.from({ length: this.batchSize }, (_, i) => {
        const r = rows[i] ?? null;
        // A checkpoint of another split or batch size cannot point past this one's documents: start that row afresh.
        return r && r.kind === 'long' && r.doc >= this.long.length ? null : r ? { ...r } : null;
      });
    }
  }
}

/**
 * The same `count` held-out windows every validation pass (comparable numbers across steps), evenly
 * spread over the validation split, in batches of at most batchSize.
 */
export function validationBatches(split: TokenSplit, seqLen: number, batchSize: number, count: number): TokenBatch[] {
  checkSplitLength(split, seqLen);
  const lastStart = split.tokens.length - (seqLen + 1);
  const starts = Array.from({ length: count }, (_, i) => (count === 1 ? 0 : Math.floor((i * lastStart) / (count - 1))));
  const batches: TokenBatch[] = [];
  for (let i = 0; i < starts.length; i += batchSize) batches.push(windowsToBatch(split, starts.slice(i, i + batchSize), seqLen));
  return batches;
}
