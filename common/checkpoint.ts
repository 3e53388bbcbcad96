// The one checkpoint mechanism of both pipelines (Cognate training, Agent Forge agents and teams): a
// checkpoint is one checksummed file holding any JSON-like state with typed arrays and tensors, written
// to a temp file, fsynced and renamed into place (then the directory fsynced), so a crash or a full disk
// leaves the previous checkpoints untouched and never a half-published one. Loading takes the newest file
// that verifies: a corrupt one is renamed aside (*.corrupt) with a warning and the previous one is used;
// temp files and staging folders left by a crash mid-write are removed.
//
// File layout (little-endian):
//   "FGCKPT01"  8-byte magic
//   uint32      header length H
//   header      H bytes of JSON (space padded to a multiple of 8, so every array starts 8-byte aligned)
//   blob        the typed arrays the header points at, back to back
//   sha256      32 bytes over everything before it: a torn or bit-flipped file never loads
// The state is any JSON-like value; typed arrays and tensors inside it are swapped for references into the blob.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { fsyncDirectory } from './export/files';

const MAGIC = Buffer.from('FGCKPT01', 'ascii');
const HASH_BYTES = 32;
const FILE_PATTERN = /^step-(\d{8,})\.ckpt$/;

export { toTensorState, fromTensorState, type TensorState } from './tensor-state';

type StoredArray = Float32Array | Float64Array | Int32Array | Uint32Array | Uint16Array | Uint8Array | Int8Array | Int16Array;
const ARRAY_TYPES = { Float32Array, Float64Array, Int32Array, Uint32Array, Uint16Array, Uint8Array, Int8Array, Int16Array } as const;
type ArrayTypeName = keyof typeof ARRAY_TYPES;

interface ArrayEntry {
  type: ArrayTypeName;
  offset: number;
  length: number;
}

interface Header {
  version: 1;
  step: number;
  createdAt: string;
  arrays: ArrayEntry[];
  state: unknown;
}

/** Writing a checkpoint failed (e.g. ENOSPC): nothing was published, older checkpoints are intact. */
export class CheckpointWriteError extends Error {
  constructor(
    readonly file: string,
    readonly code: string | undefined,
    cause: Error,
    previous: string | null,
  ) {
    super(
      `cannot write checkpoint ${file}: ${cause.message}; nothing was published${previous ? `, the previous checkpoint ${path.basename(previous)} is intact` : ''}`,
    );
    this.name = 'CheckpointWriteError';
  }
}

export class CorruptCheckpointError extends Error {
  constructor(
    readonly file: string,
    reason: string,
  ) {
    super(`checkpoint ${file} is unusable: ${reason}`);
    this.name = 'CorruptCheckpointError';
  }
}

function arrayTypeName(value: unknown): ArrayTypeName | undefined {
  if (!ArrayBuffer.isView(value)) return undefined;
  const name = value.constructor.name as ArrayTypeName;
  return name in ARRAY_TYPES ? name : undefined;
}

/** Replace typed arrays and tensors by {$array: i}; non-finite numbers become {$num: "NaN"} (JSON has none). */
function encodeValue(value: unknown, arrays: StoredArray[], where: string): unknown {
  if (value instanceof tf.Tensor) {
    const data = value.dataSync() as StoredArray;
    arrays.push(data);
    return { $tensor: arrays.length - 1, shape: value.shape, dtype: value.dtype };
  }
  if (arrayTypeName(value)) {
    arrays.push(value as StoredArray);
    return { $array: arrays.length - 1 };
  }
  if (ArrayBuffer.isView(value)) throw new Error(`checkpoint state at ${where}: unsupported array type ${value.constructor.name}`);
  if (typeof value === 'number') return Number.isFinite(value) ? value : { $num: String(value) };
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return value;
  if (Array.isArray(value)) return value.map((v, i) => encodeValue(v, arrays, `${where}[${i}]`));
  if (typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) if (v !== undefined) out[k] = encodeValue(v, arrays, `${where}.${k}`);
    return out;
  }
  throw new Error(`checkpoint state at ${where}: cannot store a ${typeof value}`);
}

