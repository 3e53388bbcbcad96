// safetensors (https://github.com/huggingface/safetensors): u64 LE header length N, N bytes of JSON
// {name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__"?: {string: string}} padded with
// spaces so the data starts 8-byte aligned, then every tensor's bytes back to back (offsets are
// relative to the data start, and the tensors must tile it with no gaps - readers enforce that).
import fs from 'node:fs';
import { atomicWriteFile } from './files';
import { BYTES_PER_ELEMENT, type ExportDtype, type NamedTensor, numelOf, tensorBytes, tensorFromBytes, validateTensors } from './tensors';

const CODE: Record<ExportDtype, string> = { float32: 'F32', int32: 'I32', int64: 'I64' };
const DTYPE_OF_CODE: Record<string, ExportDtype> = { F32: 'float32', I32: 'int32', I64: 'int64' };
const METADATA_KEY = '__metadata__';
// The reference implementation refuses larger headers; refusing them here too keeps files portable.
const MAX_HEADER_BYTES = 100_000_000;

interface HeaderEntry {
  dtype: string;
  shape: number[];
  data_offsets: [number, number];
}

export interface SafetensorsContent {
  tensors: NamedTensor[];
  metadata: Record<string, string>;
}

export function encodeSafetensors(tensors: readonly NamedTensor[], metadata?: Record<string, string>): Buffer {
  validateTensors(tensors);
  const header: Record<string, unknown> = {};
  if (metadata) {
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== 'string') throw new Error(`safetensors metadata "${k}" must be a string (got ${typeof v})`);
    }
    header[METADATA_KEY] = metadata;
  }
  let offset = 0;
  for (const t of tensors) {
    if (t.name === METADATA_KEY) throw new Error(`"${METADATA_KEY}" is reserved and cannot name a tensor`);
    const end = offset + t.data.byteLength;
    header[t.name] = { dtype: CODE[t.dtype], shape: t.shape, data_offsets: [offset, end] } satisfies HeaderEntry;
    offset = end;
  }
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  const headerLength = Math.ceil(json.length / 8) * 8;
  const out = Buffer.alloc(8 + headerLength + offset, 0x20); // 0x20: the spaces that pad the header
  out.writeBigUInt64LE(BigInt(headerLength), 0);
  json.copy(out, 8);
  let cursor = 8 + headerLength;
  for (const t of tensors) cursor += tensorBytes(t).copy(out, cursor);
  return out;
}

/** Parse and check a safetensors buffer; tensors come back in file (data offset) order. */
export function decodeSafetensors(buf: Buffer): SafetensorsContent {
  if (buf.length < 8) throw new Error(`safetensors: ${buf.length} bytes is too short for a header`);
  const headerLength = buf.readBigUInt64LE(0);
  if (headerLength > BigInt(Math.min(MAX_HEADER_BYTES, buf.length - 8))) {
    throw new Error(`safetensors: header length ${headerLength} does not fit in a ${buf.length}-byte file`);
  }
  const dataStart = 8 + Number(headerLength);
  let header: Record<string, unknown>;
  try {
    header = JSON.parse(buf.subarray(8, dataStart).toString('utf8')) as Record<string, unknown>;
  } catch (err) {
    throw new Error(`safetensors: header is not valid JSON (${(err as Error).message})`);
  }
  if (header === null || typeof header !== 'object' || Array.isArray(header)) throw new Error('safetensors: header is not a JSON object');

  const metadata: Record<string, string> = {};
  const entries: Array<{ name: string; entry: HeaderEntry }> = [];
  for (const [name, value] of Object.entries(header)) {
    if (name === METADATA_KEY) {
      for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
        if (typeof v !== 'string') throw new Error(`safetensors: metadata "${k}" is not a string`);
        metadata[k] = v;
      }
    } else {
      entries.push({ name, entry: value as HeaderEntry });
    }
  }
  entries.sort((a, b) => a.entry.data_offsets?.[0] - b.entry.data_offsets?.[0] || a.entry.data_offsets?.[1] - b.entry.data_offsets?.[1]);

  const dataLength = buf.length - dataStart;
  let expectedBegin = 0;
  const tensors = entries.map(({ name, entry }) => {
    const dtype = DTYPE_OF_CODE[entry?.dtype];
    if (!dtype) throw new Error(`safetensors: tensor "${name}" has unsupported dtype ${JSON.stringify(entry?.dtype)}`);
    const [begin, end] = entry.data_offsets ?? [];
    if (begin !== expectedBegin || !Number.isSafeInteger(end) || end > dataLength) {
      throw new Error(`safetensors: tensor "${name}" data_offsets ${JSON.stringify(entry.data_offsets)} leave a gap, overlap or overrun (${dataLength} data bytes)`);
    }
    if (!Array.isArray(entry.shape) || (end - begin) !== numelOf(entry.shape) * BYTES_PER_ELEMENT[dtype]) {
      throw new Error(`safetensors: tensor "${name}" shape ${JSON.stringify(entry.shape)} does not match its ${end - begin} bytes`);
    }
    expectedBegin = end;
    return tensorFromBytes(name, dtype, entry.shape, buf.subarray(dataStart + begin, dataStart + end));
  });
  if (expectedBegin !== dataLength) throw new Error(`safetensors: ${dataLength - expectedBegin} trailing bytes after the last tensor`);
  return { tensors, metadata };
}

export function writeSafetensors(file: string, tensors: readonly NamedTensor[], metadata?: Record<string, string>): void {
  atomicWriteFile(file, encodeSafetensors(tensors, metadata));
}

export function readSafetensors(file: string): SafetensorsContent {
  return decodeSafetensors(fs.readFileSync(file));
}
