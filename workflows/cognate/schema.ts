// Cognate pretraining workflow input: the single source of its defaults, types and documentation.
// Mirrors the seed's TrainingConfig in camelCase. Pure: imported by the workflow, CLI, activities and engine.
import { z } from 'zod';
import { SafeName } from '../../common/validation';

export const DATASET_SOURCES = ['GSM8K', 'SVAMP', 'HotpotQA'] as const;
export const DATASET_MODES = ['download', 'offline', 'fixtures'] as const;
export const GROKFAST_MODES = ['ema', 'ma', 'off'] as const;
export const MODEL_FOCUSES = ['reasoning', 'memory_integration', 'adaptive_computation'] as const;

/** Architecture of the Cognate model. Defaults give 25M parameters. */
export const ModelConfigSchema = z.strictObject({
  /** Residual stream width. */
  dModel: z.number().int().min(8).max(8192).default(216),
  /** Transformer blocks (ACT may halt a position before the last). */
  nLayers: z.number().int().min(1).max(128).default(11),
  /** Attention heads; dModel / nHeads must be even for rotary positions. */
  nHeads: z.number().int().min(1).max(128).default(4),
  /** Token vocabulary; the tokenizer may be smaller, never larger. */
  vocabSize: z.number().int().min(16).max(1_000_000).default(32000),
  /** Longest sequence the rotary tables cover. */
  maxSeqLen: z.number().int().min(8).max(65536).default(4096),
  /** SwiGLU hidden width. */
  /** SwiGLU hidden width (1152 since issue 10, was 864: keeps the default at 24.1M parameters after the per-block memory cross-attention, 2.06M, gave way to the kNN memory). */
  dFF: z.number().int().min(4).max(65536).default(1152),
  /** ACT halts a position once its cumulative halting probability reaches this (1 - epsilon). */
  actThreshold: z.number().gt(0).max(1).default(0.99),
  /** ACT ponder cost weight tau: loss += tau * mean(N + R). */
  ponderCost: z.number().min(0).max(10).default(0.01),
  /** Enable adaptive computation time. Off: every position runs every block. */
  actEnabled: z.boolean().default(true),
  /** Unused since the LTM became a kNN memory of attention keys/values (issue 10): entries have the head width dModel / nHeads. Kept so existing configs parse. */
  dMem: z.number().int().min(4).max(8192).default(216),
  /** LTM slots per document stream (one stream per batch row; the oldest entry is forgotten first beyond this). */
  memCapacity: z.number().int().min(1).max(1_000_000).default(4096),
  /** Memories retrieved per query and head for the memory block's kNN attention. */
  memTopK: z.number().int().min(1).max(256).default(4),
  /** Enable the long-term memory read and write. */
  memEnabled: z.boolean().default(true),
  /** Block whose attention reads and writes the LTM (issue 10); -1: the middle block, floor(nLayers / 2). */
  memLayer: z.number().int().min(-1).max(127).default(-1),
  /** Write filter: null (default) writes every position, as Memorizing Transformers do; a number writes only tokens whose loss exceeded the running mean by this many standard deviations. */
  memSurpriseThreshold: z.number().nullable().default(null),
  /** Unused since issue 10 (the novelty test rejected distinct facts). Kept so existing configs parse. */
  memNoveltyThreshold: z.number().min(0).max(2).default(0.1),
});

/** Optimisation: AdamW with GrokFast gradient filtering. */
export const OptimConfigSchema = z.strictObject({
  /** Peak learning rate (after warmup, before cosine decay). */
  learningRate: z.number().gt(0).max(1).default(2e-4),
  /** Learning rate at the end of the cosine decay. */
  minLearningRate: z.number().min(0).default(2e-5),
  /** Linear warmup steps. */
  warmupSteps: z.number().int().min(0).default(100),
  /** AdamW decoupled weight decay. */
  weightDecay: z.number().min(0).max(1).default(0.01),
  adamBeta1: z.number().min(0).lt(1).default(0.9),
  adamBeta2: z.number().min(0).lt(1).default(0.95),
  adamEpsilon: z.number().gt(0).default(1e-8),
  /** Clip the global gradient norm to this; 0 disables. */
  maxGradNorm: z.number().min(0).default(1.0),
  /** GrokFast filter: ema (Lee et al. 2024), ma (moving average over a window) or off. */
  grokfastMode: z.enum(GROKFAST_MODES).default('ema'),
  /** GrokFast-EMA momentum alpha. */
  grokfastAlpha: z.number().min(0).lt(1).default(0.98),
  /** GrokFast amplification lambda: g <- g + lambda * filtered. */
  grokfastLamb: z.number().min(0).default(2.0),
  /** GrokFast-MA window (steps). */
  grokfastWindow: z.number().int().min(1).max(1000).default(100),
});

