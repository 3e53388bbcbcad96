// Export formats: byte-level checks against the specs, round trips, corruption detection, and (when
// torch/safetensors/numpy are installed) the real Python readers via scripts/verify_weights.py.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../common/backend';
import { ARTIFACT_FILES, publishWeightsArtifact } from '../common/export/artifact';
import {
  atomicWriteFile,
  publishDirectory,
  sha256File,
  stagingDirFor,
  verifyManifest,
  writeJsonAtomic,
  writeManifest,
} from '../common/export/files';
import { decodeSafetensors, encodeSafetensors, readSafetensors, writeSafetensors } from '../common/export/safetensors';
import {
  decodeTorchStateDict,
  decodeZipStored,
  encodeTorchStateDict,
  readTorchStateDict,
  writeTorchStateDict,
} from '../common/export/torch';
import { readTfjsWeights, writeTfjsWeights, type TfjsModelJson } from '../common/export/tfjs';
import { tensorsEqual, type NamedTensor } from '../common/export/tensors';

const REPO = path.resolve(__dirname, '..');

/** mulberry32: a seeded stream so fixtures are identical on every run. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A small "model": odd sizes (alignment), a scalar, an empty tensor, >3 dims, >65535 elements, ints of both widths. */
function fixture(seed = 1): NamedTensor[] {
  const r = rng(seed);
  const f32 = (name: string, shape: number[]): NamedTensor => {
    const n = shape.reduce((a, b) => a * b, 1);
    return { name, shape, dtype: 'float32', data: Float32Array.from({ length: n }, () => (r() - 0.5) * 0.2) };
  };
  return [
    f32('tok_emb.weight', [37, 16]),
    f32('blocks.0.attn.qkv.weight', [16, 48]),
    f32('blocks.0.ln.bias', [3]),
    f32('big.weight', [300, 257]), // 77100 elements: exercises 4-byte pickle ints
    f32('conv.weight', [2, 3, 1, 5]),
    f32('temperature', []),
    f32('unused', [0, 4]),
    { name: 'token_ids', shape: [2, 3], dtype: 'int32', data: Int32Array.of(0, 1, -1, 2147483647, -2147483648, 42) },
    { name: 'step', shape: [1], dtype: 'int64', data: BigInt64Array.of(123456789n) },
  ];
}

function expectSameTensors(a: NamedTensor[], b: NamedTensor[]): void {
  expect(b.map((t) => t.name)).toEqual(a.map((t) => t.name));
  a.forEach((t, i) => expect(tensorsEqual(t, b[i])).toBe(true));
}

let tmp: string;
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'forge-export-'));
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('safetensors', () => {
  test('byte layout of a hand-checked file follows the spec', () => {
    const buf = encodeSafetensors([{ name: 'w', shape: [2], dtype: 'float32', data: Float32Array.of(1, -2) }], { k: 'v' });
    const n = Number(buf.readBigUInt64LE(0));
    expect(n % 8).toBe(0);
    const header = buf.subarray(8, 8 + n).toString('utf8');
    expect(header.trimEnd()).toBe('{"__metadata__":{"k":"v"},"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}');
    expect(/^[^ ]*\s*$/.test(header)).toBe(true); // padding is trailing spaces only
    expect(buf.subarray(8 + n).equals(Buffer.from(Float32Array.of(1, -2).buffer))).toBe(true);
  });

  test('round trip keeps order, dtypes, shapes, exact bits and metadata; data is contiguous', () => {
    const ts = fixture();
    const file = path.join(tmp, 'model.safetensors');
    writeSafetensors(file, ts, { format: 'pt', source: 'test' });
    const back = readSafetensors(file);
    expectSameTensors(ts, back.tensors);
    expect(back.metadata).toEqual({ format: 'pt', source: 'test' });
    const buf = fs.readFileSync(file);
    const n = Number(buf.readBigUInt64LE(0));
    const header = JSON.parse(buf.subarray(8, 8 + n).toString()) as Record<string, { data_offsets: [number, number] }>;
    const offsets = ts.map((t) => header[t.name].data_offsets);
    offsets.forEach(([b], i) => expect(b).toBe(i === 0 ? 0 : offsets[i - 1][1]));
    expect(8 + n + offsets[offsets.length - 1][1]).toBe(buf.length);
  });

  test('rejects bad input and damaged files', () => {
    const w = (name: string): NamedTensor => ({ name, shape: [2], dtype: 'float32', data: new Float32Array(2) });
    expect(() => encodeSafetensors([w('a'), w('a')])).toThrow(/duplicate tensor name "a"/);
    expect(() => encodeSafetensors([{ ...w('a'), shape: [3] }])).toThrow(/needs 3 elements/);
    expect(() => encodeSafetensors([{ ...w('a'), dtype: 'int32' }])).toThrow(/not a int32 array/);
    const good = encodeSafetensors([w('a'), w('b')]);
    expect(() => decodeSafetensors(good.subarray(0, good.length - 1))).toThrow(/tensor "b" runs past the end of the file/);
    expect(() => decodeSafetensors(Buffer.concat([good, Buffer.alloc(1)]))).toThrow(/data is 17 bytes but tensors cover 16/);
    const bigHeader = Buffer.from(good);
    bigHeader.writeBigUInt64LE(1n << 40n, 0);
    expect(() => decodeSafetensors(bigHeader)).toThrow(/header length/);
  });
});

