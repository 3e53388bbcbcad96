// PyTorch state-dict checkpoints in the zip format torch.save writes by default (PyTorch >= 1.6),
// loadable with torch.load(path, weights_only=True). Layout, mirroring torch/serialization.py `_save`:
//   <archive>/data.pkl                 pickle (protocol 2) of OrderedDict name -> tensor, where each tensor is
//                                      torch._utils._rebuild_tensor_v2(persistent_load(('storage', torch.FloatStorage,
//                                      '<key>', 'cpu', numel)), offset, size, stride, requires_grad, OrderedDict())
//   <archive>/byteorder                "little"
//   <archive>/data/<key>               raw little-endian storage bytes, 64-byte aligned in the file
//   <archive>/version                  "3\n"
//   <archive>/.data/serialization_id   40 digits (here derived from the content, so output is reproducible)
// We deliberately omit `.format_version`: with it torch may compute storage offsets assuming miniz's exact
// layout (data descriptors after each record); without it torch reads each record's local header instead.
// The zip is "stored" (no compression) with real CRC-32s, sizes in the local headers and no data descriptors.
import crypto from 'node:crypto';
import fs from 'node:fs';
import nodePath from 'node:path';
import zlib from 'node:zlib';
import { atomicWriteFile } from './files';
import { DTYPE_BYTES, numel, tensorBytes, tensorFromBytes, validateTensors, type ExportDtype, type NamedTensor } from './tensors';

const STORAGE_CLASS: Record<ExportDtype, string> = { float32: 'FloatStorage', int32: 'IntStorage', int64: 'LongStorage' };
const STORAGE_DTYPE: Record<string, ExportDtype> = { FloatStorage: 'float32', IntStorage: 'int32', LongStorage: 'int64' };
const STORAGE_ALIGNMENT = 64; // torch aligns record data so storages can be mmapped
const U32_MAX = 0xffffffff;

// ---------------------------------------------------------------------------------------------------------
// zip (stored entries only)

interface ZipEntry {
  name: string;
  data: Buffer;
}

const DOS_DATE_1980_01_01 = (0 << 9) | (1 << 5) | 1; // fixed timestamp: identical input -> identical bytes

export function encodeZipStored(entries: readonly ZipEntry[]): Buffer {
  const parts: Buffer[] = [];
  const central: Buffer[] = [];
  let offset = 0;
  for (const { name, data } of entries) {
    const nameBytes = Buffer.from(name, 'utf8');
    const crc = zlib.crc32(data);
    // Pad with an extra field (id "FB", filled with 'Z', as torch's writer does) so the data lands aligned.
    let pad = (STORAGE_ALIGNMENT - ((offset + 30 + nameBytes.length) % STORAGE_ALIGNMENT)) % STORAGE_ALIGNMENT;
    if (pad > 0 && pad < 4) pad += STORAGE_ALIGNMENT; // an extra field needs at least its 4-byte header
    const extra = Buffer.alloc(pad, 'Z');
    if (pad > 0) {
      extra.writeUInt16LE(0x4246, 0);
      extra.writeUInt16LE(pad - 4, 2);
    }
    if (offset + 30 + nameBytes.length + pad + data.length > U32_MAX)
      throw new Error('torch zip: > 4 GiB needs zip64, which is not implemented');
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0); // local file header signature
    local.writeUInt16LE(20, 4); // version needed to extract: 2.0
    local.writeUInt16LE(0x0800, 6); // flags: names are UTF-8
    local.writeUInt16LE(0, 8); // method: stored
    local.writeUInt16LE(0, 10); // mod time
    local.writeUInt16LE(DOS_DATE_1980_01_01, 12); // mod date
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(data.length, 18); // compressed size
    local.writeUInt32LE(data.length, 22); // uncompressed size
    local.writeUInt16LE(nameBytes.length, 26);
    local.writeUInt16LE(pad, 28);
    const cd = Buffer.alloc(46);
    cd.writeUInt32LE(0x02014b50, 0); // central directory header signature
    cd.writeUInt16LE(20, 4); // version made by
    local.copy(cd, 6, 4, 28); // version needed .. name length: same as the local header
    cd.writeUInt16LE(0, 30); // extra length (padding only matters locally)
    // comment length, disk number, internal/external attributes: 0
    cd.writeUInt32LE(offset, 42); // local header offset
    central.push(cd, nameBytes);
    parts.push(local, nameBytes, extra, data);
    offset += 30 + nameBytes.length + pad + data.length;
  }
  const cdBytes = Buffer.concat(central);
  const eocd = Buffer.alloc(22);
  eocd.writeUInt32LE(0x06054b50, 0); // end of central directory signature
  eocd.writeUInt16LE(entries.length, 8); // entries on this disk
  eocd.writeUInt16LE(entries.length, 10); // entries total
  eocd.writeUInt32LE(cdBytes.length, 12);
  eocd.writeUInt32LE(offset, 16); // central directory offset
  return Buffer.concat([...parts, cdBytes, eocd]);
}

