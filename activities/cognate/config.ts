// Cognate pretraining workflow input: the single source of its defaults, types and documentation.
// Mirrors the seed's TrainingConfig in camelCase. Pure: imported by the workflow, CLI, activities and engine.
import { z } from 'zod';
import { SafeName } from '../../common/validation';

export const DATASET_SOURCES = ['GSM8K', 'SVAMP', 'HotpotQA'] as const;
export const DATASET_MODES = ['download', 'offline', 'fixtures'] as const;
export const GROKFAST_MODES = ['ema', 'ma', 'off'] as const;
export const LONG_DOCUMENT_MODES = ['segments', 'windows'] as const;
export const MODEL_FOCUSES = ['reasoning', 'memory_integration', 'adaptive_computation'] as const;

// Defaults that depend on another field are derived from it (deriveModelDefaults, deriveOptimDefaults and
// the run's seqLen below), so a valid setting of one field never makes another field's default invalid:
// {"maxSeqLen": 128} alone gets seqLen 128, {"dModel": 36} gets 2 heads, {"memCapacity": 2} gets memTopK 2.

/** nHeads' default: 4, or the largest of 2 and 1 that divides dModel into an even head width (rotary positions). */
export function defaultHeads(dModel: number): number {
  return [4, 2, 1].find((h) => dModel % h === 0 && (dModel / h) % 2 === 0) ?? 4;
}

/** Architecture of the Cognate model. Defaults give 25M parameters. */
const ModelConfigFields = z.strictObject({
  /** Residual stream width. */
  dModel: z.number().int().min(8).max(8192).default(216),
  /** Transformer blocks (ACT may halt a position before the last). */
  nLayers: z.number().int().min(1).max(128).default(11),
  /** Attention heads; dModel / nHeads must be even for rotary positions. Default 4 (fewer when dModel needs it: defaultHeads). */
  nHeads: z.number().int().min(1).max(128).optional(),
  /** Token vocabulary; the tokenizer may be smaller, never larger. */
  vocabSize: z.number().int().min(16).max(1_000_000).default(32000),
  /** Longest sequence the rotary tables cover. */
  maxSeqLen: z.number().int().min(8).max(65536).default(4096),
  /** SwiGLU hidden width (1152 since issue 10, was 864: keeps the default at 24.1M parameters after the per-block memory cross-attention, 2.06M, gave way to the kNN memory). */
  dFF: z.number().int().min(4).max(65536).default(1152),
  /** ACT halts a position once its cumulative halting probability reaches this (1 - epsilon). */
  actThreshold: z.number().gt(0).max(1).default(0.99),
  /** ACT ponder cost weight tau: loss += tau * mean(N + R) over the scored positions (a long document's padding is not charged). */
  ponderCost: z.number().min(0).max(10).default(0.01),
  /** Enable adaptive computation time. Off: every position runs every block. */
  actEnabled: z.boolean().default(true),
  /** Unused since the LTM became a kNN memory of attention keys/values (issue 10): entries have the head width dModel / nHeads. Kept so existing configs parse. */
  dMem: z.number().int().min(4).max(8192).default(216),
  /** LTM slots per document stream (one stream per batch row; the oldest entry is forgotten first beyond this). */
  memCapacity: z.number().int().min(1).max(1_000_000).default(4096),
  /** Memories retrieved per query and head for the memory block's kNN attention. Default min(4, memCapacity). */
  memTopK: z.number().int().min(1).max(256).optional(),
  /** Enable the long-term memory read and write. */
  memEnabled: z.boolean().default(true),
  /** Block whose attention reads and writes the LTM (issue 10); -1: the middle block, floor(nLayers / 2). */
  memLayer: z.number().int().min(-1).max(127).default(-1),
  /** Write filter: null (default) writes every position, as Memorizing Transformers do; a number writes only tokens whose loss exceeded the running mean by this many standard deviations. */
  memSurpriseThreshold: z.number().nullable().default(null),
  /** Unused since issue 10 (the novelty test rejected distinct facts). Kept so existing configs parse. */
  memNoveltyThreshold: z.number().min(0).max(2).default(0.1),
});

type ModelFields = z.output<typeof ModelConfigFields>;
function deriveModelDefaults<C extends ModelFields>(c: C): C & { nHeads: number; memTopK: number } {
  return { ...c, nHeads: c.nHeads ?? defaultHeads(c.dModel), memTopK: c.memTopK ?? Math.min(4, c.memCapacity) };
}
export const ModelConfigSchema = ModelConfigFields.transform(deriveModelDefaults);

