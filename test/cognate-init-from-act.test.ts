// Adding ACT by fine-tuning: a parent exported without ACT fits a run with actEnabled true (its blocks are
// loaded, the new halting units keep their start), while a parent with ACT still refuses a run without it,
// and any other shape difference is still named. No server: the check and the load are plain functions.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { useTestBackend } from './helpers/backend';
import { CognateConfigSchema } from '../activities/cognate/config';
import { exportModel } from '../activities/cognate/engine/export';
import { cognateParentMismatches, inspectCognateParent, loadCognateParent } from '../activities/cognate/engine/init-from';
import { CognateModel } from '../activities/cognate/engine/model';

const shape = { dModel: 16, nHeads: 4, dFF: 32, nLayers: 3, vocabSize: 32, maxSeqLen: 16, memEnabled: false };

beforeAll(async () => {
  await useTestBackend();
});

test('a parent without ACT fits a run that adds it: blocks loaded, halting units at their start; removing ACT or another shape is refused', () => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'init-from-act-'));
  const exportDir = (name: string, act: boolean) => {
    const model = new CognateModel({ ...shape, actEnabled: act }, 1);
    const dir = path.join(dataDir, 'cognate', 'parent', name);
    exportModel(model, dir, { files: { 'tokenizer.json': '{"model":{"type":"WordLevel"}}' } });
    const weights = new Map(model.params.map((p) => [p.name, Array.from(p.variable.dataSync())]));
    model.dispose();
    return { ref: inspectCognateParent(dataDir, { path: path.relative(dataDir, dir) }), weights };
  };
  const config = (fields: object) => CognateConfigSchema.parse({ ...shape, ...fields });
  const tensorsBefore = tf.memory().numTensors;
  try {
    const plain = exportDir('plain', false);
    const withAct = exportDir('act', true);
    expect(cognateParentMismatches(plain.ref, config({ actEnabled: true }))).toEqual([]);
    expect(cognateParentMismatches(withAct.ref, config({ actEnabled: false }))).toEqual(['actEnabled: parent true, this run false']);
    expect(cognateParentMismatches(plain.ref, config({ actEnabled: true, dFF: 64 }))).toEqual([
      'dFF (intermediate_size): parent 32, this run 64',
    ]);

    const child = new CognateModel({ ...shape, actEnabled: true }, 7); // another seed: every block weight must come from the parent
    child.initHalting(0.01);
    try {
      loadCognateParent(plain.ref, child);
      let halting = 0;
      for (const p of child.params) {
        if (p.name.includes('.halting.')) {
          halting++;
          if (p.name.endsWith('bias')) expect(p.variable.dataSync()[0]).toBeCloseTo(Math.log(0.01 / 0.99), 5);
        } else expect(Array.from(p.variable.dataSync())).toEqual(plain.weights.get(p.name));
      }
      expect(halting).toBe(2 * (shape.nLayers - 1)); // a weight and a bias after every block but the last
    } finally {
      child.dispose();
    }
    // the exception covers halting units only: a block weight the parent lacks is still named
    const lacking = new CognateModel({ ...shape, nLayers: 4, actEnabled: true }, 7);
    try {
      expect(() => loadCognateParent(plain.ref, lacking)).toThrow(/weight "model\.layers\.3\..*" is missing/);
    } finally {
      lacking.dispose();
    }
  } finally {
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
  expect(tf.memory().numTensors).toBe(tensorsBefore);
});