export interface ZipRecord {
  name: string;
  data: Buffer;
  dataOffset: number;
  crc32: number;
}

/** Reads a zip of stored entries via its central directory; verifies every CRC-32. */
export function decodeZipStored(buf: Buffer): ZipRecord[] {
  let eocd = -1;
  for (let i = buf.length - 22; i >= Math.max(0, buf.length - 22 - 0xffff); i--) {
    if (buf.readUInt32LE(i) === 0x06054b50) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) throw new Error('zip: end of central directory not found (truncated or not a zip)');
  const count = buf.readUInt16LE(eocd + 10);
  let p = buf.readUInt32LE(eocd + 16);
  if (count === 0xffff || p === U32_MAX) throw new Error('zip: zip64 archives are not supported');
  const records: ZipRecord[] = [];
  for (let i = 0; i < count; i++) {
    if (p + 46 > buf.length || buf.readUInt32LE(p) !== 0x02014b50) throw new Error(`zip: bad central directory entry ${i}`);
    const method = buf.readUInt16LE(p + 10);
    const crc = buf.readUInt32LE(p + 16);
    const size = buf.readUInt32LE(p + 20);
    const nameLen = buf.readUInt16LE(p + 28);
    const skip = buf.readUInt16LE(p + 30) + buf.readUInt16LE(p + 32); // extra + comment
    const localAt = buf.readUInt32LE(p + 42);
    const name = buf.subarray(p + 46, p + 46 + nameLen).toString('utf8');
    p += 46 + nameLen + skip;
    if (method !== 0) throw new Error(`zip: ${name} is compressed (method ${method}); only stored entries are supported`);
    if (localAt + 30 > buf.length || buf.readUInt32LE(localAt) !== 0x04034b50) throw new Error(`zip: bad local header for ${name}`);
    const dataOffset = localAt + 30 + buf.readUInt16LE(localAt + 26) + buf.readUInt16LE(localAt + 28);
    if (dataOffset + size > buf.length) throw new Error(`zip: ${name} runs past the end of the file`);
    const data = buf.subarray(dataOffset, dataOffset + size);
    if (zlib.crc32(data) !== crc) throw new Error(`zip: CRC-32 mismatch in ${name} (file is corrupted)`);
    records.push({ name, data, dataOffset, crc32: crc });
  }
  return records;
}

// ---------------------------------------------------------------------------------------------------------
// pickle protocol 2: writer for exactly the state-dict shape above, reader for that plus torch.save's memo ops

const OP = {
  PROTO: 0x80,
  STOP: 0x2e,
  GLOBAL: 0x63,
  REDUCE: 0x52,
  MARK: 0x28,
  TUPLE: 0x74,
  TUPLE1: 0x85,
  TUPLE2: 0x86,
  TUPLE3: 0x87,
  EMPTY_TUPLE: 0x29,
  EMPTY_DICT: 0x7d,
  SETITEM: 0x73,
  SETITEMS: 0x75,
  BINUNICODE: 0x58,
  BININT: 0x4a,
  BININT1: 0x4b,
  BININT2: 0x4d,
  LONG1: 0x8a,
  NEWTRUE: 0x88,
  NEWFALSE: 0x89,
  NONE: 0x4e,
  BINPERSID: 0x51,
  BINPUT: 0x71,
  LONG_BINPUT: 0x72,
  BINGET: 0x68,
  LONG_BINGET: 0x6a,
} as const;

