// Where each dataset comes from (hub parquet, original files, bundled fixtures) and how its rows are read.
// Every source ends up as a SourcePool: train rows, validation rows (when the dataset has its own split)
// and the checksums of the files they came from, which go into the prepared dataset's cache key.
import fs from 'node:fs';
import path from 'node:path';
import { parquetMetadataAsync, parquetReadObjects, parquetSchema, type AsyncBuffer, type FileMetaData } from 'hyparquet';
import { NonRetryableError } from '../../../common/child';
import { sha256File } from '../../../common/export/files';
import { fetchHubFile, readHubCache, type HubFileRequest, type RetryPolicy } from './hub';
import { FORMATTERS, REQUIRED_COLUMNS, malformed, type Example, type SourceName } from './records';

export type SplitName = 'train' | 'validation';

export interface HubDatasetSpec {
  repo: string;
  config: string;
  /** Pinned commits where known, so a re-run reads the same bytes; SVAMP ships parquet only in the hub's conversion branch. */
  revision: string;
  /** Parquet files per split, in order; later train files are fetched only when earlier ones hold too few rows. */
  files: Record<SplitName, string[]>;
}

export const HUB_DATASETS: Record<SourceName, HubDatasetSpec> = {
  GSM8K: {
    repo: 'openai/gsm8k',
    config: 'main',
    revision: '740312add88f781978c0658806c59bc2815b9866',
    files: { train: ['main/train-00000-of-00001.parquet'], validation: ['main/test-00000-of-00001.parquet'] },
  },
  SVAMP: {
    repo: 'ChilleD/SVAMP',
    config: 'default',
    revision: 'refs/convert/parquet',
    files: { train: ['default/train/0000.parquet'], validation: ['default/test/0000.parquet'] },
  },
  HotpotQA: {
    repo: 'hotpotqa/hotpot_qa',
    config: 'distractor',
    revision: '1908d6afbbead072334abe2965f91bd2709910ab',
    files: {
      train: ['distractor/train-00000-of-00002.parquet', 'distractor/train-00001-of-00002.parquet'],
      validation: ['distractor/validation-00000-of-00001.parquet'],
    },
  },
};

/** Original file layout (as the datasets are distributed, and as in fixtures/cognate); no validation file = hold out. */
export const LOCAL_FILES: Record<SourceName, { train: string; validation?: string }> = {
  GSM8K: { train: 'gsm8k/train.jsonl', validation: 'gsm8k/test.jsonl' },
  SVAMP: { train: 'svamp/SVAMP.json' },
  HotpotQA: { train: 'hotpotqa/dev_distractor_sample.json' },
};

export const FIXTURES_DIR = path.resolve(__dirname, '../../../fixtures/cognate');

export interface SourceFile {
  name: string;
  sha256: string;
  bytes: number;
}

/** Rows of one split, read on demand so a 165 MB parquet file never sits in memory as objects. */
export interface RowReader {
  count: number;
  read(indices: number[]): Promise<Example[]>;
}

export interface SourcePool {
  source: SourceName;
  origin: 'hub' | 'local';
  files: SourceFile[];
  train: RowReader;
  /** null: the dataset has no validation split here and one is held out of train. */
  validation: RowReader | null;
}

// ---- original formats (JSON, JSON Lines) ----

function readText(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new NonRetryableError(`${file}: cannot read (${(err as Error).message})`);
  }
}

function jsonRows(file: string): unknown[] {
  const text = readText(file);
  if (file.endsWith('.jsonl')) {
    return text.split('\n').flatMap((line, i) => {
      if (line.trim() === '') return [];
      try {
        return [JSON.parse(line)];
      } catch (err) {
        throw malformed(`${file} line ${i + 1}`, `invalid JSON (${(err as Error).message})`);
      }
    });
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw malformed(file, `invalid JSON (${(err as Error).message})`);
  }
  if (!Array.isArray(parsed)) throw malformed(file, 'expected a JSON array of records');
  return parsed;
}

/** Small files: every row is checked up front so a bad row fails even when it would not be sampled. */
function jsonReader(source: SourceName, file: string): RowReader {
  const rows = jsonRows(file);
  const unit = file.endsWith('.jsonl') ? 'line' : 'row';
  const examples = rows.map((row, i) => FORMATTERS[source](row, `${file} ${unit} ${i + 1}`));
  return { count: examples.length, read: async (indices) => indices.map((i) => examples[i]) };
}

function fileInfo(file: string, name: string): SourceFile {
  return { name, sha256: sha256File(file), bytes: fs.statSync(file).size };
}

export function localFilesPresent(source: SourceName, dir: string): string[] {
  const layout = LOCAL_FILES[source];
  return [layout.train, layout.validation].filter((f): f is string => !!f).filter((f) => !fs.existsSync(path.join(dir, f)));
}

export function openLocalSource(source: SourceName, dir: string): SourcePool {
  const layout = LOCAL_FILES[source];
  const missing = localFilesPresent(source, dir);
  if (missing.length) throw new NonRetryableError(`${source}: missing ${missing.map((f) => path.join(dir, f)).join(', ')}`);
  const train = path.join(dir, layout.train);
  const validation = layout.validation ? path.join(dir, layout.validation) : null;
  return {
    source,
    origin: 'local',
    files: [fileInfo(train, layout.train), ...(validation && layout.validation ? [fileInfo(validation, layout.validation)] : [])],
    train: jsonReader(source, train),
    validation: validation ? jsonReader(source, validation) : null,
  };
}

