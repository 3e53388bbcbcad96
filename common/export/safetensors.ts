// safetensors (https://github.com/huggingface/safetensors): [u64 LE header length N][N bytes of JSON header,
// space-padded so the data starts 8-byte aligned][tensor bytes, contiguous, in header order].
// Header: { "__metadata__"?: {str: str}, "<name>": { dtype, shape, data_offsets: [begin, end) relative to the data } }
import fs from 'node:fs';
import { atomicWriteFile } from './files';
import { DTYPE_BYTES, numel, tensorBytes, tensorFromBytes, validateTensors, type ExportDtype, type NamedTensor } from './tensors';

const TO_ST: Record<ExportDtype, string> = { float32: 'F32', int32: 'I32', int64: 'I64' };
const FROM_ST: Record<string, ExportDtype> = { F32: 'float32', I32: 'int32', I64: 'int64' };
// The reference implementation refuses larger headers; so do we, so a corrupt length fails fast.
const MAX_HEADER_BYTES = 100_000_000;

interface HeaderEntry {
  dtype: string;
  shape: number[];
  data_offsets: [number, number];
}

export function encodeSafetensors(tensors: readonly NamedTensor[], metadata?: Record<string, string>): Buffer {
  validateTensors(tensors);
  const header: Record<string, HeaderEntry | Record<string, string>> = {};
  if (metadata && Object.keys(metadata).length > 0) {
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== 'string') throw new Error(`safetensors metadata "${k}" must be a string (got ${typeof v})`);
    }
    header.__metadata__ = { ...metadata };
  }
  let offset = 0;
  for (const t of tensors) {
    if (t.name === '__metadata__') throw new Error('"__metadata__" is reserved and cannot name a tensor');
    const bytes = numel(t.shape) * DTYPE_BYTES[t.dtype];
    header[t.name] = { dtype: TO_ST[t.dtype], shape: t.shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  const headerLen = Math.ceil(json.length / 8) * 8; // 8-byte prefix + aligned header => aligned data
  const out = Buffer.alloc(8 + headerLen + offset, 0x20);
  out.writeBigUInt64LE(BigInt(headerLen), 0);
  json.copy(out, 8);
  let at = 8 + headerLen;
  for (const t of tensors) at += tensorBytes(t).copy(out, at);
  return out;
}

export function writeSafetensors(path: string, tensors: readonly NamedTensor[], metadata?: Record<string, string>): void {
  atomicWriteFile(path, encodeSafetensors(tensors, metadata));
}

/** Parses and validates (offsets contiguous and covering the data exactly, sizes matching shapes); tensors in file order. */
export function decodeSafetensors(buf: Buffer): { tensors: NamedTensor[]; metadata: Record<string, string> } {
  if (buf.length < 8) throw new Error(`safetensors: file is ${buf.length} bytes, shorter than the 8-byte header length`);
  const headerLen = buf.readBigUInt64LE(0);
  if (headerLen > BigInt(Math.min(MAX_HEADER_BYTES, buf.length - 8)))
    throw new Error(`safetensors: header length ${headerLen} exceeds file size or limit`);
  const headerText = buf.subarray(8, 8 + Number(headerLen)).toString('utf8');
  if (!headerText.startsWith('{')) throw new Error('safetensors: header is not a JSON object');
  let header: Record<string, unknown>;
  try {
    header = JSON.parse(headerText) as Record<string, unknown>;
  } catch (e) {
    throw new Error(`safetensors: header is not valid JSON (${(e as Error).message})`);
  }
  const dataStart = 8 + Number(headerLen);
  const metadata: Record<string, string> = {};
  const entries: Array<{ name: string; e: HeaderEntry }> = [];
  for (const [name, value] of Object.entries(header)) {
    if (name === '__metadata__') {
      for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
        if (typeof v !== 'string') throw new Error(`safetensors: metadata "${k}" is not a string`);
        metadata[k] = v;
      }
      continue;
    }
    const e = value as Partial<HeaderEntry> | null;
    if (!e || typeof e.dtype !== 'string' || !Array.isArray(e.shape) || !Array.isArray(e.data_offsets) || e.data_offsets.length !== 2) {
      throw new Error(`safetensors: tensor "${name}" header entry needs dtype, shape and data_offsets`);
    }
    entries.push({ name, e: e as HeaderEntry });
  }
  entries.sort((a, b) => a.e.data_offsets[0] - b.e.data_offsets[0]);
  let expected = 0;
  const tensors = entries.map(({ name, e }) => {
    const dtype = FROM_ST[e.dtype];
    if (!dtype) throw new Error(`safetensors: tensor "${name}" has unsupported dtype ${e.dtype}`);
    const [begin, end] = e.data_offsets;
    if (begin !== expected)
      throw new Error(`safetensors: tensor "${name}" starts at ${begin}, expected ${expected} (data must be contiguous)`);
    if (end - begin !== numel(e.shape) * DTYPE_BYTES[dtype])
      throw new Error(`safetensors: tensor "${name}" byte range does not match shape ${JSON.stringify(e.shape)}`);
    if (dataStart + end > buf.length) throw new Error(`safetensors: tensor "${name}" runs past the end of the file (truncated?)`);
    expected = end;
    return tensorFromBytes(name, dtype, e.shape, buf.subarray(dataStart + begin, dataStart + end));
  });
  if (dataStart + expected !== buf.length)
    throw new Error(`safetensors: data is ${buf.length - dataStart} bytes but tensors cover ${expected}`);
  return { tensors, metadata };
}

export function readSafetensors(path: string): { tensors: NamedTensor[]; metadata: Record<string, string> } {
  return decodeSafetensors(fs.readFileSync(path));
}
