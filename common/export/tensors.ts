// The one tensor shape every export format reads and writes: a name, a shape, a dtype and a flat
// row-major typed array. Formats store raw little-endian bytes, so conversion is a view, not a copy.
import os from 'node:os';

export type ExportDtype = 'float32' | 'int32' | 'int64';

export interface NamedTensor {
  name: string;
  shape: number[];
  dtype: ExportDtype;
  data: Float32Array | Int32Array | BigInt64Array;
}

export const BYTES_PER_ELEMENT: Record<ExportDtype, number> = { float32: 4, int32: 4, int64: 8 };

// Every format here is little-endian on disk; typed arrays use host order, so a big-endian host
// would silently write swapped bytes. Node only ships for little-endian targets today, but check once.
if (os.endianness() !== 'LE') throw new Error('common/export assumes a little-endian host');

export function numelOf(shape: readonly number[]): number {
  return shape.reduce((n, d) => n * d, 1);
}

/** Throws naming the tensor when shape, dtype and data disagree; every writer calls this first. */
export function validateTensor(t: NamedTensor): void {
  if (typeof t.name !== 'string' || t.name.length === 0) throw new Error('tensor name must be a non-empty string');
  if (!Array.isArray(t.shape) || !t.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    throw new Error(`tensor "${t.name}": shape ${JSON.stringify(t.shape)} must be non-negative integers`);
  }
  const expected = { float32: Float32Array, int32: Int32Array, int64: BigInt64Array }[t.dtype];
  if (!expected) throw new Error(`tensor "${t.name}": unsupported dtype "${String(t.dtype)}"`);
  if (!(t.data instanceof expected)) throw new Error(`tensor "${t.name}": dtype ${t.dtype} needs a ${expected.name}, got ${t.data?.constructor?.name}`);
  if (t.data.length !== numelOf(t.shape)) {
    throw new Error(`tensor "${t.name}": shape [${t.shape.join(', ')}] holds ${numelOf(t.shape)} values but data has ${t.data.length}`);
  }
}

/** Validate a whole set: formats key tensors by name, so a duplicate would silently drop one. */
export function validateTensors(tensors: readonly NamedTensor[]): void {
  const seen = new Set<string>();
  for (const t of tensors) {
    validateTensor(t);
    if (seen.has(t.name)) throw new Error(`duplicate tensor name "${t.name}"`);
    seen.add(t.name);
  }
}

/** The tensor's bytes as stored on disk (a view over its data, no copy). */
export function tensorBytes(t: NamedTensor): Buffer {
  return Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength);
}

/** Copy bytes into a fresh, aligned typed array (file offsets need not be element-aligned). */
export function tensorFromBytes(name: string, dtype: ExportDtype, shape: number[], bytes: Uint8Array): NamedTensor {
  const numel = numelOf(shape);
  if (bytes.byteLength !== numel * BYTES_PER_ELEMENT[dtype]) {
    throw new Error(`tensor "${name}": ${bytes.byteLength} bytes do not fit ${dtype}[${shape.join(', ')}]`);
  }
  const copy = new Uint8Array(bytes); // own, aligned buffer
  const data =
    dtype === 'float32' ? new Float32Array(copy.buffer) : dtype === 'int32' ? new Int32Array(copy.buffer) : new BigInt64Array(copy.buffer);
  return { name, shape: [...shape], dtype, data };
}