// ---- hub parquet ----

/** Byte ranges read on demand: hyparquet fetches the footer and only the column chunks it needs. */
function fileAsyncBuffer(file: string): AsyncBuffer {
  const byteLength = fs.statSync(file).size;
  return {
    byteLength,
    slice(start: number, end = byteLength): ArrayBuffer {
      const buf = Buffer.alloc(Math.max(0, end - start));
      const fd = fs.openSync(file, 'r');
      try {
        fs.readSync(fd, buf, 0, buf.length, start);
      } finally {
        fs.closeSync(fd);
      }
      return buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.length);
    },
  };
}

interface ParquetPart {
  file: string;
  label: string;
  metadata: FileMetaData;
  rows: number;
}

async function openParquet(source: SourceName, file: string, label: string): Promise<ParquetPart> {
  let metadata: FileMetaData;
  try {
    metadata = await parquetMetadataAsync(fileAsyncBuffer(file));
  } catch (err) {
    throw malformed(label, `not a readable parquet file (${(err as Error).message})`);
  }
  const columns = new Set(parquetSchema(metadata).children.map((c) => c.element.name));
  const missing = REQUIRED_COLUMNS[source].filter((c) => !columns.has(c));
  if (missing.length)
    throw malformed(label, `missing column(s) ${missing.map((c) => `"${c}"`).join(', ')} (has ${[...columns].join(', ')})`);
  return { file, label, metadata, rows: Number(metadata.num_rows) };
}

const READ_WINDOW = 2000;

function parquetReader(source: SourceName, parts: ParquetPart[]): RowReader {
  const starts: number[] = [];
  let count = 0;
  for (const p of parts) {
    starts.push(count);
    count += p.rows;
  }
  return {
    count,
    async read(indices) {
      const out = new Map<number, Example>();
      const sorted = [...new Set(indices)].sort((a, b) => a - b);
      // Windows of rows around the wanted indices keep memory bounded on large shards.
      for (let k = 0; k < sorted.length;) {
        const global = sorted[k];
        let p = parts.length - 1;
        while (starts[p] > global) p--;
        const part = parts[p];
        const rowStart = global - starts[p];
        const rowEnd = Math.min(part.rows, rowStart + READ_WINDOW);
        let rows: Record<string, unknown>[];
        try {
          const file = fileAsyncBuffer(part.file);
          rows = (await parquetReadObjects({
            file,
            metadata: part.metadata,
            rowStart,
            rowEnd,
            columns: REQUIRED_COLUMNS[source],
          })) as Record<string, unknown>[];
        } catch (err) {
          throw malformed(part.label, `cannot read rows ${rowStart}-${rowEnd - 1} (${(err as Error).message})`);
        }
        while (k < sorted.length && sorted[k] < starts[p] + rowEnd) {
          const local = sorted[k] - starts[p];
          out.set(sorted[k], FORMATTERS[source](rows[local - rowStart], `${part.label} row ${local}`));
          k++;
        }
      }
      return indices.map((i) => out.get(i) as Example);
    },
  };
}

export interface HubOpenOptions {
  endpoint: string;
  cacheDir: string;
  /** Cache only: never touch the network. */
  offline: boolean;
  retry: RetryPolicy;
  /** Stop adding files to a split once it holds this many rows. */
  rowsWanted: Record<SplitName, number>;
  onFile?: (message: string) => void;
}

/** Hub parquet files for one source (cached or downloaded); in offline mode null when the cache lacks them. */
export async function openHubSource(source: SourceName, opts: HubOpenOptions): Promise<SourcePool | null> {
  const spec = HUB_DATASETS[source];
  const files: SourceFile[] = [];
  const readers = {} as Record<SplitName, RowReader>;
  for (const split of ['train', 'validation'] as const) {
    const parts: ParquetPart[] = [];
    let rows = 0;
    for (const file of spec.files[split]) {
      if (parts.length > 0 && rows >= opts.rowsWanted[split]) break;
      const req: HubFileRequest = { endpoint: opts.endpoint, cacheDir: opts.cacheDir, repo: spec.repo, revision: spec.revision, file };
      const got = opts.offline ? readHubCache(req) : await fetchHubFile(req, opts.retry, (m) => opts.onFile?.(m));
      if (!got) {
        if (parts.length > 0) break; // offline: use the shards that are cached
        return null;
      }
      opts.onFile?.(
        `${source}: ${file} ${got.fromCache ? 'from cache' : 'downloaded'} (${got.bytes} bytes, sha256 ${got.sha256.slice(0, 12)})`,
      );
      const part = await openParquet(source, got.localPath, `${got.url} (cached at ${got.localPath})`);
      parts.push(part);
      rows += part.rows;
      files.push({ name: `${spec.repo}@${spec.revision}/${file}`, sha256: got.sha256, bytes: got.bytes });
    }
    readers[split] = parquetReader(source, parts);
  }
  return { source, origin: 'hub', files, train: readers.train, validation: readers.validation };
}