class PickleWriter {
  private chunks: Buffer[] = [];
  op(...bytes: number[]): this {
    this.chunks.push(Buffer.from(bytes));
    return this;
  }
  global(module: string, name: string): this {
    this.op(OP.GLOBAL).chunks.push(Buffer.from(`${module}\n${name}\n`, 'latin1'));
    return this;
  }
  str(s: string): this {
    const b = Buffer.from(s, 'utf8');
    const len = Buffer.alloc(4);
    len.writeUInt32LE(b.length);
    this.op(OP.BINUNICODE).chunks.push(len, b);
    return this;
  }
  int(n: number): this {
    if (!Number.isSafeInteger(n) || n < 0) throw new Error(`pickle: ${n} is not a non-negative safe integer`);
    if (n < 0x100) return this.op(OP.BININT1, n);
    if (n < 0x10000) return this.op(OP.BININT2, n & 0xff, n >> 8);
    const b = Buffer.alloc(8);
    if (n <= 0x7fffffff) {
      b.writeInt32LE(n);
      return this.op(OP.BININT, ...b.subarray(0, 4));
    }
    b.writeBigInt64LE(BigInt(n)); // LONG1: little-endian two's complement, 8 bytes is always enough here
    return this.op(OP.LONG1, 8, ...b);
  }
  intTuple(xs: readonly number[]): this {
    if (xs.length === 0) return this.op(OP.EMPTY_TUPLE);
    if (xs.length > 3) this.op(OP.MARK);
    for (const x of xs) this.int(x);
    return this.op(xs.length === 1 ? OP.TUPLE1 : xs.length === 2 ? OP.TUPLE2 : xs.length === 3 ? OP.TUPLE3 : OP.TUPLE);
  }
  emptyOrderedDict(): this {
    return this.global('collections', 'OrderedDict').op(OP.EMPTY_TUPLE, OP.REDUCE);
  }
  bytes(): Buffer {
    return Buffer.concat(this.chunks);
  }
}

/** Row-major strides: the layout of the bytes we store. */
function contiguousStrides(shape: readonly number[]): number[] {
  const strides = new Array<number>(shape.length);
  let s = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    strides[i] = s;
    s *= shape[i];
  }
  return strides;
}

function statePickle(tensors: readonly NamedTensor[]): Buffer {
  const w = new PickleWriter().op(OP.PROTO, 2).emptyOrderedDict().op(OP.MARK);
  tensors.forEach((t, key) => {
    w.str(t.name).global('torch._utils', '_rebuild_tensor_v2').op(OP.MARK);
    w.op(OP.MARK).str('storage').global('torch', STORAGE_CLASS[t.dtype]).str(String(key)).str('cpu').int(numel(t.shape)).op(OP.TUPLE);
    w.op(OP.BINPERSID);
    w.int(0).intTuple(t.shape).intTuple(contiguousStrides(t.shape)).op(OP.NEWFALSE).emptyOrderedDict(); // offset, size, stride, requires_grad, backward_hooks
    w.op(OP.TUPLE, OP.REDUCE);
  });
  return w.op(OP.SETITEMS, OP.STOP).bytes();
}

export function encodeTorchStateDict(tensors: readonly NamedTensor[], archiveName = 'archive'): Buffer {
  validateTensors(tensors);
  if (!/^[A-Za-z0-9_.-]+$/.test(archiveName)) throw new Error(`torch: archive name "${archiveName}" must be [A-Za-z0-9_.-]+`);
  const pkl = statePickle(tensors);
  const storages = tensors.map((t) => tensorBytes(t));
  // torch derives the id from record names and CRCs plus randomness; a content hash keeps our files reproducible.
  const idHash = crypto.createHash('sha256').update(pkl);
  for (const s of storages) idHash.update(s);
  const serializationId = (BigInt('0x' + idHash.digest('hex')) % 10n ** 40n).toString().padStart(40, '0');
  const a = archiveName;
  return encodeZipStored([
    { name: `${a}/data.pkl`, data: pkl },
    { name: `${a}/byteorder`, data: Buffer.from('little') },
    ...storages.map((data, key) => ({ name: `${a}/data/${key}`, data })),
    { name: `${a}/version`, data: Buffer.from('3\n') },
    { name: `${a}/.data/serialization_id`, data: Buffer.from(serializationId) },
  ]);
}

/** Archive name = file stem, as torch.save does ("model.pt" -> "model/..."). */
export function writeTorchStateDict(path: string, tensors: readonly NamedTensor[]): void {
  const stem = nodePath
    .basename(path)
    .replace(/\.[^.]*$/, '')
    .replace(/[^A-Za-z0-9_.-]/g, '_');
  atomicWriteFile(path, encodeTorchStateDict(tensors, stem || 'archive'));
}

