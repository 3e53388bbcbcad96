// TensorBoard event files, written directly (no TensorFlow needed, whatever tfjs backend trains):
//   file    `events.out.tfevents.<unix seconds>.<host>.<pid>.<n>` — TensorBoard loads every file in a run
//           directory whose name contains "tfevents", in name order.
//   record  TFRecord framing: uint64 LE data length, uint32 LE masked CRC-32C of those 8 bytes, the data,
//           uint32 LE masked CRC-32C of the data (mask: rotate right 15, add 0xa282ead8).
//   data    a serialized `Event` (tensorboard/compat/proto/event.proto): wall_time = 1 (double),
//           step = 2 (int64), file_version = 3 ("brain.Event:2", the first record), summary = 5,
//           session_log = 7 (SessionLog: status = 1, START = 1). `Summary` (summary.proto): repeated
//           Value value = 1; Value: tag = 1, simple_value = 2 (float).
// A resumed run redoes the steps after its last checkpoint; writing SessionLog START at the resumed step
// makes TensorBoard drop the earlier attempt's points from that step on, so each step shows once.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Pipeline } from './constants';
import { assertSafeSegment } from './paths';

/**
 * $FORGE_DATA_DIR/tensorboard/<pipeline>/<sessionId>/<unit>: a tree of its own, written while training runs,
 * so a session's artifact folder still appears only when its artifacts are published. `tensorboard --logdir`
 * on the session folder compares its units; on $FORGE_DATA_DIR/tensorboard, every run ever trained.
 */
export function tensorboardDir(dataDir: string, pipeline: Pipeline, sessionId: string, unit?: string): string {
  const session = path.join(dataDir, 'tensorboard', pipeline, assertSafeSegment(sessionId, 'sessionId'));
  return unit === undefined ? session : path.join(session, assertSafeSegment(unit, 'name'));
}

// --- CRC-32C (Castagnoli, reflected polynomial 0x82f63b78) ------------------------------------------
const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0x82f63b78 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

export function crc32c(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) c = CRC_TABLE[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

export function maskedCrc32c(bytes: Uint8Array): number {
  const c = crc32c(bytes);
  return ((((c >>> 15) | (c << 17)) >>> 0) + 0xa282ead8) >>> 0;
}

/** One TFRecord: length, its masked CRC, the data, the data's masked CRC. */
export function tfRecord(data: Uint8Array): Buffer {
  const header = Buffer.alloc(12);
  header.writeBigUInt64LE(BigInt(data.length), 0);
  header.writeUInt32LE(maskedCrc32c(header.subarray(0, 8)), 8);
  const footer = Buffer.alloc(4);
  footer.writeUInt32LE(maskedCrc32c(data), 0);
  return Buffer.concat([header, data, footer]);
}

// --- protobuf encoding of the few fields used --------------------------------------------------------
function varint(n: number | bigint): Buffer {
  let v = BigInt(n);
  if (v < 0n) v += 1n << 64n; // int64 two's complement, as protobuf encodes negatives
  const out: number[] = [];
  while (v >= 0x80n) {
    out.push(Number(v & 0x7fn) | 0x80);
    v >>= 7n;
  }
  out.push(Number(v));
  return Buffer.from(out);
}
const key = (field: number, wire: number): Buffer => varint((field << 3) | wire);
const lengthDelimited = (field: number, body: Uint8Array): Buffer => Buffer.concat([key(field, 2), varint(body.length), body]);
function double(field: number, v: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeDoubleLE(v, 0);
  return Buffer.concat([key(field, 1), b]);
}
function float(field: number, v: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeFloatLE(v, 0);
  return Buffer.concat([key(field, 5), b]);
}

export type EventBody = { fileVersion: string } | { scalars: { tag: string; value: number }[] } | { sessionStart: true };

export function encodeEvent(wallTime: number, step: number, body: EventBody): Buffer {
  const parts = [double(1, wallTime), key(2, 0), varint(Math.trunc(step))];
  if ('fileVersion' in body) parts.push(lengthDelimited(3, Buffer.from(body.fileVersion, 'utf8')));
  else if ('scalars' in body) {
    const values = body.scalars.map((s) =>
      lengthDelimited(1, Buffer.concat([lengthDelimited(1, Buffer.from(s.tag, 'utf8')), float(2, s.value)])),
    );
    parts.push(lengthDelimited(5, Buffer.concat(values)));
  } else parts.push(lengthDelimited(7, Buffer.concat([key(1, 0), varint(1)])));
  return Buffer.concat(parts);
}

let fileCounter = 0;

/** Appends scalar summaries to one new event file in `logdir` (one writer per training attempt). */
export class TensorBoardWriter {
  readonly file: string;
  private fd: number | null;

  constructor(readonly logdir: string) {
    fs.mkdirSync(logdir, { recursive: true });
    const host = os.hostname().replace(/[^A-Za-z0-9_.-]/g, '_');
    this.file = path.join(logdir, `events.out.tfevents.${Math.floor(Date.now() / 1000)}.${host}.${process.pid}.${++fileCounter}`);
    this.fd = fs.openSync(this.file, 'a');
    this.append(encodeEvent(Date.now() / 1000, 0, { fileVersion: 'brain.Event:2' }));
  }

  private append(event: Buffer): void {
    if (this.fd === null) throw new Error(`TensorBoard event file ${this.file} is closed`);
    fs.writeSync(this.fd, tfRecord(event));
  }

  /** Scalars at `step`; undefined, null and non-finite values are skipped (TensorBoard cannot plot them). */
  scalars(step: number, values: Record<string, number | null | undefined>): void {
    const scalars = Object.entries(values)
      .filter((e): e is [string, number] => typeof e[1] === 'number' && Number.isFinite(e[1]))
      .map(([tag, value]) => ({ tag, value }));
    if (scalars.length > 0) this.append(encodeEvent(Date.now() / 1000, step, { scalars }));
  }

  /** Training continues from `step` (a resume): TensorBoard discards this run's points at or after it. */
  restartAt(step: number): void {
    this.append(encodeEvent(Date.now() / 1000, step, { sessionStart: true }));
  }

  close(): void {
    if (this.fd === null) return;
    fs.closeSync(this.fd);
    this.fd = null;
  }
}