function decodeValue(value: unknown, arrays: StoredArray[]): unknown {
  if (Array.isArray(value)) return value.map((v) => decodeValue(v, arrays));
  if (value === null || typeof value !== 'object') return value;
  const o = value as Record<string, unknown>;
  if (typeof o.$array === 'number') return arrays[o.$array];
  if (typeof o.$tensor === 'number') return tf.tensor(arrays[o.$tensor], o.shape as number[], o.dtype as tf.DataType);
  if (typeof o.$num === 'string') return Number(o.$num);
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) out[k] = decodeValue(v, arrays);
  return out;
}

function bytesOf(a: StoredArray): Buffer {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength);
}

export function checkpointFileName(step: number): string {
  return `step-${String(step).padStart(8, '0')}.ckpt`;
}

export interface CheckpointFile {
  step: number;
  path: string;
}

/** Checkpoints in dir, newest first. */
export function listCheckpoints(dir: string): CheckpointFile[] {
  if (!fs.existsSync(dir)) return [];
  return fs
    .readdirSync(dir)
    .map((name) => ({ name, m: FILE_PATTERN.exec(name) }))
    .filter((e): e is { name: string; m: RegExpExecArray } => e.m !== null)
    .map((e) => ({ step: Number(e.m[1]), path: path.join(dir, e.name) }))
    .sort((a, b) => b.step - a.step);
}

export interface SavedCheckpoint {
  path: string;
  bytes: number;
  seconds: number;
  /** Older checkpoints removed to honour keepCheckpoints. */
  removed: string[];
}

/**
 * Write `state` as dir/step-NNNNNNNN.ckpt: temp file, fsync, rename, fsync the directory, so a crash
 * leaves either the old set or the complete new file. Then keep only the newest `keep` checkpoints.
 */
export function saveCheckpoint(dir: string, step: number, state: unknown, keep: number): SavedCheckpoint {
  const started = performance.now();
  fs.mkdirSync(dir, { recursive: true });
  const arrays: StoredArray[] = [];
  const encoded = encodeValue(state, arrays, 'state');
  let offset = 0;
  const entries: ArrayEntry[] = arrays.map((a) => {
    const entry = { type: arrayTypeName(a) as ArrayTypeName, offset, length: a.length };
    offset += Math.ceil(a.byteLength / 8) * 8;
    return entry;
  });
  const header: Header = { version: 1, step, createdAt: new Date().toISOString(), arrays: entries, state: encoded };
  let headerBytes = Buffer.from(JSON.stringify(header), 'utf8');
  const prefix = MAGIC.length + 4;
  const padded = Math.ceil((prefix + headerBytes.length) / 8) * 8 - prefix;
  headerBytes = Buffer.concat([headerBytes, Buffer.alloc(padded - headerBytes.length, 0x20)]);
  const lengthBytes = Buffer.alloc(4);
  lengthBytes.writeUInt32LE(headerBytes.length);

  const file = path.join(dir, checkpointFileName(step));
  const tmp = path.join(dir, `.${path.basename(file)}.tmp-${process.pid}`);
  const hash = crypto.createHash('sha256');
  let bytes = 0;
  try {
    const fd = fs.openSync(tmp, 'w');
    const write = (chunk: Buffer): void => {
      hash.update(chunk);
      let done = 0;
      while (done < chunk.length) done += fs.writeSync(fd, chunk, done, chunk.length - done);
      bytes += chunk.length;
    };
    try {
      write(MAGIC);
      write(lengthBytes);
      write(headerBytes);
      for (const a of arrays) {
        write(bytesOf(a));
        const pad = Math.ceil(a.byteLength / 8) * 8 - a.byteLength;
        if (pad > 0) write(Buffer.alloc(pad));
      }
      const digest = hash.digest();
      fs.writeSync(fd, digest);
      bytes += digest.length;
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, file);
    fsyncDirectory(dir);
  } catch (err) {
    fs.rmSync(tmp, { force: true });
    const e = err as NodeJS.ErrnoException;
    throw new CheckpointWriteError(file, e.code, e, listCheckpoints(dir).find((c) => c.path !== file)?.path ?? null);
  }

  const removed: string[] = [];
  for (const old of listCheckpoints(dir).slice(Math.max(1, keep))) {
    fs.rmSync(old.path, { force: true });
    removed.push(old.path);
  }
  return { path: file, bytes, seconds: (performance.now() - started) / 1000, removed };
}