class Global {
  constructor(
    readonly module: string,
    readonly name: string,
  ) {}
}
interface StorageRef {
  kind: 'storage';
  dtype: ExportDtype;
  key: string;
  numel: number;
}
interface TensorRef {
  kind: 'tensor';
  storage: StorageRef;
  offset: number;
  size: number[];
  stride: number[];
}
type PValue = string | number | boolean | null | Global | StorageRef | TensorRef | Map<PValue, PValue> | PValue[];
const MARK = Symbol('mark');

function asInts(v: PValue, what: string): number[] {
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'number')) throw new Error(`torch pickle: ${what} is not a tuple of ints`);
  return v;
}

/** A tiny pickle VM that understands state dicts of dense CPU tensors and nothing else. */
function unpickleStateDict(buf: Buffer): Map<PValue, PValue> {
  const stack: Array<PValue | typeof MARK> = [];
  const memo = new Map<number, PValue>();
  let p = 0;
  const pop = (): PValue => {
    const v = stack.pop();
    if (v === undefined || v === MARK) throw new Error('torch pickle: stack underflow');
    return v;
  };
  const popMark = (): PValue[] => {
    const at = stack.lastIndexOf(MARK);
    if (at < 0) throw new Error('torch pickle: missing MARK');
    const items = stack.splice(at) as PValue[];
    return items.slice(1);
  };
  const line = (): string => {
    const end = buf.indexOf(0x0a, p);
    const s = buf.subarray(p, end).toString('latin1');
    p = end + 1;
    return s;
  };
  const top = (): PValue => {
    const v = stack[stack.length - 1];
    if (v === undefined || v === MARK) throw new Error('torch pickle: nothing to memoize');
    return v;
  };
  const setItems = (kv: PValue[]): void => {
    const d = pop();
    if (!(d instanceof Map)) throw new Error('torch pickle: SETITEMS target is not a dict');
    for (let i = 0; i < kv.length; i += 2) d.set(kv[i], kv[i + 1]);
    stack.push(d);
  };
  for (;;) {
    if (p >= buf.length) throw new Error('torch pickle: ended without STOP');
    const op = buf[p++];
    switch (op) {
      case OP.PROTO:
        p++;
        break;
      case OP.STOP: {
        const result = pop();
        if (!(result instanceof Map)) throw new Error('torch pickle: top-level object is not a dict');
        return result;
      }
      case OP.GLOBAL: {
        const module = line();
        stack.push(new Global(module, line()));
        break;
      }
      case OP.MARK:
        stack.push(MARK);
        break;
      case OP.EMPTY_TUPLE:
        stack.push([]);
        break;
      case OP.TUPLE:
        stack.push(popMark());
        break;
      case OP.TUPLE1:
        stack.push([pop()]);
        break;
      case OP.TUPLE2: {
        const b = pop();
        stack.push([pop(), b]);
        break;
      }
      case OP.TUPLE3: {
        const c = pop();
        const b = pop();
        stack.push([pop(), b, c]);
        break;
      }
      case OP.EMPTY_DICT:
        stack.push(new Map());
        break;
      case OP.SETITEM: {
        const v = pop();
        setItems([pop(), v]);
        break;
      }
      case OP.SETITEMS:
        setItems(popMark());
        break;
      case OP.BINUNICODE: {
        const n = buf.readUInt32LE(p);
        stack.push(buf.subarray(p + 4, p + 4 + n).toString('utf8'));
        p += 4 + n;
        break;
      }
      case OP.BININT1:
        stack.push(buf[p]);
        p += 1;
        break;
      case OP.BININT2:
        stack.push(buf.readUInt16LE(p));
        p += 2;
        break;
      case OP.BININT:
        stack.push(buf.readInt32LE(p));
        p += 4;
        break;
      case OP.LONG1: {
        const n = buf[p];
        const bytes = Buffer.alloc(8, buf[p + n] & 0x80 ? 0xff : 0); // sign-extend to 8 bytes
        buf.copy(bytes, 0, p + 1, p + 1 + Math.min(n, 8));
        const v = bytes.readBigInt64LE();
        if (n > 8 || v > BigInt(Number.MAX_SAFE_INTEGER)) throw new Error('torch pickle: integer too large');
        stack.push(Number(v));
        p += 1 + n;
        break;
      }
      case OP.NEWTRUE:
        stack.push(true);
        break;
      case OP.NEWFALSE:
        stack.push(false);
        break;
      case OP.NONE:
        stack.push(null);
        break;
      case OP.BINPUT:
        memo.set(buf[p], top());
        p += 1;
        break;
      case OP.LONG_BINPUT:
        memo.set(buf.readUInt32LE(p), top());
        p += 4;
        break;
      case OP.BINGET:
      case OP.LONG_BINGET: {
        const idx = op === OP.BINGET ? buf[p] : buf.readUInt32LE(p);
        p += op === OP.BINGET ? 1 : 4;
        const v = memo.get(idx);
        if (v === undefined) throw new Error(`torch pickle: memo ${idx} unset`);
        stack.push(v);
        break;
      }
      case OP.BINPERSID: {
        const pid = pop();
        if (
          !Array.isArray(pid) ||
          pid[0] !== 'storage' ||
          !(pid[1] instanceof Global) ||
          typeof pid[2] !== 'string' ||
          typeof pid[4] !== 'number'
        ) {
          throw new Error('torch pickle: unexpected persistent id');
        }
        const dtype = pid[1].module === 'torch' ? STORAGE_DTYPE[pid[1].name] : undefined;
        if (!dtype) throw new Error(`torch pickle: unsupported storage ${pid[1].module}.${pid[1].name}`);
        if (pid[3] !== 'cpu') throw new Error(`torch pickle: storage location ${JSON.stringify(pid[3])} is not cpu`);
        stack.push({ kind: 'storage', dtype, key: pid[2], numel: pid[4] });
        break;
      }
      case OP.REDUCE: {
        const args = pop();
        const fn = pop();
        if (!(fn instanceof Global) || !Array.isArray(args)) throw new Error('torch pickle: REDUCE needs a global and a tuple');
        const qual = `${fn.module}.${fn.name}`;
        if (qual === 'collections.OrderedDict' && args.length === 0) stack.push(new Map());
        else if (qual === 'torch._utils._rebuild_tensor_v2') {
          const storage = args[0] as StorageRef;
          if (storage?.kind !== 'storage' || typeof args[1] !== 'number') throw new Error('torch pickle: bad _rebuild_tensor_v2 arguments');
          stack.push({ kind: 'tensor', storage, offset: args[1], size: asInts(args[2], 'size'), stride: asInts(args[3], 'stride') });
        } else throw new Error(`torch pickle: unsupported call ${qual}`);
        break;
      }
      default:
        throw new Error(`torch pickle: unsupported opcode 0x${op.toString(16)} at byte ${p - 1}`);
    }
  }
}