describe('torch zip state dict', () => {
  test('zip records: names, CRC-32s, 64-byte aligned data, version and byteorder', () => {
    const ts = fixture();
    const records = decodeZipStored(encodeTorchStateDict(ts, 'model'));
    expect(records.map((r) => r.name)).toEqual([
      'model/data.pkl',
      'model/byteorder',
      ...ts.map((_, i) => `model/data/${i}`),
      'model/version',
      'model/.data/serialization_id',
    ]);
    for (const r of records) {
      expect(r.crc32).toBe(zlib.crc32(r.data)); // central directory CRC == independently computed CRC
      expect(r.dataOffset % 64).toBe(0);
    }
    const get = (name: string): string => records.find((r) => r.name === `model/${name}`)!.data.toString();
    expect(get('byteorder')).toBe('little');
    expect(get('version')).toBe('3\n');
    expect(get('.data/serialization_id')).toMatch(/^\d{40}$/);
    const pkl = records[0].data;
    expect(pkl.subarray(0, 2)).toEqual(Buffer.from([0x80, 2])); // pickle protocol 2
    expect(pkl.includes('ctorch._utils\n_rebuild_tensor_v2\n')).toBe(true);
  });

  test('round trip through readTorchStateDict; output is reproducible', () => {
    const ts = fixture();
    const file = path.join(tmp, 'model.pt');
    writeTorchStateDict(file, ts);
    expectSameTensors(ts, readTorchStateDict(file));
    expect(encodeTorchStateDict(ts).equals(encodeTorchStateDict(ts))).toBe(true);
  });

  test('a flipped byte in tensor data is caught by the CRC check', () => {
    const buf = encodeTorchStateDict(fixture());
    const rec = decodeZipStored(buf).find((r) => r.name === 'archive/data/1')!;
    buf[rec.dataOffset + 5] ^= 0x01;
    expect(() => decodeTorchStateDict(buf)).toThrow(/CRC-32 mismatch in archive\/data\/1/);
  });
});

describe('tfjs weights', () => {
  test('model.json + weights.bin read back by us and by tf.io.decodeWeights', async () => {
    await initBackend('cpu'); // decodeWeights only builds tensors; the plain CPU backend is enough
    const ts = fixture();
    const dir = path.join(tmp, 'tfjs');
    const written = writeTfjsWeights(dir, ts, { format: 'layers-model', modelTopology: { class_name: 'Test' } });
    const modelJson = JSON.parse(fs.readFileSync(path.join(dir, 'model.json'), 'utf8')) as TfjsModelJson;
    expect(modelJson).toEqual(written);
    expect(modelJson.weightsManifest[0].paths).toEqual(['weights.bin']);
    expect(modelJson.weightsManifest[0].weights.find((w) => w.name === 'step')!.dtype).toBe('int32'); // tfjs has no int64

    const asTfjs = ts.map((t) =>
      t.dtype === 'int64' ? { ...t, dtype: 'int32' as const, data: Int32Array.from(t.data as BigInt64Array, Number) } : t,
    );
    expectSameTensors(asTfjs, readTfjsWeights(dir));

    const bin = fs.readFileSync(path.join(dir, 'weights.bin'));
    const decoded = tf.io.decodeWeights(
      bin.buffer.slice(bin.byteOffset, bin.byteOffset + bin.length),
      modelJson.weightsManifest[0].weights,
    );
    for (const t of asTfjs) {
      expect(decoded[t.name].shape).toEqual(t.shape);
      expect(decoded[t.name].dtype).toBe(t.dtype);
      expect(Buffer.from((decoded[t.name].dataSync() as Float32Array | Int32Array).buffer).equals(Buffer.from(t.data.buffer))).toBe(true);
    }
    tf.dispose(Object.values(decoded));
  });

  test('int64 values that do not fit int32 are refused, not truncated', () => {
    const t: NamedTensor = { name: 'big', shape: [1], dtype: 'int64', data: BigInt64Array.of(1n << 40n) };
    expect(() => writeTfjsWeights(path.join(tmp, 'tfjs-bad'), [t])).toThrow(/does not fit int32/);
  });
});

