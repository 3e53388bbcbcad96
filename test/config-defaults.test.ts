// Defaults never contradict a user's valid setting: a default that depends on another field is derived
// from it (activities/*/config.ts), while explicit contradictions are still refused naming the field.
import { AgentForgeInputSchema } from '../activities/agent/config';
import { CognateInputSchema } from '../activities/cognate/config';

const cognate = (config: Record<string, unknown>) => CognateInputSchema.safeParse({ sessionId: 's', config });

describe('Cognate derived defaults', () => {
  test('the documented defaults are unchanged when nothing they depend on is set', () => {
    const r = cognate({});
    expect(r.success && [r.data.config.seqLen, r.data.config.nHeads, r.data.config.memTopK, r.data.config.minLearningRate]).toEqual([
      512, 4, 4, 2e-5,
    ]);
  });
  test('{"maxSeqLen":128} alone is valid: seqLen defaults to min(512, maxSeqLen)', () => {
    const r = cognate({ maxSeqLen: 128 });
    expect(r.success && r.data.config.seqLen).toBe(128);
  });
  test('dModel, memCapacity and learningRate shape the defaults of nHeads, memTopK and minLearningRate', () => {
    const r = cognate({ dModel: 36, memCapacity: 2, learningRate: 1e-5 });
    expect(r.success).toBe(true);
    if (!r.success) return;
    expect(r.data.config.nHeads).toBe(2); // 36 / 4 = 9 is odd (rotary needs even), 36 / 2 = 18
    expect(r.data.config.memTopK).toBe(2);
    expect(r.data.config.minLearningRate).toBeCloseTo(1e-6, 15);
  });
  test('explicit contradictions are still refused, naming the field', () => {
    const r = cognate({ seqLen: 256, maxSeqLen: 128 });
    expect(!r.success && r.error.issues.map((i) => i.path.join('.'))).toEqual(['config.seqLen']);
    const m = cognate({ learningRate: 1e-5, minLearningRate: 1e-4 });
    expect(!m.success && m.error.issues.map((i) => i.path.join('.'))).toEqual(['config.minLearningRate']);
  });
});

describe('Agent Forge derived defaults', () => {
  test('numHeads defaults to 8, or the largest power of two that divides hiddenSize', () => {
    const at = (hiddenSize?: number) => {
      const r = AgentForgeInputSchema.safeParse({ sessionId: 's', config: hiddenSize === undefined ? {} : { hiddenSize } });
      return r.success ? r.data.config.numHeads : r.error.message;
    };
    expect([at(), at(100), at(30), at(7)]).toEqual([8, 4, 2, 1]);
  });
});
