// Text generation from an exported Cognate model, as at inference: halted ACT positions skip their
// remaining blocks and every block reads the LTM bank the export carries (reads only; generation writes
// nothing to it). No KV cache: each new token recomputes the window, which is exact (everything is causal)
// and fine for the short samples the CLI and the demo print.
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { Rng } from '../../../common/rng';
import { loadTokenizer, type Tokenizer } from '../data/tokenizer';
import { loadModelFromExport } from './export';
import type { CognateModel } from './model';

export interface SampleOptions {
  /** Tokens to generate at most (stops early at end-of-text). */
  maxNewTokens: number;
  /** 0: greedy (argmax). Otherwise logits are divided by this before sampling. */
  temperature: number;
  /** Sample among the k most likely tokens only; 0 = all. Ignored when greedy. */
  topK: number;
  /** Seeds the sampling: same seed, same text. */
  seed: number;
}

export const SAMPLE_DEFAULTS: SampleOptions = { maxNewTokens: 40, temperature: 0, topK: 0, seed: 0 };

export interface Sample {
  prompt: string;
  text: string;
  /** Generated ids (prompt excluded). */
  tokens: number[];
  /** Mean blocks run per position over the generation steps (ACT at inference). */
  meanDepth: number;
  stoppedAtEos: boolean;
}

/** Index of the next token from one row of logits. */
export function pickToken(logits: Float32Array, opts: Pick<SampleOptions, 'temperature' | 'topK'>, rng: Rng): number {
  if (!(opts.temperature > 0)) {
    let best = 0;
    for (let i = 1; i < logits.length; i++) if (logits[i] > logits[best]) best = i;
    return best;
  }
  let candidates = Array.from(logits.keys());
  if (opts.topK > 0 && opts.topK < logits.length) candidates = candidates.sort((a, b) => logits[b] - logits[a]).slice(0, opts.topK);
  const max = Math.max(...candidates.map((i) => logits[i]));
  const weights = candidates.map((i) => Math.exp((logits[i] - max) / opts.temperature));
  return candidates[rng.categorical(weights)];
}

export function generate(model: CognateModel, tokenizer: Tokenizer, prompt: string, options: Partial<SampleOptions> = {}): Sample {
  // Unset (undefined) options keep their defaults.
  const opts: SampleOptions = { ...SAMPLE_DEFAULTS, ...Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)) };
  if (!Number.isInteger(opts.maxNewTokens) || opts.maxNewTokens < 1)
    throw new Error(`maxNewTokens must be a positive integer (got ${opts.maxNewTokens})`);
  if (!(opts.temperature >= 0)) throw new Error(`temperature must be >= 0 (got ${opts.temperature})`);
  if (!Number.isInteger(opts.topK) || opts.topK < 0) throw new Error(`topK must be a non-negative integer (got ${opts.topK})`);
  const ids = tokenizer.encode(prompt);
  if (ids.length === 0) throw new Error('the prompt encodes to no tokens');
  const rng = new Rng(opts.seed);
  const window = model.config.maxSeqLen;
  const out: number[] = [];
  let depth = 0;
  let stoppedAtEos = false;
  for (let step = 0; step < opts.maxNewTokens; step++) {
    const context = [...ids, ...out].slice(-window);
    const lastRow = tf.tidy(() => {
      const r = model.forward(tf.tensor2d([context], [1, context.length], 'int32'), { training: false });
      depth += r.meanDepth;
      return r.logits.slice([0, context.length - 1, 0], [1, 1, -1]).reshape([-1]);
    });
    const last = lastRow.dataSync() as Float32Array;
    lastRow.dispose();
    const next = pickToken(last, opts, rng);
    if (next === tokenizer.eosId) {
      stoppedAtEos = true;
      break;
    }
    out.push(next);
  }
  const steps = out.length + (stoppedAtEos ? 1 : 0);
  return { prompt, text: tokenizer.decode(out), tokens: out, meanDepth: steps ? depth / steps : 0, stoppedAtEos };
}

/** Load an exported model folder (manifest checked) with its tokenizer.json and generate. */
export function sampleFromExport(dir: string, prompt: string, options: Partial<SampleOptions> = {}): Sample {
  const tokenizer = loadTokenizer(path.join(dir, 'tokenizer.json'));
  const model = loadModelFromExport(dir);
  try {
    return generate(model, tokenizer, prompt, options);
  } finally {
    model.dispose();
  }
}
