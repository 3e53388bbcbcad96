// Uncompressed ("stored") ZIP in the exact layout PyTorch's writer (miniz inside PyTorchStreamWriter)
// produces, so torch can compute storage offsets without reading headers (torch.load(mmap=True) and
// map_location="meta" rely on that). Per record:
//   local header (CRC and sizes zero, flag bit 3: they follow in a data descriptor)
//   name, extra field "FB" + u16 length + "Z"*length that pads the data start to 64 bytes
//   data, then a 16-byte data descriptor (only when the record is non-empty)
// followed by the central directory (which holds the real CRCs and sizes) and the end record.
// Zip64 is not implemented: every record and the whole archive must stay under 4 GiB.
import zlib from 'node:zlib';

export const TORCH_ALIGNMENT = 64;

const LOCAL_HEADER = 0x04034b50;
const DATA_DESCRIPTOR = 0x08074b50;
const CENTRAL_HEADER = 0x02014b50;
const END_OF_CENTRAL_DIR = 0x06054b50;
const LOCAL_HEADER_BYTES = 30;
const CENTRAL_HEADER_BYTES = 46;
const END_BYTES = 22;
const FLAG_UTF8 = 0x0800;
const FLAG_DATA_DESCRIPTOR = 0x0008;
const U32_MAX = 0xffffffff;

export interface ZipRecord {
  name: string;
  data: Buffer;
}

export interface ZipRecordRead extends ZipRecord {
  /** Absolute file offset of the record's first data byte (to check alignment). */
  dataOffset: number;
  crc32: number;
}

export function encodeStoredZip(records: readonly ZipRecord[], alignment = TORCH_ALIGNMENT): Buffer {
  const parts: Buffer[] = [];
  const central: Buffer[] = [];
  let cursor = 0;
  for (const { name, data } of records) {
    const nameBytes = Buffer.from(name, 'utf8');
    // Same arithmetic as torch's getPadding: data starts after header, name and the 4-byte FB header.
    const unpadded = cursor + LOCAL_HEADER_BYTES + nameBytes.length + 4;
    const padding = (alignment - (unpadded % alignment)) % alignment;
    const crc = zlib.crc32(data);
    const flags = FLAG_UTF8 | (data.length > 0 ? FLAG_DATA_DESCRIPTOR : 0);
    if (unpadded + padding + data.length + 16 >= U32_MAX) throw new Error('zip: archives over 4 GiB need zip64, which is not implemented');

    const local = Buffer.alloc(LOCAL_HEADER_BYTES);
    local.writeUInt32LE(LOCAL_HEADER, 0);
    local.writeUInt16LE(0, 4); // version needed: torch writes 0
    local.writeUInt16LE(flags, 6);
    // method 0 (stored), time/date 0, crc/sizes 0 (in the descriptor) are already zero
    local.writeUInt16LE(nameBytes.length, 26);
    local.writeUInt16LE(4 + padding, 28);
    const extra = Buffer.alloc(4 + padding, 'Z');
    extra.write('FB', 0, 'latin1');
    extra.writeUInt16LE(padding, 2);
    parts.push(local, nameBytes, extra, data);
    if (data.length > 0) {
      const descriptor = Buffer.alloc(16);
      descriptor.writeUInt32LE(DATA_DESCRIPTOR, 0);
      descriptor.writeUInt32LE(crc, 4);
      descriptor.writeUInt32LE(data.length, 8);
      descriptor.writeUInt32LE(data.length, 12);
      parts.push(descriptor);
    }

    const header = Buffer.alloc(CENTRAL_HEADER_BYTES);
    header.writeUInt32LE(CENTRAL_HEADER, 0);
    header.writeUInt16LE(flags, 8);
    header.writeUInt32LE(crc, 16);
    header.writeUInt32LE(data.length, 20);
    header.writeUInt32LE(data.length, 24);
    header.writeUInt16LE(nameBytes.length, 28);
    header.writeUInt32LE(cursor, 42);
    central.push(header, nameBytes);

    cursor += LOCAL_HEADER_BYTES + nameBytes.length + extra.length + data.length + (data.length > 0 ? 16 : 0);
  }
  const centralBytes = central.reduce((n, b) => n + b.length, 0);
  if (records.length > 0xffff) throw new Error('zip: more than 65535 records need zip64, which is not implemented');
  const end = Buffer.alloc(END_BYTES);
  end.writeUInt32LE(END_OF_CENTRAL_DIR, 0);
  end.writeUInt16LE(records.length, 8);
  end.writeUInt16LE(records.length, 10);
  end.writeUInt32LE(centralBytes, 12);
  end.writeUInt32LE(cursor, 16);
  return Buffer.concat([...parts, ...central, end]);
}

