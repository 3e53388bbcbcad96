// TensorBoard event files written by common/tensorboard.ts, read back by TensorBoard's own loader
// (tensorboard.backend.event_processing.event_accumulator) when the `tensorboard` Python package is installed.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { crc32c, maskedCrc32c, TensorBoardWriter } from '../common/tensorboard';
import { readTensorBoard } from './helpers/tensorboard';

test('CRC-32C matches the standard check value and TFRecord masking', () => {
  expect(crc32c(Buffer.from('123456789'))).toBe(0xe3069283);
  const c = crc32c(Buffer.from('123456789'));
  expect(maskedCrc32c(Buffer.from('123456789'))).toBe(((((c >>> 15) | (c << 17)) >>> 0) + 0xa282ead8) >>> 0);
});

test('scalars written by the writer read back in TensorBoard with their tags, steps and values; a restart supersedes later steps', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'forge-tb-'));
  const first = new TensorBoardWriter(dir);
  for (let step = 1; step <= 5; step++)
    first.scalars(step, { 'train/loss': 10 - step, 'train/learning_rate': step * 1e-4, skipped: Number.NaN, absent: undefined });
  first.close();
  // A second attempt resumes from a checkpoint at step 3: its steps 4.. replace the first attempt's.
  const second = new TensorBoardWriter(dir);
  second.restartAt(4);
  for (let step = 4; step <= 6; step++) second.scalars(step, { 'train/loss': 100 + step });
  second.close();
  expect(fs.readdirSync(dir).filter((f) => f.includes('tfevents'))).toHaveLength(2);

  const scalars = readTensorBoard(dir);
  if (!scalars) return;
  expect(Object.keys(scalars).sort()).toEqual(['train/learning_rate', 'train/loss']);
  expect(scalars['train/loss'].map(([s, v]) => [s, v])).toEqual([
    [1, 9],
    [2, 8],
    [3, 7],
    [4, 104],
    [5, 105],
    [6, 106],
  ]);
  // simple_value is a float32: compare at float precision.
  expect(scalars['train/learning_rate'].map(([s]) => s)).toEqual([1, 2, 3]);
  scalars['train/learning_rate'].forEach(([step, v]) => expect(v).toBeCloseTo(step * 1e-4, 9));
  for (const [, , wall] of scalars['train/loss']) expect(Math.abs(wall - Date.now() / 1000)).toBeLessThan(600);
});