/** Reads a state dict written by encodeTorchStateDict or by torch.save(state_dict) (dense, contiguous, CPU). */
export function decodeTorchStateDict(buf: Buffer): NamedTensor[] {
  const records = new Map(decodeZipStored(buf).map((r) => [r.name, r.data]));
  const pklName = [...records.keys()].find((n) => /^[^/]+\/data\.pkl$/.test(n));
  if (!pklName) throw new Error('torch: no <archive>/data.pkl in zip');
  const prefix = pklName.slice(0, -'data.pkl'.length);
  const byteorder = records.get(`${prefix}byteorder`)?.toString();
  if (byteorder !== undefined && byteorder !== 'little') throw new Error(`torch: byteorder "${byteorder}" is not supported`);
  const out: NamedTensor[] = [];
  for (const [name, value] of unpickleStateDict(records.get(pklName)!)) {
    if (typeof name !== 'string' || typeof value !== 'object' || value === null || !('kind' in value) || value.kind !== 'tensor') {
      throw new Error(`torch: state dict entry ${JSON.stringify(name)} is not a tensor`);
    }
    const { storage, offset, size, stride } = value;
    const expected = contiguousStrides(size);
    if (!size.every((d, i) => d <= 1 || stride[i] === expected[i])) throw new Error(`torch: tensor "${name}" is not contiguous`);
    const bytes = records.get(`${prefix}data/${storage.key}`);
    if (!bytes) throw new Error(`torch: tensor "${name}": storage data/${storage.key} missing`);
    const w = DTYPE_BYTES[storage.dtype];
    if (bytes.length !== storage.numel * w)
      throw new Error(`torch: storage ${storage.key} has ${bytes.length} bytes, expected ${storage.numel * w}`);
    if (offset + numel(size) > storage.numel) throw new Error(`torch: tensor "${name}" runs past its storage`);
    out.push(tensorFromBytes(name, storage.dtype, size, bytes.subarray(offset * w, (offset + numel(size)) * w)));
  }
  return out;
}

export function readTorchStateDict(path: string): NamedTensor[] {
  return decodeTorchStateDict(fs.readFileSync(path));
}