describe('files', () => {
  test('atomic writes leave no temp files; sha256 matches a known digest', () => {
    const dir = path.join(tmp, 'atomic');
    atomicWriteFile(path.join(dir, 'a.txt'), 'abc');
    writeJsonAtomic(path.join(dir, 'b.json'), { x: 1 });
    atomicWriteFile(path.join(dir, 'a.txt'), 'abc'); // overwrite in place
    expect(fs.readdirSync(dir).sort()).toEqual(['a.txt', 'b.json']);
    expect(sha256File(path.join(dir, 'a.txt'))).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad'); // FIPS 180-2 "abc"
  });

  test('manifest lists every file and verifyManifest catches edits, deletions and additions', () => {
    const dir = path.join(tmp, 'manifest');
    atomicWriteFile(path.join(dir, 'w.bin'), Buffer.from([1, 2, 3, 4]));
    atomicWriteFile(path.join(dir, 'sub', 'x.json'), '{}');
    const m = writeManifest(dir, { runId: 'r1' });
    expect(m.runId).toBe('r1');
    expect(m.files.map((f) => [f.path, f.bytes])).toEqual([
      ['sub/x.json', 2],
      ['w.bin', 4],
    ]);
    expect(verifyManifest(dir)).toEqual([]);
    fs.writeFileSync(path.join(dir, 'w.bin'), Buffer.from([1, 2, 3, 5]));
    fs.rmSync(path.join(dir, 'sub', 'x.json'));
    fs.writeFileSync(path.join(dir, 'stray.txt'), 'x');
    expect(verifyManifest(dir)).toEqual([
      'sub/x.json: missing',
      'w.bin: sha256 differs from manifest',
      'stray.txt: not listed in manifest',
    ]);
    // A damaged manifest is reported, not thrown.
    fs.writeFileSync(
      path.join(dir, 'manifest.json'),
      JSON.stringify({ format: m.format, files: [null, { path: '../x', bytes: 1, sha256: 'ab' }] }),
    );
    expect(verifyManifest(dir)).toEqual([
      'manifest.json: malformed entry null',
      '../x: unsafe path in manifest',
      'stray.txt: not listed in manifest',
      'w.bin: not listed in manifest',
    ]);
  });

  test('publishDirectory swaps a complete staging dir into place, replacing the old one', () => {
    const final = path.join(tmp, 'pub', 'artifacts');
    for (const version of ['v1', 'v2']) {
      const staging = stagingDirFor(final);
      expect(path.dirname(staging)).toBe(path.dirname(final));
      atomicWriteFile(path.join(staging, 'version.txt'), version);
      writeManifest(staging);
      publishDirectory(staging, final);
      expect(fs.existsSync(staging)).toBe(false);
    }
    expect(fs.readFileSync(path.join(final, 'version.txt'), 'utf8')).toBe('v2');
    expect(verifyManifest(final)).toEqual([]);
    expect(fs.readdirSync(path.dirname(final))).toEqual(['artifacts']); // no staging or old dirs left behind
  });
});

