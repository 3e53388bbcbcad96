// PyTorch state dict in the zip format torch.save has written by default since 1.6, readable with
// torch.load(path, weights_only=True). Archive "<name>/" holds, in torch's own record order:
//   data.pkl            pickle of OrderedDict{name: _rebuild_tensor_v2(storage, offset, size, stride, False, OrderedDict())}
//                       where storage = persistent_load(('storage', torch.FloatStorage, '<key>', 'cpu', numel))
//   .format_version     "1": storages are numbered in the order they are written
//   .storage_alignment  "64"
//   byteorder           "little"
//   data/<key>          raw little-endian tensor bytes, 64-byte aligned in the file
//   version             "3\n" (the zip format version torch writes)
//   .data/serialization_id
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { atomicWriteFile } from './files';
import { call, dumpPickle, global, loadPickle, orderedDict, persistent, type PickleValue, tuple } from './pickle';
import { type ExportDtype, type NamedTensor, numelOf, tensorBytes, tensorFromBytes, validateTensors } from './tensors';
import { decodeStoredZip, encodeStoredZip, TORCH_ALIGNMENT, type ZipRecord } from './zip';

const STORAGE_CLASS: Record<ExportDtype, string> = { float32: 'FloatStorage', int32: 'IntStorage', int64: 'LongStorage' };
const DTYPE_OF_STORAGE: Record<string, ExportDtype> = { FloatStorage: 'float32', IntStorage: 'int32', LongStorage: 'int64' };

/** Row-major strides, the layout of every tensor we write. */
function contiguousStrides(shape: readonly number[]): number[] {
  const strides = new Array<number>(shape.length);
  let step = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    strides[i] = step;
    step *= shape[i];
  }
  return strides;
}

/** torch.save names the archive after the file; keep that but restrict it to a safe zip path segment. */
function archiveNameFor(file: string): string {
  const stem = path.basename(file).replace(/\.[^.]*$/, '').replace(/[^A-Za-z0-9_.-]/g, '_');
  return stem || 'archive';
}

export function encodeTorchStateDict(tensors: readonly NamedTensor[], archiveName = 'archive'): Buffer {
  validateTensors(tensors);
  const rebuild = global('torch._utils', '_rebuild_tensor_v2');
  const entries = tensors.map((t, key): [PickleValue, PickleValue] => {
    const storage = persistent(tuple('storage', global('torch', STORAGE_CLASS[t.dtype]), String(key), 'cpu', numelOf(t.shape)));
    // requires_grad False and empty backward hooks, as for any saved parameter
    return [t.name, call(rebuild, storage, 0, tuple(...t.shape), tuple(...contiguousStrides(t.shape)), false, orderedDict())];
  });
  const records: ZipRecord[] = [
    { name: 'data.pkl', data: dumpPickle(orderedDict(entries)) },
    { name: '.format_version', data: Buffer.from('1') },
    { name: '.storage_alignment', data: Buffer.from(String(TORCH_ALIGNMENT)) },
    { name: 'byteorder', data: Buffer.from('little') },
    ...tensors.map((t, key) => ({ name: `data/${key}`, data: tensorBytes(t) })),
    { name: 'version', data: Buffer.from('3\n') },
  ];
  // torch uses a random 40-digit id; deriving it from the content keeps equal weights byte-identical.
  const digest = crypto.createHash('sha256');
  for (const r of records) digest.update(r.name).update(r.data);
  const serializationId = BigInt(`0x${digest.digest('hex')}`).toString().padStart(40, '0').slice(-40);
  records.push({ name: '.data/serialization_id', data: Buffer.from(serializationId) });
  return encodeStoredZip(records.map((r) => ({ name: `${archiveName}/${r.name}`, data: r.data })));
}

export function writeTorchStateDict(file: string, tensors: readonly NamedTensor[]): void {
  atomicWriteFile(file, encodeTorchStateDict(tensors, archiveNameFor(file)));
}

function fail(what: string): never {
  throw new Error(`torch state dict: ${what}`);
}

function asTuple(v: PickleValue, what: string): PickleValue[] {
  if (v === null || typeof v !== 'object' || v.kind !== 'tuple') fail(`${what} is not a tuple`);
  return v.items;
}

function asInts(v: PickleValue, what: string): number[] {
  return asTuple(v, what).map((x) => (typeof x === 'number' ? x : fail(`${what} holds a non-integer`)));
}

/** Decode the state dicts we write (and plain contiguous ones from torch.save); CRCs are checked. */
export function decodeTorchStateDict(buf: Buffer): NamedTensor[] {
  const records = decodeStoredZip(buf);
  if (records.length === 0) fail('empty zip');
  const prefix = records[0].name.slice(0, records[0].name.indexOf('/') + 1);
  if (!prefix) fail(`first record "${records[0].name}" is not inside an archive folder`);
  const byName = new Map(records.map((r) => [r.name.slice(prefix.length), r.data]));
  const byteorder = byName.get('byteorder')?.toString();
  if (byteorder !== undefined && byteorder !== 'little') fail(`byteorder "${byteorder}" is not supported`);
  const pkl = byName.get('data.pkl') ?? fail('data.pkl is missing');

  const root = loadPickle(pkl);
  if (root === null || typeof root !== 'object' || root.kind !== 'dict') fail('data.pkl does not hold a dict');
  return root.entries.map(([name, value]) => {
    if (typeof name !== 'string') fail('a key is not a string');
    if (value === null || typeof value !== 'object' || value.kind !== 'call') fail(`"${name}" is not a tensor`);
    const fn = value.fn;
    if (fn === null || typeof fn !== 'object' || fn.kind !== 'global' || `${fn.module}.${fn.name}` !== 'torch._utils._rebuild_tensor_v2') {
      fail(`"${name}" is not built by torch._utils._rebuild_tensor_v2`);
    }
    const [storageRef, offset, sizeV, strideV] = value.args;
    if (storageRef === null || typeof storageRef !== 'object' || storageRef.kind !== 'persistent') fail(`"${name}" has no persistent storage`);
    const [tag, storageClass, key, , storageNumel] = asTuple(storageRef.id, `"${name}" storage id`);
    const dtype = storageClass !== null && typeof storageClass === 'object' && storageClass.kind === 'global' ? DTYPE_OF_STORAGE[storageClass.name] : undefined;
    if (tag !== 'storage' || !dtype || typeof key !== 'string' || typeof storageNumel !== 'number' || typeof offset !== 'number') {
      fail(`"${name}" has an unsupported storage ${JSON.stringify(storageRef.id)}`);
    }
    const shape = asInts(sizeV, `"${name}" size`);
    const stride = asInts(strideV, `"${name}" stride`);
    const expected = contiguousStrides(shape);
    if (stride.length !== shape.length || shape.some((d, i) => d > 1 && stride[i] !== expected[i])) fail(`"${name}" is not contiguous (stride ${stride}); this reader handles contiguous tensors only`);
    const storage = byName.get(`data/${key}`) ?? fail(`storage data/${key} for "${name}" is missing`);
    const itemBytes = dtype === 'int64' ? 8 : 4;
    if (storage.length !== storageNumel * itemBytes) fail(`storage data/${key} has ${storage.length} bytes, expected ${storageNumel} x ${itemBytes}`);
    const begin = offset * itemBytes;
    const end = begin + numelOf(shape) * itemBytes;
    if (end > storage.length) fail(`"${name}" reads past the end of storage data/${key}`);
    return tensorFromBytes(name, dtype, shape, storage.subarray(begin, end));
  });
}

export function readTorchStateDict(file: string): NamedTensor[] {
  return decodeTorchStateDict(fs.readFileSync(file));
}
