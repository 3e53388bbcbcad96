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

export interface SamplerState {
  rng: RngState;
  /** Windows drawn so far: how far into the data order a resumed run continues. */
  windowsDrawn: number;
}

/**
 * Training windows of seqLen + 1 tokens at uniformly random offsets (nanoGPT style: every offset is a
 * valid example, and document boundaries are marked by EOS inside the window). The order comes from
 * a seeded RNG whose state is checkpointed, so resume continues the exact same sequence of batches.
 */
export class TrainSampler {
  private rng: Rng;
  windowsDrawn = 0;

  constructor(
    private readonly split: TokenSplit,
    private readonly seqLen: number,
    private readonly batchSize: number,
    seed: number,
  ) {
    checkSplitLength(split, seqLen);
    this.rng = new Rng(seed);
  }

  nextBatch(): TokenBatch {
    const positions = this.split.tokens.length - this.seqLen; // valid starts: 0 .. N - (seqLen + 1)
    const starts = Array.from({ length: this.batchSize }, () => this.rng.int(positions));
    this.windowsDrawn += this.batchSize;
    return windowsToBatch(this.split, starts, this.seqLen);
  }

  state(): SamplerState {
    return { rng: this.rng.state(), windowsDrawn: this.windowsDrawn };
  }

  load(state: SamplerState): void {
    this.rng.load(state.rng);
    this.windowsDrawn = state.windowsDrawn;
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