describe('scripts/verify_weights.py (real torch + safetensors + numpy)', () => {
  const probe = spawnSync('python3', ['-c', 'import torch, safetensors, numpy'], { encoding: 'utf8' });
  const havePython = probe.status === 0;
  if (!havePython)
    console.warn(
      `SKIPPING verify_weights.py tests: python3 cannot import torch, safetensors, numpy (${(probe.stderr || String(probe.error)).trim().split('\n').pop()})`,
    );
  const maybe = havePython ? test : test.skip;

  const verify = (dir: string, ...options: string[]): { status: number | null; summary: Record<string, unknown> } => {
    const res = spawnSync('python3', [path.join(REPO, 'scripts', 'verify_weights.py'), dir, '--json', ...options], { encoding: 'utf8' });
    return { status: res.status, summary: JSON.parse(res.stdout || '{}') as Record<string, unknown> };
  };
  const exportAll = (dir: string, ts: NamedTensor[]): void => {
    const manifest = publishWeightsArtifact(dir, ts, { extraFiles: { 'config.json': { d_model: 16 } }, manifestExtra: { runId: 'test' } });
    expect(manifest.files.map((f) => f.path)).toEqual([
      'config.json',
      ARTIFACT_FILES.safetensors,
      ARTIFACT_FILES.torch,
      'tfjs/model.json',
      'tfjs/weights.bin',
    ]);
    expect(verifyManifest(dir)).toEqual([]);
  };

  maybe('all three formats agree; an altered tensor in either Python-read file is named', () => {
    const ts = fixture(7);
    const dir = path.join(tmp, 'verify');
    exportAll(dir, ts);
    const ok = verify(dir);
    expect(ok.summary).toMatchObject({ ok: true, tensors: ts.length, files: ['model.safetensors', 'pytorch_model.bin'] });
    expect(ok.summary.parameters).toBe(ts.reduce((n, t) => n + t.data.length, 0));
    expect(ok.status).toBe(0);

    // One float nudged by one ulp in the safetensors copy only.
    const altered = ts.map((t) => (t.name === 'blocks.0.attn.qkv.weight' ? { ...t, data: Float32Array.from(t.data as Float32Array) } : t));
    const u32 = new Uint32Array(altered[1].data.buffer);
    u32[100] += 1;
    writeSafetensors(path.join(dir, 'model.safetensors'), altered);
    const bad = verify(dir);
    expect(bad.status).toBe(1);
    expect(String(bad.summary.error)).toMatch(/model\.safetensors: tensor 'blocks\.0\.attn\.qkv\.weight' differs at flat index 100/);

    // Safetensors restored; now the torch copy is missing a tensor.
    writeSafetensors(path.join(dir, 'model.safetensors'), ts);
    writeTorchStateDict(
      path.join(dir, 'pytorch_model.bin'),
      ts.filter((t) => t.name !== 'step'),
    );
    const missing = verify(dir);
    expect(missing.status).toBe(1);
    expect(String(missing.summary.error)).toMatch(/pytorch_model\.bin: tensor 'step' is in tfjs but missing here/);
  });

  maybe('--skip leaves out a file with no tfjs twin; --safetensors/--torch pick files by name', () => {
    const ts = fixture(9);
    const dir = path.join(tmp, 'verify-skip');
    exportAll(dir, ts);
    // An extra weights file (like an LTM memory bank) that tfjs does not carry.
    writeSafetensors(path.join(dir, 'ltm_bank.safetensors'), [
      { name: 'bank.keys', shape: [2, 2], dtype: 'float32', data: new Float32Array([1, 2, 3, 4]) },
    ]);
    const unskipped = verify(dir);
    expect(unskipped.status).toBe(1);
    expect(String(unskipped.summary.error)).toMatch(/ltm_bank\.safetensors: tensor '[^']+' is in tfjs but missing here/);

    const skipped = verify(dir, '--skip', 'ltm_*.safetensors');
    expect(skipped.status).toBe(0);
    expect(skipped.summary).toMatchObject({ ok: true, files: ['model.safetensors', 'pytorch_model.bin'], skipped: ['ltm_*.safetensors'] });

    const named = verify(dir, '--safetensors', 'model.safetensors', '--torch', ARTIFACT_FILES.torch);
    expect(named.status).toBe(0);
    expect(named.summary.files).toEqual(['model.safetensors', 'pytorch_model.bin']);

    const absent = verify(dir, '--torch', 'nope.pt');
    expect(absent.status).toBe(2);
    expect(String(absent.summary.error)).toMatch(/nope\.pt does not exist/);
  });

  maybe('a corrupted storage byte in the torch file (torch.load does not check CRCs) fails the zip CRC check', () => {
    const dir = path.join(tmp, 'verify-corrupt');
    exportAll(dir, fixture(8));
    const file = path.join(dir, 'pytorch_model.bin');
    const buf = fs.readFileSync(file);
    buf[decodeZipStored(buf).find((r) => r.name.endsWith('/data/0'))!.dataOffset] ^= 0x40;
    fs.writeFileSync(file, buf);
    const res = verify(dir);
    expect(res.status).toBe(1);
    expect(String(res.summary.error)).toMatch(/pytorch_model\.bin: CRC-32 mismatch in zip record 'pytorch_model\/data\/0'/);
  });

  maybe('readTorchStateDict reads a state dict written by torch.save itself', () => {
    const file = path.join(tmp, 'from_torch.pt');
    const script = `import torch, collections
sd = collections.OrderedDict(w=torch.arange(12, dtype=torch.float32).reshape(3, 4) / 8, ids=torch.tensor([1, -2], dtype=torch.int32), n=torch.tensor(2**40))
torch.save(sd, ${JSON.stringify(file)})`;
    expect(spawnSync('python3', ['-c', script], { encoding: 'utf8' }).status).toBe(0);
    const back = readTorchStateDict(file);
    expect(back.map((t) => [t.name, t.dtype, t.shape])).toEqual([
      ['w', 'float32', [3, 4]],
      ['ids', 'int32', [2]],
      ['n', 'int64', []],
    ]);
    expect(Array.from(back[0].data as Float32Array)).toEqual(Array.from({ length: 12 }, (_, i) => i / 8));
    expect(Array.from(back[1].data as Int32Array)).toEqual([1, -2]);
    expect(back[2].data[0]).toBe(2n ** 40n);
  });
});