export interface LoadedCheckpoint<S> {
  step: number;
  path: string;
  createdAt: string;
  state: S;
}

/** Read and verify one checkpoint file; throws CorruptCheckpointError naming what is wrong. */
export function readCheckpoint<S = unknown>(file: string): LoadedCheckpoint<S> {
  let buf: Buffer;
  try {
    buf = fs.readFileSync(file);
  } catch (err) {
    throw new CorruptCheckpointError(file, `cannot be read (${(err as Error).message})`);
  }
  if (buf.length < MAGIC.length + 4 + HASH_BYTES || !buf.subarray(0, MAGIC.length).equals(MAGIC)) {
    throw new CorruptCheckpointError(file, `not a checkpoint or truncated (${buf.length} bytes)`);
  }
  const body = buf.subarray(0, buf.length - HASH_BYTES);
  const expected = buf.subarray(buf.length - HASH_BYTES);
  const actual = crypto.createHash('sha256').update(body).digest();
  if (!actual.equals(expected)) throw new CorruptCheckpointError(file, `sha256 mismatch (truncated or corrupted, ${buf.length} bytes)`);

  const headerLength = buf.readUInt32LE(MAGIC.length);
  const blobStart = MAGIC.length + 4 + headerLength;
  let header: Header;
  try {
    header = JSON.parse(buf.subarray(MAGIC.length + 4, blobStart).toString('utf8')) as Header;
  } catch (err) {
    throw new CorruptCheckpointError(file, `header is not JSON (${(err as Error).message})`);
  }
  if (header.version !== 1) throw new CorruptCheckpointError(file, `unknown version ${String(header.version)}`);
  const arrays = header.arrays.map((e) => {
    const Ctor = ARRAY_TYPES[e.type];
    if (!Ctor) throw new CorruptCheckpointError(file, `unknown array type ${e.type}`);
    const start = blobStart + e.offset;
    const byteLength = e.length * Ctor.BYTES_PER_ELEMENT;
    if (start + byteLength > body.length) throw new CorruptCheckpointError(file, `array at ${e.offset} runs past the end`);
    // Copy into its own buffer: aligned, and the big file buffer can be freed as soon as we return.
    const copy = new Uint8Array(byteLength);
    copy.set(buf.subarray(start, start + byteLength));
    return new Ctor(copy.buffer);
  });
  return { step: header.step, path: file, createdAt: header.createdAt, state: decodeValue(header.state, arrays) as S };
}

/**
 * Temp files of a write a crash interrupted, and staging folders of the directory-per-checkpoint format
 * the agent engine used before (`.ep-NNNNNNNN.staging-*`). One trainer owns a checkpoint dir at a time
 * (the activity's retry starts only after the previous attempt is gone), so nothing live is removed.
 */
export function removeStaleTemporaries(dir: string): string[] {
  const removed: string[] = [];
  for (const name of fs.readdirSync(dir)) {
    if (/^\.step-\d+\.ckpt\.tmp-/.test(name) || /^\.ep-\d+\.staging-/.test(name)) {
      fs.rmSync(path.join(dir, name), { recursive: true, force: true });
      removed.push(name);
    }
  }
  return removed;
}

/**
 * The newest checkpoint in dir that verifies. A bad one is renamed to *.corrupt (kept for inspection,
 * out of the rotation), `warn` is told why, and the previous checkpoint is tried.
 */
export function loadLatestCheckpoint<S = unknown>(dir: string, warn: (message: string) => void): LoadedCheckpoint<S> | null {
  if (!fs.existsSync(dir)) return null;
  removeStaleTemporaries(dir);
  for (const candidate of listCheckpoints(dir)) {
    try {
      return readCheckpoint<S>(candidate.path);
    } catch (err) {
      if (!(err instanceof CorruptCheckpointError)) throw err;
      const aside = `${candidate.path}.corrupt`;
      fs.renameSync(candidate.path, aside);
      warn(`${err.message}; moved it to ${path.basename(aside)} and falling back to the previous checkpoint`);
    }
  }
  return null;
}
