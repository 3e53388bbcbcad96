// Sampling from an exported Cognate model (forge sample, the demo's samples): the export is loaded with its
// manifest checked, generation runs ACT and the LTM as at inference, greedy is deterministic, sampling is
// seeded, and bad options are refused naming the option.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { initBackend } from '../common/backend';
import { trainByteLevelBpe } from '../activities/cognate/data/tokenizer';
import { FIXTURES_DIR } from '../activities/cognate/data/sources';
import { exportModel } from '../activities/cognate/engine/export';
import { CognateModel } from '../activities/cognate/engine/model';
import { generate, pickToken, sampleFromExport } from '../activities/cognate/engine/sample';
import { Rng } from '../common/rng';

let dir: string;
let dataDir: string;

beforeAll(async () => {
  await initBackend();
  const lines = fs.readFileSync(path.join(FIXTURES_DIR, 'gsm8k/train.jsonl'), 'utf8').trim().split('\n');
  const tokenizer = trainByteLevelBpe(
    lines.map((l) => (JSON.parse(l) as { question: string }).question),
    { vocabSize: 300 },
  );
  const model = new CognateModel(
    {
      dModel: 32,
      nLayers: 3,
      nHeads: 2,
      dFF: 64,
      vocabSize: tokenizer.vocabSize,
      maxSeqLen: 64,
      dMem: 16,
      memCapacity: 32,
      actThreshold: 0.5,
    },
    7,
  );
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'forge-sample-'));
  dir = path.join(dataDir, 'cognate', 'sess', 'm1');
  exportModel(model, dir, { files: { 'tokenizer.json': tokenizer.toJSON() } });
  model.dispose();
});

test('greedy generation from an export is deterministic and reports the ACT depth it ran', () => {
  const a = sampleFromExport(dir, 'Natalia sold clips', { maxNewTokens: 8 });
  const b = sampleFromExport(dir, 'Natalia sold clips', { maxNewTokens: 8 });
  expect(a.tokens.length + (a.stoppedAtEos ? 1 : 0)).toBeGreaterThan(0);
  expect(b.tokens).toEqual(a.tokens);
  expect(a.meanDepth).toBeGreaterThanOrEqual(1);
  expect(a.meanDepth).toBeLessThanOrEqual(3);
});

test('temperature sampling is seeded; top-k 1 is greedy', () => {
  const t1 = sampleFromExport(dir, 'Natalia sold clips', { maxNewTokens: 12, temperature: 5, seed: 1 });
  const t1again = sampleFromExport(dir, 'Natalia sold clips', { maxNewTokens: 12, temperature: 5, seed: 1 });
  const t2 = sampleFromExport(dir, 'Natalia sold clips', { maxNewTokens: 12, temperature: 5, seed: 2 });
  expect(t1again.tokens).toEqual(t1.tokens);
  expect(t2.tokens).not.toEqual(t1.tokens);
  const logits = Float32Array.from([0.1, 3, -2, 2.9]);
  expect(pickToken(logits, { temperature: 1, topK: 1 }, new Rng(3))).toBe(1);
  expect(pickToken(logits, { temperature: 0, topK: 0 }, new Rng(3))).toBe(1);
});

test('bad options are refused naming the option', () => {
  const model = new CognateModel({ dModel: 16, nLayers: 1, nHeads: 2, dFF: 16, vocabSize: 300, maxSeqLen: 16, memEnabled: false }, 1);
  const tok = trainByteLevelBpe(['abc abc'], { vocabSize: 300 });
  expect(() => generate(model, tok, 'abc', { maxNewTokens: 0 })).toThrow(/maxNewTokens/);
  expect(() => generate(model, tok, 'abc', { temperature: -1 })).toThrow(/temperature/);
  expect(() => generate(model, tok, 'abc', { topK: 1.5 })).toThrow(/topK/);
  model.dispose();
});

test('forge sample prints the prompt and its continuation; a missing model is a clear error', () => {
  const env = { ...process.env, FORGE_DATA_DIR: dataDir };
  const out = execFileSync(
    'npx',
    ['tsx', 'cli/forge.ts', 'sample', 'cognate', 'sess', 'm1', '--prompt', 'Natalia sold clips', '--max-tokens', '6'],
    { env, encoding: 'utf8' },
  );
  expect(out.startsWith('Natalia sold clips')).toBe(true);
  let err = '';
  try {
    execFileSync('npx', ['tsx', 'cli/forge.ts', 'sample', 'cognate', 'sess', 'nope', '--prompt', 'x'], {
      env,
      encoding: 'utf8',
      stdio: 'pipe',
    });
  } catch (e) {
    err = String((e as { stderr: string }).stderr);
  }
  expect(err).toContain(`no exported model at ${path.join(dataDir, 'cognate', 'sess', 'nope')}`);
});
