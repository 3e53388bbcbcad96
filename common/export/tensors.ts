// The one in-memory tensor type every export format reads and writes: a name, a row-major shape
// and a flat typed array. Byte conversion lives here so every format agrees on it.
import os from 'node:os';

export type ExportDtype = 'float32' | 'int32' | 'int64';

export interface NamedTensor {
  name: string; // unique within one file, e.g. "blocks.0.attn.qkv.weight"
  shape: number[]; // row-major; [] is a scalar
  dtype: ExportDtype;
  data: Float32Array | Int32Array | BigInt64Array; // numel(shape) elements, dtype-matching array type
}

/** Bytes per element of each dtype. */
export const DTYPE_BYTES: Record<ExportDtype, number> = { float32: 4, int32: 4, int64: 8 };

// Every format we write is little-endian on disk; we reinterpret typed-array memory directly.
if (os.endianness() !== 'LE') throw new Error('common/export assumes a little-endian host');

export function numel(shape: readonly number[]): number {
  return shape.reduce((n, d) => n * d, 1);
}

// By tag, not instanceof: arrays made by a native addon (tfjs-node's dataSync) belong to the main realm,
// which is not the realm of the code checking them under a sandbox (jest, vm).
const ARRAY_TAG = { float32: '[object Float32Array]', int32: '[object Int32Array]', int64: '[object BigInt64Array]' } as const;

function arrayMatchesDtype(t: NamedTensor): boolean {
  return Object.prototype.toString.call(t.data) === ARRAY_TAG[t.dtype];
}

/** Throws with the tensor's name on the first problem: empty/duplicate name, bad shape, dtype/array mismatch, wrong length. */
export function validateTensors(tensors: readonly NamedTensor[]): void {
  const seen = new Set<string>();
  for (const t of tensors) {
    if (typeof t.name !== 'string' || t.name.length === 0) throw new Error('tensor name must be a non-empty string');
    if (seen.has(t.name)) throw new Error(`duplicate tensor name "${t.name}"`);
    seen.add(t.name);
    if (!Array.isArray(t.shape) || !t.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      throw new Error(`tensor "${t.name}": shape ${JSON.stringify(t.shape)} must be non-negative integers`);
    }
    if (!(t.dtype in DTYPE_BYTES)) throw new Error(`tensor "${t.name}": unsupported dtype "${String(t.dtype)}"`);
    if (!arrayMatchesDtype(t)) throw new Error(`tensor "${t.name}": data is ${t.data.constructor.name}, not a ${t.dtype} array`);
    if (t.data.length !== numel(t.shape)) {
      throw new Error(`tensor "${t.name}": shape ${JSON.stringify(t.shape)} needs ${numel(t.shape)} elements, data has ${t.data.length}`);
    }
  }
}

/** A zero-copy little-endian byte view of the tensor's data. */
export function tensorBytes(t: NamedTensor): Buffer {
  return Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength);
}

/** Builds a tensor from little-endian bytes; copies, so the result is aligned and owns its memory. */
export function tensorFromBytes(name: string, dtype: ExportDtype, shape: number[], bytes: Uint8Array): NamedTensor {
  const n = numel(shape);
  if (bytes.byteLength !== n * DTYPE_BYTES[dtype]) {
    throw new Error(
      `tensor "${name}": ${bytes.byteLength} bytes for ${dtype} shape ${JSON.stringify(shape)} (expected ${n * DTYPE_BYTES[dtype]})`,
    );
  }
  const copy = new Uint8Array(bytes).buffer; // fresh ArrayBuffer at offset 0: always element-aligned
  const data = dtype === 'float32' ? new Float32Array(copy) : dtype === 'int32' ? new Int32Array(copy) : new BigInt64Array(copy);
  return { name, shape: [...shape], dtype, data };
}

/** Bitwise equality (NaN payloads and -0 included): the test "these two files hold the same weights". */
export function tensorsEqual(a: NamedTensor, b: NamedTensor): boolean {
  return (
    a.name === b.name &&
    a.dtype === b.dtype &&
    a.shape.length === b.shape.length &&
    a.shape.every((d, i) => d === b.shape[i]) &&
    tensorBytes(a).equals(tensorBytes(b))
  );
}