/** Optimisation: AdamW with GrokFast gradient filtering. */
const OptimConfigFields = z.strictObject({
  /** Peak learning rate (after warmup, before cosine decay). */
  learningRate: z.number().gt(0).max(1).default(2e-4),
  /** Learning rate at the end of the cosine decay. Default learningRate / 10. */
  minLearningRate: z.number().min(0).optional(),
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

type OptimFields = z.output<typeof OptimConfigFields>;
function deriveOptimDefaults<C extends OptimFields>(c: C): C & { minLearningRate: number } {
  return { ...c, minLearningRate: c.minLearningRate ?? c.learningRate / 10 };
}
export const OptimConfigSchema = OptimConfigFields.transform(deriveOptimDefaults);

/** Training sequence length when not set: 512, or maxSeqLen when that is shorter. */
export const DEFAULT_SEQ_LEN = 512;

/** Names of the model architecture fields (what a checkpoint or export must match). */
export const MODEL_CONFIG_KEYS = Object.keys(ModelConfigFields.shape) as (keyof ModelFields)[];

const CognateConfigFields = z.strictObject({
  ...ModelConfigFields.shape,
  ...OptimConfigFields.shape,
  /** Optimizer steps per model. */
  maxSteps: z.number().int().positive().max(10_000_000).default(2000),
  /**
   * ACT warmup: for this many steps the halting units are not trained and the ponder cost is off, so every
   * position runs every block while the blocks learn. Halting trained from step 0 is a ratchet: a position that
   * halts early puts no later block into its output, so nothing tells it that going deeper would pay
   * (README, bench:act). 0: halting trains from the first step.
   */
  actWarmupSteps: z.number().int().min(0).default(0),
  /** Steps over which the ponder cost then rises linearly from 0 to ponderCost; 0: all at once. */
  actPonderRampSteps: z.number().int().min(0).default(0),
  /**
   * Initial halting probability per block of a freshly initialised model, or of the halting units a fine-tuning
   * run adds to a parent without ACT (not of a resumed run or a parent's own halting units).
   * Default 1/(2 nLayers). A small value (0.01) makes a full-depth position's output nearly the last block's
   * state alone until halting is learnt, instead of mixing in the earlier blocks' states (README, bench:act).
   */
  actHaltingInit: z.number().gt(0).lt(1).optional(),
  /** Sequences per micro-batch. */
  batchSize: z.number().int().positive().max(4096).default(2),
  /** Micro-batches per optimizer step. */
  gradientAccumulationSteps: z.number().int().positive().max(1024).default(4),
  /** Training sequence length (tokens); at most maxSeqLen. Default min(512, maxSeqLen). */
  seqLen: z.number().int().min(8).optional(),
  /** Steps between checkpoints; a crash redoes at most this many. */
  saveSteps: z.number().int().positive().default(100),
  /**
   * Longest a training activity runs before it checkpoints and returns; the workflow then continues with a
   * new one (and with continue-as-new when its history asks for it), so a run's history stays bounded.
   */
  trainingChunkSeconds: z.number().int().min(1).max(86_400).default(1800),
  /**
   * Least time between two progress signals of one model (the `progress` query is this current). Each signal
   * costs ~4 history events, so it also sets how often a run continues as new (README "Runs of any length").
   */
  progressIntervalSeconds: z.number().min(0.1).max(3600).default(10),
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
  /**
   * How pretraining reads a document longer than one window (more than seqLen + 1 tokens: in the mixture, the
   * HotpotQA contexts with their question and answer). segments (the long-context mixture): one batch row reads
   * it segment by segment in order, its LTM stream carrying the earlier segments and cleared between examples,
   * while short examples stay random windows (a free row starts a long document with the long documents' share
   * of the documents). windows (before issue 10): every example is a random window and the bank keeps whatever
   * its row read before.
   */
  longDocuments: z.enum(LONG_DOCUMENT_MODES).default('segments'),
  /** Fraction of each source held out for validation when it has no split of its own. */
  validationFraction: z.number().gt(0).lt(1).default(0.1),
  /** A Hugging Face tokenizer.json to use; otherwise a byte-level BPE is trained on the corpus up to vocabSize. */
  tokenizerPath: z.string().optional(),
  /** Seeds initial weights, data order and the LTM: same seed, same run on the same backend. */
  seed: z
    .number()
    .int()
    .min(0)
    .max(2 ** 31 - 1)
    .default(1337),
});

export const CognateConfigSchema = CognateConfigFields.transform((c) => ({
  ...deriveOptimDefaults(deriveModelDefaults(c)),
  seqLen: c.seqLen ?? Math.min(DEFAULT_SEQ_LEN, c.maxSeqLen),
}));

export const CognateModelSpecSchema = z.strictObject({
  name: SafeName,
  /** Offset added to config.seed. */
  seedOffset: z.number().int().min(0).optional(),
  focus: z.enum(MODEL_FOCUSES).optional(),
});

/**
 * Continued pretraining / fine-tuning: start from an exported model (weights, LTM bank and tokenizer are
 * reused) instead of random weights: the session and model that produced it, or an export folder (relative
 * to, and inside, FORGE_DATA_DIR). The run's own datasetSources, learning-rate schedule and maxSteps apply;
 * model fields the input leaves unset are taken from the parent. Checked before anything is written.
 */
export const CognateInitFromSchema = z.union([
  z.strictObject({ sessionId: SafeName, model: SafeName }),
  z.strictObject({
    /** A Cognate export folder under FORGE_DATA_DIR (absolute, or relative to it). */
    path: z.string().min(1).max(4096),
  }),
]);

export const DEFAULT_MODELS: CognateModelSpec[] = [
  { name: 'cognate_foundation_1', seedOffset: 0, focus: 'reasoning' },
  { name: 'cognate_foundation_2', seedOffset: 1, focus: 'memory_integration' },
  { name: 'cognate_foundation_3', seedOffset: 2, focus: 'adaptive_computation' },
];

/** Checks across fields shared by the workflow input and the engine. */
export function checkModelConfig(c: ModelConfig & { seqLen?: number }, ctx: z.RefinementCtx, prefix: (string | number)[] = []): void {
  if (c.dModel % c.nHeads !== 0) ctx.addIssue({ code: 'custom', path: [...prefix, 'nHeads'], message: `must divide dModel (${c.dModel})` });
  else if ((c.dModel / c.nHeads) % 2 !== 0)
    ctx.addIssue({
      code: 'custom',
      path: [...prefix, 'nHeads'],
      message: `dModel / nHeads (${c.dModel / c.nHeads}) must be even for rotary positions`,
    });
  if (c.memLayer >= c.nLayers)
    ctx.addIssue({
      code: 'custom',
      path: [...prefix, 'memLayer'],
      message: `must be below nLayers (${c.nLayers}), or -1 for the middle block`,
    });
  if (c.memTopK > c.memCapacity)
    ctx.addIssue({ code: 'custom', path: [...prefix, 'memTopK'], message: `must not exceed memCapacity (${c.memCapacity})` });
  if (c.seqLen !== undefined && c.seqLen > c.maxSeqLen)
    ctx.addIssue({ code: 'custom', path: [...prefix, 'seqLen'], message: `must not exceed maxSeqLen (${c.maxSeqLen})` });
}

export const CognateInputSchema = z
  .strictObject({
    sessionId: SafeName,
    config: CognateConfigSchema.prefault({}),
    models: z.array(CognateModelSpecSchema).min(1).max(16).optional(),
    /** Start every model from this exported parent (see CognateInitFromSchema); omitted = random weights. */
    initFrom: CognateInitFromSchema.optional(),
  })
  .superRefine((input, ctx) => {
    checkModelConfig(input.config, ctx, ['config']);
    if (input.config.minLearningRate > input.config.learningRate) {
      ctx.addIssue({
        code: 'custom',
        path: ['config', 'minLearningRate'],
        message: `must not exceed learningRate (${input.config.learningRate})`,
      });
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
export type CognateInitFrom = z.output<typeof CognateInitFromSchema>;

// ---- Progress messages between the training activities and the workflow ----

/** One model's live training state, sent by trainModels at a bounded rate. */
export interface ModelProgressUpdate {
  model: string;
  phase: 'datasets' | 'training' | 'validation' | 'artifacts';
  step: number;
  totalSteps: number;
  loss: number | null;
  learningRate: number | null;
  tokensPerSecond?: number;
  valLoss?: number | null;
  message: string;
  resumedFromStep?: number;
}

/** The seed's TrainingProgress plus phase and per-model entries. */
export interface CognateProgress {
  progress: number;
  message: string;
  step: number;
  totalSteps: number;
  loss: number | null;
  learningRate: number | null;
  phase: 'validating' | 'datasets' | 'training' | 'artifacts' | 'completed' | 'failed' | 'cancelled';
  models: Record<string, ModelProgressUpdate>;
}

/** Signal name of ModelProgressUpdate (the workflow defines the signal with it; activities send it). */
export const MODEL_PROGRESS_SIGNAL = 'modelProgress';