/** Read a stored zip via its central directory, checking every CRC-32 and local header. */
export function decodeStoredZip(buf: Buffer): ZipRecordRead[] {
  // The end record has no comment in our files, but scan back over a possible one (max 64 KiB).
  let endAt = -1;
  for (let i = buf.length - END_BYTES; i >= Math.max(0, buf.length - END_BYTES - 0xffff); i--) {
    if (buf.readUInt32LE(i) === END_OF_CENTRAL_DIR) {
      endAt = i;
      break;
    }
  }
  if (endAt < 0) throw new Error('zip: end of central directory not found (truncated or not a zip file)');
  const count = buf.readUInt16LE(endAt + 10);
  const centralOffset = buf.readUInt32LE(endAt + 16);
  if (centralOffset === U32_MAX || count === 0xffff) throw new Error('zip: zip64 archives are not supported');

  const records: ZipRecordRead[] = [];
  let at = centralOffset;
  for (let i = 0; i < count; i++) {
    if (at + CENTRAL_HEADER_BYTES > buf.length || buf.readUInt32LE(at) !== CENTRAL_HEADER) throw new Error(`zip: central directory entry ${i} is corrupt`);
    const method = buf.readUInt16LE(at + 10);
    const crc = buf.readUInt32LE(at + 16);
    const compressedSize = buf.readUInt32LE(at + 20);
    const size = buf.readUInt32LE(at + 24);
    const nameLength = buf.readUInt16LE(at + 28);
    const centralExtra = buf.readUInt16LE(at + 30);
    const comment = buf.readUInt16LE(at + 32);
    const localOffset = buf.readUInt32LE(at + 42);
    const name = buf.subarray(at + CENTRAL_HEADER_BYTES, at + CENTRAL_HEADER_BYTES + nameLength).toString('utf8');
    at += CENTRAL_HEADER_BYTES + nameLength + centralExtra + comment;

    if (method !== 0 || compressedSize !== size) throw new Error(`zip: "${name}" is compressed (method ${method}); only stored records are supported`);
    if (localOffset + LOCAL_HEADER_BYTES > buf.length || buf.readUInt32LE(localOffset) !== LOCAL_HEADER) throw new Error(`zip: local header of "${name}" is corrupt`);
    const localName = buf.subarray(localOffset + LOCAL_HEADER_BYTES, localOffset + LOCAL_HEADER_BYTES + buf.readUInt16LE(localOffset + 26)).toString('utf8');
    if (localName !== name) throw new Error(`zip: local header names "${localName}" but the central directory says "${name}"`);
    const dataOffset = localOffset + LOCAL_HEADER_BYTES + buf.readUInt16LE(localOffset + 26) + buf.readUInt16LE(localOffset + 28);
    if (dataOffset + size > buf.length) throw new Error(`zip: "${name}" runs past the end of the file`);
    const data = buf.subarray(dataOffset, dataOffset + size);
    const actual = zlib.crc32(data);
    if (actual !== crc) throw new Error(`zip: CRC-32 mismatch in "${name}" (stored ${crc.toString(16)}, computed ${actual.toString(16)}): the file is corrupt`);
    records.push({ name, data, dataOffset, crc32: crc });
  }
  return records;
}
