// Smoke test of the mechanism bench/ltm-recall.ts relies on: its episode generator, a few training
// episodes with the memory on (trainer recipe: gradients, clipping, AdamW, then the LTM write), the fact
// states landing in the bank, and a lookup by a stored key returning the value written for that fact.
import * as tf from '@tensorflow/tfjs-core';
import { useTestBackend } from './helpers/backend';
import {
  ASK,
  clearMemory,
  DEFAULT_TASK,
  FACT,
  factBatch,
  inContextBatch,
  keyToken,
  makeEpisode,
  maskedAccuracy,
  queryBatch,
  recallModelConfig,
  recallOptimConfig,
  ROLE_VALUE,
  trainStep,
  valueToken,
  writtenRoles,
  type RecallTask,
} from '../bench/ltm-recall';
import { CognateModel } from '../activities/cognate/engine/model';
import { Rng } from '../common/rng';
import { makeOptimizer } from '../activities/cognate/engine/trainer';

const task: RecallTask = { ...DEFAULT_TASK, factsPerEpisode: 8, inContextQueries: 4 };

beforeAll(async () => {
  await useTestBackend();
});

describe('LTM recall benchmark', () => {
  test('episodes: fresh distinct keys, facts and questions laid out as documented', () => {
    const rng = new Rng(3);
    const a = makeEpisode(rng, task);
    const b = makeEpisode(rng, task);
    expect(new Set(a.keys).size).toBe(task.factsPerEpisode);
    expect(a.keys.every((k) => k >= 0 && k < task.numKeys)).toBe(true);
    expect(a.values.every((v) => v >= 0 && v < task.numValues)).toBe(true);
    expect(a.keys.join() + a.values.join()).not.toBe(b.keys.join() + b.values.join()); // drawn per episode
    const facts = factBatch(a, task);
    expect([facts.batchSize, facts.seqLen, facts.mask]).toEqual([task.factsPerEpisode, 3, null]);
    expect(Array.from(facts.inputs.subarray(0, 3))).toEqual([FACT, keyToken(a.keys[0]), valueToken(task, a.values[0])]);
    const order = [3, 1, 0, 2, 7, 6, 5, 4];
    const questions = queryBatch(a, task, order);
    expect(Array.from(questions.inputs.subarray(0, 2))).toEqual([ASK, keyToken(a.keys[3])]);
    expect(questions.targets[1]).toBe(valueToken(task, a.values[3])); // the answer, scored at position 1 only
    expect(Array.from(questions.mask!.subarray(0, 2))).toEqual([0, 1]);
    // in context: every fact asked once, each answer position preceded by ASK, k with the fact earlier in the window
    const context = inContextBatch(a, task, rng);
    let asked = 0;
    for (let r = 0; r < context.batchSize; r++) {
      for (let t = 0; t < context.seqLen; t++) {
        if (!context.mask![r * context.seqLen + t]) continue;
        asked++;
        const key = context.inputs[r * context.seqLen + t];
        const answer = context.targets[r * context.seqLen + t];
        expect(context.inputs[r * context.seqLen + t - 1]).toBe(ASK);
        const row = Array.from(context.inputs.subarray(r * context.seqLen, r * context.seqLen + t));
        const at = row.findIndex((tok, i) => tok === key && row[i - 1] === FACT);
        expect(row[at + 1]).toBe(answer);
      }
    }
    expect(asked).toBe(task.factsPerEpisode);
  });

  test('training with the memory on writes every fact state, and a stored key retrieves its fact', () => {
    const tensorsBefore = tf.memory().numTensors;
    const model = new CognateModel(recallModelConfig(task, true, -1e9), 5);
    const optimConfig = recallOptimConfig();
    const optimizer = makeOptimizer(model, optimConfig);
    const memory = model.memory!;
    const rng = new Rng(6);
    const step = (batches: Parameters<typeof trainStep>[2], write: boolean[]) => trainStep(model, optimizer, batches, { learningRate: optimConfig.learningRate, maxGradNorm: 1, write });
    let ep = makeEpisode(rng, task);
    for (let e = 0; e < 3; e++) {
      ep = makeEpisode(rng, task);
      clearMemory(memory);
      const facts = step([factBatch(ep, task)], [true]);
      expect(facts.offered).toHaveLength(1);
      expect(facts.offered[0].written).toBeGreaterThan(0);
      const answers = step([queryBatch(ep, task)], [false]);
      expect(Number.isFinite(answers.losses[0])).toBe(true);
    }
    const writesBefore = memory.stats().writes;
    const readsBefore = memory.stats().reads;
    expect(memory.size).toBeGreaterThan(0); // the last episode's facts are in the bank
    expect(memory.stats().reads).toBeGreaterThan(0); // its questions read them

    // a fresh episode: the step's write puts each fact's v-state (the one that has seen k and v) in the bank
    ep = makeEpisode(rng, task);
    clearMemory(memory);
    expect(memory.size).toBe(0);
    const { offered } = step([factBatch(ep, task)], [true]);
    const { byRole, slotOf } = writtenRoles(memory, offered[0]);
    expect(memory.stats().writes - writesBefore).toBe(offered[0].written);
    expect(byRole[ROLE_VALUE]).toBe(task.factsPerEpisode);

    // retrieval by a fact's stored key returns, first, the value stored for that fact: its v-state
    const state = memory.state();
    const d = state.config.dMem;
    for (let i = 0; i < task.factsPerEpisode; i++) {
      const slot = slotOf[i * 3 + ROLE_VALUE]!;
      const top = tf.tidy(() => memory.retrieve(tf.tensor2d(state.keys.slice(slot * d, (slot + 1) * d), [1, d]))!.values.dataSync());
      expect(Array.from(top.subarray(0, d))).toEqual(Array.from(offered[0].hidden.subarray((i * 3 + ROLE_VALUE) * d, (i * 3 + ROLE_VALUE + 1) * d)));
    }

    // the questions read the bank, and what they read changes the prediction
    const questions = queryBatch(ep, task);
    const logitsWith = tf.tidy(() => model.forward(tf.tensor2d(questions.inputs, [questions.batchSize, 2], 'int32'), { training: false }).logits.dataSync());
    expect(memory.stats().reads).toBeGreaterThan(readsBefore);
    clearMemory(memory);
    const logitsWithout = tf.tidy(() => model.forward(tf.tensor2d(questions.inputs, [questions.batchSize, 2], 'int32'), { training: false }).logits.dataSync());
    expect(Math.max(...logitsWith.map((x, j) => Math.abs(x - logitsWithout[j])))).toBeGreaterThan(1e-6);
    expect(maskedAccuracy(model, questions).total).toBe(task.factsPerEpisode);

    optimizer.dispose();
    model.dispose();
    expect(tf.memory().numTensors).toBe(tensorsBefore); // nothing leaked by the bench's step and evaluation helpers
  });
});
