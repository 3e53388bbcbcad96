// The LTM recall claim at a small size (bench/ltm-recall.ts holds the full sweep): after a short training,
// a model with the memory on answers questions about facts from an earlier segment, across distractor
// segments, through the product path (model.writeMemory after each segment, forward reading model.memory);
// the same model with its bank cleared, or with its memory switched off, falls to chance and fails the
// claim; it answers the same questions when the facts are in their own segment.
import * as tf from '@tensorflow/tfjs-core';
import { useTestBackend } from './helpers/backend';
import {
  ASK,
  DEFAULT_TRAIN,
  evaluateRecall,
  FACT,
  keyToken,
  makeEpisodes,
  recallModelConfig,
  trainRecall,
  valueToken,
  type RecallScores,
  type RecallTask,
} from '../bench/ltm-recall';
import { CognateModel } from '../activities/cognate/engine/model';
import { Rng } from '../common/rng';

const task: RecallTask = { numKeys: 32, numValues: 16 };
const chance = 1 / task.numValues;
const FACTS = 4;
const DISTRACTORS = 2;

/** The claim: recall across DISTRACTORS segments of at least 0.9. */
const recallClaimHolds = (s: RecallScores): boolean => s.recall >= 0.9;

beforeAll(async () => {
  await useTestBackend();
});

describe('LTM recall', () => {
  test('episodes: fresh bindings, value-then-key facts, distractors on other keys, questions scored at the answers', () => {
    const ep = makeEpisodes(new Rng(1), task, 2, FACTS, DISTRACTORS);
    const L = 2 * FACTS + 1;
    expect(ep.segLen).toBe(L);
    const row = (a: Int32Array, b: number, len = L): number[] => Array.from(a.subarray(b * len, (b + 1) * len));
    const facts = row(ep.factSegment, 0);
    expect(facts[0]).toBe(FACT);
    const binding = new Map<number, number>();
    for (let i = 0; i < FACTS; i++) binding.set(facts[2 + 2 * i], facts[1 + 2 * i]); // [FACT, v, k, …]
    expect([...binding.keys()].every((k) => k >= keyToken(0) && k < keyToken(task.numKeys))).toBe(true);
    const query = row(ep.querySegment, 0);
    expect(query[0]).toBe(ASK);
    for (let t = 0; t < L; t++) {
      if (!ep.queryMask[t]) continue;
      expect(ep.queryTargets[t]).toBe(binding.get(query[t])); // the answer to key query[t]
      expect(ep.queryTargets[t]).toBeGreaterThanOrEqual(valueToken(task, 0));
    }
    expect(ep.queryMask.subarray(0, L).reduce((a, b) => a + b, 0)).toBe(FACTS);
    for (const d of ep.distractors) for (let i = 0; i < FACTS; i++) expect(binding.has(row(d, 0)[2 + 2 * i])).toBe(false);
    expect(row(ep.factSegment, 1).join()).not.toBe(facts.join());
  });

  test('memory on recalls facts across distractor segments; bank cleared and memory switched off fall to chance and fail the claim', () => {
    const tensorsBefore = tf.memory().numTensors;
    const model = new CognateModel(recallModelConfig(task, true), 3);
    trainRecall(model, task, { ...DEFAULT_TRAIN, steps: 80, batchSize: 16, factChoices: [FACTS], maxDistractors: DISTRACTORS, seed: 4 });
    const on = evaluateRecall(model, task, FACTS, DISTRACTORS, 32, 77, 32, true);
    const off = evaluateRecall(model, task, FACTS, DISTRACTORS, 32, 77, 32, false); // the same weights, memory never written or read
    model.dispose();
    console.log(`recall at K=${FACTS}, G=${DISTRACTORS} (chance ${chance}): memory on`, on, 'memory switched off', off);
    expect(on.sameSegment).toBeGreaterThanOrEqual(0.9); // the model can answer when the facts are in view
    expect(off.sameSegment).toBe(on.sameSegment); // (that path never touches the memory)
    expect(recallClaimHolds(on)).toBe(true);
    expect(on.bankCleared!).toBeLessThan(chance + 0.1);
    expect(recallClaimHolds(off)).toBe(false); // a memory that is switched off fails the claim
    expect(off.recall).toBeLessThan(chance + 0.1);
    expect(tf.memory().numTensors).toBe(tensorsBefore); // nothing leaks across training and evaluation
  });
});