export const CognateConfigSchema = z.strictObject({
  ...ModelConfigSchema.shape,
  ...OptimConfigSchema.shape,
  /** Optimizer steps per model. */
  maxSteps: z.number().int().positive().max(10_000_000).default(2000),
  /** Sequences per micro-batch. */
  batchSize: z.number().int().positive().max(4096).default(2),
  /** Micro-batches per optimizer step. */
  gradientAccumulationSteps: z.number().int().positive().max(1024).default(4),
  /** Training sequence length (tokens); at most maxSeqLen. */
  seqLen: z.number().int().min(8).default(512),
  /** Steps between checkpoints; a crash redoes at most this many. */
  saveSteps: z.number().int().positive().default(100),
  /** Checkpoints kept per model. */
  keepCheckpoints: z.number().int().min(1).max(100).default(3),
  /** Steps between validation passes. */
  evalSteps: z.number().int().positive().default(200),
  /** Held-out sequences per validation pass. */
  evalBatches: z.number().int().positive().default(8),
  /** Training examples taken across sources. */
  maxTrainSamples: z.number().int().positive().default(5000),
  /** Validation examples taken across sources. */
  maxEvalSamples: z.number().int().positive().default(500),
  /** Datasets to pretrain on. */
  datasetSources: z.array(z.enum(DATASET_SOURCES)).min(1).default(['GSM8K', 'SVAMP', 'HotpotQA']),
  /** download: the Hugging Face hub with a local cache; offline: cache and local files only; fixtures: the small files in the repo. */
  datasetMode: z.enum(DATASET_MODES).default('download'),
  /** Folder with the original files (gsm8k/*.jsonl, svamp/*.json, hotpotqa/*.json) used in offline mode. */
  localDatasetDir: z.string().optional(),
  /** Fraction of training examples from short sources (GSM8K, SVAMP); the rest is long (HotpotQA). */
  shortFraction: z.number().min(0).max(1).default(0.7),
  /** Fraction of each source held out for validation when it has no split of its own. */
  validationFraction: z.number().gt(0).lt(1).default(0.1),
  /** A Hugging Face tokenizer.json to use; otherwise a byte-level BPE is trained on the corpus up to vocabSize. */
  tokenizerPath: z.string().optional(),
  /** Seeds initial weights, data order and the LTM: same seed, same run on the same backend. */
  seed: z.number().int().min(0).max(2 ** 31 - 1).default(1337),
});

export const CognateModelSpecSchema = z.strictObject({
  name: SafeName,
  /** Offset added to config.seed. */
  seedOffset: z.number().int().min(0).optional(),
  focus: z.enum(MODEL_FOCUSES).optional(),
});

export const DEFAULT_MODELS: CognateModelSpec[] = [
  { name: 'cognate_foundation_1', seedOffset: 0, focus: 'reasoning' },
  { name: 'cognate_foundation_2', seedOffset: 1, focus: 'memory_integration' },
  { name: 'cognate_foundation_3', seedOffset: 2, focus: 'adaptive_computation' },
];

/** Checks across fields shared by the workflow input and the engine. */
export function checkModelConfig(c: z.output<typeof ModelConfigSchema> & { seqLen?: number }, ctx: z.RefinementCtx, prefix: (string | number)[] = []): void {
  if (c.dModel % c.nHeads !== 0) ctx.addIssue({ code: 'custom', path: [...prefix, 'nHeads'], message: `must divide dModel (${c.dModel})` });
  else if ((c.dModel / c.nHeads) % 2 !== 0) ctx.addIssue({ code: 'custom', path: [...prefix, 'nHeads'], message: `dModel / nHeads (${c.dModel / c.nHeads}) must be even for rotary positions` });
  if (c.memLayer >= c.nLayers) ctx.addIssue({ code: 'custom', path: [...prefix, 'memLayer'], message: `must be below nLayers (${c.nLayers}), or -1 for the middle block` });
  if (c.memTopK > c.memCapacity) ctx.addIssue({ code: 'custom', path: [...prefix, 'memTopK'], message: `must not exceed memCapacity (${c.memCapacity})` });
  if (c.seqLen !== undefined && c.seqLen > c.maxSeqLen) ctx.addIssue({ code: 'custom', path: [...prefix, 'seqLen'], message: `must not exceed maxSeqLen (${c.maxSeqLen})` });
}

export const CognateInputSchema = z
  .strictObject({
    sessionId: SafeName,
    config: CognateConfigSchema.prefault({}),
    models: z.array(CognateModelSpecSchema).min(1).max(16).optional(),
  })
  .superRefine((input, ctx) => {
    checkModelConfig(input.config, ctx, ['config']);
    if (input.config.minLearningRate > input.config.learningRate) {
      ctx.addIssue({ code: 'custom', path: ['config', 'minLearningRate'], message: `must not exceed learningRate (${input.config.learningRate})` });
    }
    const names = new Set<string>();
    (input.models ?? []).forEach((m, i) => {
      if (names.has(m.name)) ctx.addIssue({ code: 'custom', path: ['models', i, 'name'], message: `duplicate model name "${m.name}"` });
      names.add(m.name);
    });
  });

export type ModelConfig = z.output<typeof ModelConfigSchema>;
export type OptimConfig = z.output<typeof OptimConfigSchema>;
export type CognateConfig = z.output<typeof CognateConfigSchema>;
export type CognateModelSpec = z.output<typeof CognateModelSpecSchema>;
export type CognateInput = z.input<typeof CognateInputSchema>;
export type CognateRequest = z.output<typeof CognateInputSchema>;
