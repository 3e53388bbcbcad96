// Extracts selected members of a zip archive (a Python wheel) by streaming them through zlib, so a
// 1 GB shared library inside a wheel never has to sit in memory and no `unzip`/python is needed.
// Handles stored and deflated members and zip64 sizes/offsets (wheels over 4 GB or with >65535 files).
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const zlib = require('node:zlib');
const { pipeline } = require('node:stream/promises');

function readAt(fd, position, length) {
  const buf = Buffer.alloc(length);
  let done = 0;
  while (done < length) {
    const n = fs.readSync(fd, buf, done, length - done, position + done);
    if (n === 0) throw new Error('unexpected end of zip file');
    done += n;
  }
  return buf;
}

/** Central directory entries: { name, method, compressedSize, size, localHeaderOffset }. */
function listEntries(file) {
  const fd = fs.openSync(file, 'r');
  try {
    const { size } = fs.fstatSync(fd);
    const tailLen = Math.min(size, 65557);
    const tail = readAt(fd, size - tailLen, tailLen);
    let eocd = -1;
    for (let i = tailLen - 22; i >= 0; i--)
      if (tail.readUInt32LE(i) === 0x06054b50) {
        eocd = i;
        break;
      }
    if (eocd < 0) throw new Error(`${file} is not a zip file (no end-of-central-directory record)`);
    let count = tail.readUInt16LE(eocd + 10);
    let cdSize = tail.readUInt32LE(eocd + 12);
    let cdOffset = tail.readUInt32LE(eocd + 16);
    if (count === 0xffff || cdSize === 0xffffffff || cdOffset === 0xffffffff) {
      const locator = eocd - 20;
      if (locator < 0 || tail.readUInt32LE(locator) !== 0x07064b50) throw new Error(`${file}: zip64 locator missing`);
      const rec = readAt(fd, Number(tail.readBigUInt64LE(locator + 8)), 56);
      if (rec.readUInt32LE(0) !== 0x06064b50) throw new Error(`${file}: zip64 end record missing`);
      count = Number(rec.readBigUInt64LE(32));
      cdSize = Number(rec.readBigUInt64LE(40));
      cdOffset = Number(rec.readBigUInt64LE(48));
    }
    const cd = readAt(fd, cdOffset, cdSize);
    const entries = [];
    let p = 0;
    for (let i = 0; i < count; i++) {
      if (cd.readUInt32LE(p) !== 0x02014b50) throw new Error(`${file}: bad central directory entry ${i}`);
      const method = cd.readUInt16LE(p + 10);
      let compressedSize = cd.readUInt32LE(p + 20);
      let uncompressed = cd.readUInt32LE(p + 24);
      const nameLen = cd.readUInt16LE(p + 28);
      const extraLen = cd.readUInt16LE(p + 30);
      const commentLen = cd.readUInt16LE(p + 32);
      let localHeaderOffset = cd.readUInt32LE(p + 42);
      const name = cd.toString('utf8', p + 46, p + 46 + nameLen);
      // zip64 extra field (id 1): 8-byte values, present only for the fields that overflowed, in this order.
      let e = p + 46 + nameLen;
      const extraEnd = e + extraLen;
      while (e + 4 <= extraEnd) {
        const id = cd.readUInt16LE(e);
        const len = cd.readUInt16LE(e + 2);
        if (id === 1) {
          let q = e + 4;
          if (uncompressed === 0xffffffff) {
            uncompressed = Number(cd.readBigUInt64LE(q));
            q += 8;
          }
          if (compressedSize === 0xffffffff) {
            compressedSize = Number(cd.readBigUInt64LE(q));
            q += 8;
          }
          if (localHeaderOffset === 0xffffffff) {
            localHeaderOffset = Number(cd.readBigUInt64LE(q));
            q += 8;
          }
        }
        e += 4 + len;
      }
      entries.push({ name, method, compressedSize, size: uncompressed, localHeaderOffset });
      p = extraEnd + commentLen;
    }
    return entries;
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Extracts every member whose name `select(name)` maps to a relative output path (or null to skip) under
 * `destDir`. Returns the number of files written. Sizes are checked against the central directory.
 */
async function extract(file, destDir, select) {
  const entries = listEntries(file);
  const fd = fs.openSync(file, 'r');
  let written = 0;
  try {
    for (const entry of entries) {
      if (entry.name.endsWith('/')) continue;
      const rel = select(entry.name);
      if (!rel) continue;
      const out = path.join(destDir, rel);
      if (!out.startsWith(path.resolve(destDir) + path.sep)) throw new Error(`${file}: member ${entry.name} escapes the target folder`);
      const local = readAt(fd, entry.localHeaderOffset, 30);
      if (local.readUInt32LE(0) !== 0x04034b50) throw new Error(`${file}: bad local header for ${entry.name}`);
      const start = entry.localHeaderOffset + 30 + local.readUInt16LE(26) + local.readUInt16LE(28);
      fs.mkdirSync(path.dirname(out), { recursive: true });
      const tmp = `${out}.part`;
      const source =
        entry.compressedSize === 0
          ? require('node:stream').Readable.from([])
          : fs.createReadStream(file, { start, end: start + entry.compressedSize - 1 });
      if (entry.method === 8) await pipeline(source, zlib.createInflateRaw(), fs.createWriteStream(tmp));
      else if (entry.method === 0) await pipeline(source, fs.createWriteStream(tmp));
      else throw new Error(`${file}: ${entry.name} uses unsupported compression method ${entry.method}`);
      const got = fs.statSync(tmp).size;
      if (got !== entry.size) throw new Error(`${file}: ${entry.name} extracted to ${got} bytes, expected ${entry.size}`);
      fs.renameSync(tmp, out);
      written++;
    }
  } finally {
    fs.closeSync(fd);
  }
  return written;
}

module.exports = { listEntries, extract };
