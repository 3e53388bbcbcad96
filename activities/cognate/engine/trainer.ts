// The Cognate training loop. Runs in a child process (train.child.ts) and reads top to bottom:
// open data → build model/optimizer/filter → resume → for each step: micro-batches (each followed by its LTM write) → clip → GrokFast →
// AdamW → events, validation, checkpoints → summary.
// Same seed, same backend ⇒ same losses, also across a stop and resume (everything that evolves is checkpointed).
// A stop request is honoured at the next micro-batch boundary: the unfinished step is dropped (its data
// position rewound) and the state after the last whole step is checkpointed, so a resume redoes at most
// that one step. `chunkSeconds` ends a call after a time budget the same way, at a step boundary.
import * as tf from '@tensorflow/tfjs-core';
import { PIPELINE_BACKEND, backendInfo, initBackend, type BackendChoice, type BackendInfo } from '../../../common/backend';
import { NonRetryableError, type ChildContext } from '../../../common/child';
import { CognateConfigSchema, MODEL_CONFIG_KEYS, type CognateConfig, type ModelConfig, type OptimConfig } from '../config';
import { loadLatestCheckpoint, saveCheckpoint, toTensorState, type TensorState } from '../../../common/checkpoint';
import { openDataset, TrainSampler, validationBatches, type SamplerState, type TokenBatch } from './data';
import { GrokFast, type GrokFastSettings, type GrokFastState } from './grokfast';
import { loadCognateParent, type CognateParentRef } from './init-from';
import { crossEntropyPerRow } from './layers';
import type { LtmState, LtmStats } from './ltm';
import { CognateModel, type MemoryEntries } from './model';
import { AdamW, clipByGlobalNorm, globalNorm, GradientAccumulator, type AdamWState } from '../../../common/optim';
import { actScheduleAt, learningRateAt } from './schedule';

export interface TrainJob {
  config: CognateConfig;
  /** Seeds the initial weights, the LTM and (offset) the data order. */
  seed: number;
  datasetDir: string;
  checkpointDir: string;
  modelName: string;
  /** tfjs backend; default: FORGE_TF_BACKEND or auto (see common/backend). */
  backend?: BackendChoice;
  /** Least time between two step events (the last step is always reported). Default 1 s. */
  progressIntervalMs?: number;
  /** Continued pretraining / fine-tuning: start from this exported parent (on a fresh start only; see init-from.ts). */
  initFrom?: CognateParentRef;
  /** Train at most this long, then checkpoint and return (finalStep < maxSteps, stopped false). Unset: to the end. */
  chunkSeconds?: number;
  /**
   * Where the caller expects training to continue (the previous chunk's last step; null: from any checkpoint)
   * and the activity attempt: a checkpoint there on a first attempt is a planned continuation, anything else a resume.
   */
  continuation?: { fromStep: number | null; attempt: number };
}

/** The parent a fine-tuning run started from, and the validation loss of its weights on this run's held-out data. */
export interface InitFromRecord {
  sessionId: string;
  model: string;
  dir: string;
  weightsSha256: string;
  tokenizerSha256: string;
  /** The parent, before any step of this run, on this run's validation windows (the chosen datasets). */
  validationBefore: ValidationResult;
}

export type TrainEvent =
  | { kind: 'started'; model: string; totalSteps: number; parameters: number; backend: string; device: string }
  | { kind: 'resumed'; fromStep: number; path: string }
  | { kind: 'continued'; fromStep: number; path: string }
  | {
      kind: 'step';
      step: number;
      totalSteps: number;
      loss: number;
      ce: number;
      ponderCost: number;
      meanDepth: number;
      learningRate: number;
      tokensPerSecond: number;
      gradNorm: number;
      microBatchSeconds: number;
      ltmFill?: number;
    }
  | { kind: 'stopping'; step: number; abandonedMicroBatches: number }
  | ({ kind: 'validation' } & ValidationResult)
  | { kind: 'checkpoint'; step: number; path: string; bytes: number; seconds: number }
  | { kind: 'warning'; message: string };

export interface ValidationResult {
  step: number;
  /** Mean next-token cross-entropy (nats) over the held-out windows. */
  loss: number;
  perplexity: number;
  tokenAccuracy: number;
  meanDepth: number;
  tokens: number;
}

export interface TrainSummary {
  modelName: string;
  finalStep: number;
  totalSteps: number;
  stopped: boolean;
  parameters: { total: number; breakdown: Record<string, number> };
  /** Training loss at most MAX_CURVE_POINTS points (the stride doubles as training goes on). */
  lossCurve: CurvePoint[];
  finalLoss: number | null;
  validation: ValidationResult | null;
  validationHistory: ValidationResult[];
  act: { enabled: boolean; meanDepth: number | null; lastMeanDepth: number | null; nLayers: number };
  ltm: LtmStats | null;
  grokfast: GrokFastSettings;
  optimizer: {
    name: 'AdamW';
    learningRate: number;
    minLearningRate: number;
    warmupSteps: number;
    weightDecay: number;
    betas: [number, number];
    maxGradNorm: number;
    gradientAccumulationSteps: number;
  };
  backend: BackendInfo;
  /** Times this run continued from a checkpoint, and the step of the latest one. */
  resumes: number;
  resumedFromStep: number | null;
  tokensSeen: number;
  /** Training throughput of this process (excludes validation and checkpoint time). */
  tokensPerSecond: number | null;
  checkpoint: { step: number; path: string } | null;
  seconds: number;
  /** Fine-tuning runs: the parent and the validation loss before this run's first step. */
  initFrom: InitFromRecord | null;
}

const MAX_CURVE_POINTS = 512;
const MAX_VALIDATIONS_KEPT = 64;
const CHECKPOINT_FORMAT = 'cognate-train/v1';

/** One kept point of the training curve; learningRate is absent in checkpoints written before it was recorded. */
export interface CurvePoint {
  step: number;
  loss: number;
  learningRate?: number;
}

/** Everything about the run's history that the summary needs; checkpointed so a resumed summary is whole. */
export interface Progress {
  lossCurve: CurvePoint[];
  curveStride: number;
  lastLoss: number | null;
  validations: ValidationResult[];
  resumes: number;
  /** Step of the latest resume (absent in checkpoints written before it was kept, and before any resume). */
  lastResumedFromStep?: number;
  tokensSeen: number;
  depthSum: number;
  depthCount: number;
  lastDepth: number | null;
  /** Fine-tuning runs: the parent (checkpointed, so a resumed run still reports it and never reloads it). */
  initFrom?: InitFromRecord;
}

export interface CheckpointState {
  format: typeof CHECKPOINT_FORMAT;
  modelName: string;
  seed: number;
  config: CognateConfig;
  modelConfig: ModelConfig;
  backend: BackendInfo;
  step: number;
  weights: Record<string, TensorState>;
  optimizer: AdamWState;
  grokfast: GrokFastState;
  memory: LtmState | null;
  sampler: SamplerState;
  progress: Progress;
}

/** The objects whose state makes up a training run. */
export interface TrainingParts {
  model: CognateModel;
  optimizer: AdamW;
  grokfast: GrokFast;
  sampler: TrainSampler;
  progress: Progress;
}

/** Everything that evolves during training, as plain data for saveCheckpoint. */
export function captureTrainingState(
  p: TrainingParts & { job: Pick<TrainJob, 'modelName' | 'seed' | 'config'>; modelConfig: ModelConfig; backend: BackendInfo; step: number },
): CheckpointState {
  return {
    format: CHECKPOINT_FORMAT,
    modelName: p.job.modelName,
    seed: p.job.seed,
    config: p.job.config,
    modelConfig: p.modelConfig,
    backend: p.backend,
    step: p.step,
    weights: Object.fromEntries(p.model.params.map(({ name, variable }) => [name, toTensorState(variable)])),
    optimizer: p.optimizer.state(),
    grokfast: p.grokfast.state(),
    memory: p.model.memory ? p.model.memory.state() : null,
    sampler: p.sampler.state(),
    progress: p.progress,
  };
}

/** Put a captured state back into live objects (the caller checked it belongs to this run). */
export function restoreTrainingState(s: CheckpointState, p: TrainingParts): void {
  for (const { name, variable } of p.model.params) {
    const w = s.weights[name];
    if (!w || w.shape.join(',') !== variable.shape.join(','))
      throw new NonRetryableError(`checkpoint has no matching weights for "${name}"`);
    tf.tidy(() => variable.assign(tf.tensor(w.data, w.shape, 'float32')));
  }
  p.optimizer.load(s.optimizer);
  p.grokfast.load(s.grokfast);
  if (p.model.memory && s.memory) p.model.memory.load(s.memory);
  p.sampler.load(s.sampler);
  Object.assign(p.progress, s.progress);
}

export function makeOptimizer(model: CognateModel, config: OptimConfig): AdamW {
  return new AdamW(model.params, {
    beta1: config.adamBeta1,
    beta2: config.adamBeta2,
    epsilon: config.adamEpsilon,
    weightDecay: config.weightDecay,
    decoupled: true,
  });
}

export function makeGrokFast(config: OptimConfig): GrokFast {
  return new GrokFast({
    mode: config.grokfastMode,
    alpha: config.grokfastAlpha,
    lamb: config.grokfastLamb,
    window: config.grokfastWindow,
    warmup: true,
  });
}

export function emptyProgress(): Progress {
  return {
    lossCurve: [],
    curveStride: 1,
    lastLoss: null,
    validations: [],
    resumes: 0,
    tokensSeen: 0,
    depthSum: 0,
    depthCount: 0,
    lastDepth: null,
  };
}

/** Keeps every stride-th step; when full, drops every other point and doubles the stride. */
function recordLoss(p: Progress, step: number, loss: number, learningRate: number): void {
  p.lastLoss = loss;
  if (step % p.curveStride !== 0) return;
  p.lossCurve.push({ step, loss, learningRate });
  if (p.lossCurve.length > MAX_CURVE_POINTS) {
    p.curveStride *= 2;
    p.lossCurve = p.lossCurve.filter((pt) => pt.step % p.curveStride === 0);
  }
}

export function modelConfigOf(config: CognateConfig): ModelConfig {
  const keys = MODEL_CONFIG_KEYS;
  return Object.fromEntries(keys.map((k) => [k, config[k]])) as ModelConfig;
}

/** Data order gets its own stream, so changing how weights are initialised never changes which windows are read. */
export function dataSeedOf(seed: number): number {
  return (seed ^ 0x5eed_da7a) >>> 0;
}

export async function train(job: TrainJob, ctx: ChildContext<TrainEvent>): Promise<TrainSummary> {
  const started = performance.now();
  const { config, seed } = job;
  const warn = (message: string): void => {
    console.warn(`[cognate ${job.modelName}] ${message}`);
    ctx.emit({ kind: 'warning', message });
  };
  if (config.seqLen > config.maxSeqLen) throw new NonRetryableError(`seqLen ${config.seqLen} exceeds maxSeqLen ${config.maxSeqLen}`);
  const backend = await initBackend(job.backend, PIPELINE_BACKEND.cognate);

  // --- data -------------------------------------------------------------------------------------
  const dataset = openDataset(job.datasetDir, config.vocabSize);
  const { eosId, padId } = dataset.manifest;
  const sampler = new TrainSampler(dataset.train, config.seqLen, config.batchSize, dataSeedOf(seed), {
    mode: config.longDocuments,
    eosId,
    padId,
  });
  // Segments mode: a bank stream holds its row's current document only, so the held-out windows (no earlier segments) read no memory.
  const evalMemory = config.longDocuments === 'segments' ? 'none' : 'bank';
  const heldOut = validationBatches(dataset.validation, config.seqLen, config.batchSize, config.evalBatches);

  // --- model, optimizer, gradient filter --------------------------------------------------------
  const modelConfig = modelConfigOf(config);
  const model = new CognateModel(modelConfig, seed);
  // A resume or a parent's weights (below) overwrite it: only a fresh model, or halting units a parent without ACT lacks, keep this start.
  if (config.actHaltingInit !== undefined) model.initHalting(config.actHaltingInit); // no-op without ACT (no halting units)
  const parameters = model.parameterCount();
  const optimizer = makeOptimizer(model, config);
  const grokfast = makeGrokFast(config);
  const progress = emptyProgress();
  if (config.grokfastMode === 'ma') {
    const gib = (config.grokfastWindow * parameters.total * 4) / 2 ** 30;
    if (gib > 2)
      warn(
        `GrokFast-MA keeps ${config.grokfastWindow} gradients per parameter: ${gib.toFixed(1)} GiB in memory and in every checkpoint (EMA keeps one)`,
      );
  }
  ctx.emit({
    kind: 'started',
    model: job.modelName,
    totalSteps: config.maxSteps,
    parameters: parameters.total,
    backend: backend.backend,
    device: backend.device,
  });

  // --- resume -----------------------------------------------------------------------------------
  let step = 0;
  let lastCheckpoint: { step: number; path: string } | null = null;
  const saved = loadLatestCheckpoint<CheckpointState>(job.checkpointDir, warn);
  if (saved) {
    const s = saved.state;
    checkResumable(s, job, modelConfig, warn, backend);
    restoreTrainingState(s, { model, optimizer, grokfast, sampler, progress });
    step = s.step;
    lastCheckpoint = { step, path: saved.path };
    const planned =
      job.continuation !== undefined &&
      job.continuation.attempt === 1 &&
      (job.continuation.fromStep === null || job.continuation.fromStep === step);
    if (planned) {
      ctx.emit({ kind: 'continued', fromStep: step, path: saved.path });
    } else {
      progress.resumes++;
      progress.lastResumedFromStep = step;
      ctx.emit({ kind: 'resumed', fromStep: step, path: saved.path });
    }
  } else if (job.initFrom) {
    // Only on a fresh start: a retry resumes from this run's own checkpoint above, never from the parent.
    loadCognateParent(job.initFrom, model);
    const before = evaluate(model, heldOut, 0, evalMemory);
    const { sessionId, model: parentModel, dir, weightsSha256, tokenizerSha256 } = job.initFrom;
    progress.initFrom = { sessionId, model: parentModel, dir, weightsSha256, tokenizerSha256, validationBefore: before };
    ctx.emit({ kind: 'validation', ...before });
  }

  const save = (): void => {
    const state = captureTrainingState({ job, modelConfig, backend, step, model, optimizer, grokfast, sampler, progress });
    const written = saveCheckpoint(job.checkpointDir, step, state, config.keepCheckpoints);
    lastCheckpoint = { step, path: written.path };
    ctx.emit({ kind: 'checkpoint', step, path: written.path, bytes: written.bytes, seconds: written.seconds });
  };

  const validate = (): ValidationResult => {
    const result = evaluate(model, heldOut, step, evalMemory);
    progress.validations.push(result);
    if (progress.validations.length > MAX_VALIDATIONS_KEPT)
      progress.validations.splice(0, progress.validations.length - MAX_VALIDATIONS_KEPT);
    ctx.emit({ kind: 'validation', ...result });
    return result;
  };

  // --- training loop ----------------------------------------------------------------------------
  const tokensPerStep = config.batchSize * config.seqLen * config.gradientAccumulationSteps;
  const intervalMs = job.progressIntervalMs ?? 1000;
  let lastEmit = -Infinity;
  let tokensSinceEmit = 0;
  let timeSinceEmit = 0;
  let trainSeconds = 0;
  let trainTokens = 0;
  let stopped = false;
  let microBatchSeconds = 0;
  const chunkDeadline = job.chunkSeconds !== undefined ? started + job.chunkSeconds * 1000 : Infinity;
  const varNames = model.params.map((p) => p.variable.name);

  while (step < config.maxSteps) {
    if (ctx.stopRequested()) {
      stopped = true;
      break;
    }
    const stepStarted = performance.now();
    const learningRate = learningRateAt(step, config, config.maxSteps);
    const act = actScheduleAt(step, config);
    // What a step's micro-batches change before the update: the data position and the LTM (each micro-batch writes its segment).
    const canAbandon = config.gradientAccumulationSteps > 1;
    const samplerAtStepStart = sampler.state();
    const memoryAtStepStart = canAbandon && model.memory ? model.memory.state() : null;

    // Forward/backward over micro-batches; the step sees their mean gradient (one large batch).
    const accumulator = new GradientAccumulator();
    const totals = { loss: 0, ce: 0, ponderCost: 0, meanDepth: 0 };
    let abandoned = false;
    for (let micro = 0; micro < config.gradientAccumulationSteps; micro++) {
      const microStarted = performance.now();
      const batch = sampler.nextBatch();
      const { grads, scalars } = microStep(model, batch, varNames, act);
      accumulator.add(grads);
      tf.dispose(grads);
      for (const k of Object.keys(totals) as (keyof typeof totals)[]) totals[k] += scalars[k] / config.gradientAccumulationSteps;
      microBatchSeconds = (performance.now() - microStarted) / 1000;
      if (micro < config.gradientAccumulationSteps - 1) {
        await new Promise((resolve) => setImmediate(resolve)); // let a stop message in between micro-batches
        if (ctx.stopRequested()) {
          // Drop the unfinished step: nothing of it reached the weights, optimizer or filter; the LTM and data position go back.
          tf.dispose(accumulator.takeMean());
          sampler.load(samplerAtStepStart);
          if (memoryAtStepStart && model.memory) model.memory.load(memoryAtStepStart);
          ctx.emit({ kind: 'stopping', step, abandonedMicroBatches: micro + 1 });
          abandoned = true;
          break;
        }
      }
    }
    if (abandoned) {
      stopped = true;
      break;
    }
    const meanGrads = accumulator.takeMean();
    // Clip the raw gradient before GrokFast: a spike from one bad batch would otherwise live on in the EMA for ~1/(1-alpha) steps.
    const gradNorm = globalNorm(meanGrads);
    const clipped = clipByGlobalNorm(meanGrads, config.maxGradNorm, gradNorm);
    const filtered = grokfast.apply(clipped);
    optimizer.update(filtered, learningRate);
    tf.dispose([meanGrads, clipped, filtered]);
    step++;

    const seconds = (performance.now() - stepStarted) / 1000;
    trainSeconds += seconds;
    trainTokens += tokensPerStep;
    progress.tokensSeen += tokensPerStep;
    progress.depthSum += totals.meanDepth;
    progress.depthCount++;
    progress.lastDepth = totals.meanDepth;
    recordLoss(progress, step, totals.loss, learningRate);
    if (!Number.isFinite(totals.loss))
      throw new NonRetryableError(
        `loss became ${totals.loss} at step ${step} (learning rate ${learningRate}); lower learningRate or enable maxGradNorm`,
      );

    tokensSinceEmit += tokensPerStep;
    timeSinceEmit += seconds;
    const now = performance.now();
    if (now - lastEmit >= intervalMs || step === config.maxSteps) {
      const ltm = model.memory?.stats();
      const ltmFill = ltm ? ltm.fill / (ltm.capacity * Math.max(1, ltm.streams)) : undefined; // share of LTM slots in use (capacity is per document stream)
      ctx.emit({
        kind: 'step',
        step,
        totalSteps: config.maxSteps,
        ...totals,
        learningRate,
        tokensPerSecond: tokensSinceEmit / timeSinceEmit,
        gradNorm,
        microBatchSeconds,
        ltmFill,
      });
      lastEmit = now;
      tokensSinceEmit = 0;
      timeSinceEmit = 0;
    }
    // Validate before saving: validation reads the LTM (its LRU clock), and a resumed run must see that too.
    if (step % config.evalSteps === 0 || step === config.maxSteps) validate();
    if (step % config.saveSteps === 0 || step === config.maxSteps) save();
    await new Promise((resolve) => setImmediate(resolve)); // let a stop message in
    if (performance.now() >= chunkDeadline && step < config.maxSteps) break; // the chunk's time is up
  }

  if (lastCheckpoint?.step !== step) save(); // stopped, or the end of a chunk
  const lastValidation = progress.validations.at(-1) ?? null;
  const summary: TrainSummary = {
    modelName: job.modelName,
    finalStep: step,
    totalSteps: config.maxSteps,
    stopped,
    parameters,
    lossCurve: progress.lossCurve,
    finalLoss: progress.lastLoss,
    validation: lastValidation,
    validationHistory: progress.validations,
    act: {
      enabled: config.actEnabled,
      meanDepth: progress.depthCount ? progress.depthSum / progress.depthCount : null,
      lastMeanDepth: progress.lastDepth,
      nLayers: config.nLayers,
    },
    ltm: model.memory ? model.memory.stats() : null,
    grokfast: grokfast.settings,
    optimizer: {
      name: 'AdamW',
      learningRate: config.learningRate,
      minLearningRate: config.minLearningRate,
      warmupSteps: config.warmupSteps,
      weightDecay: config.weightDecay,
      betas: [config.adamBeta1, config.adamBeta2],
      maxGradNorm: config.maxGradNorm,
      gradientAccumulationSteps: config.gradientAccumulationSteps,
    },
    backend: backendInfo(),
    resumes: progress.resumes,
    // From the checkpointed record, not only this call: a call that resumed may be cancelled for a roll-over
    // before its result reaches the workflow, and the resume must still be reported by a later one.
    resumedFromStep: progress.lastResumedFromStep ?? null,
    tokensSeen: progress.tokensSeen,
    tokensPerSecond: trainSeconds > 0 ? trainTokens / trainSeconds : null,
    checkpoint: lastCheckpoint,
    seconds: (performance.now() - started) / 1000,
    initFrom: progress.initFrom ?? null,
  };
  optimizer.dispose();
  grokfast.dispose();
  model.dispose();
  return summary;
}

/**
 * One micro-batch (exported for its test): loss and gradients, then the LTM write of its keys/values (outside
 * the tape), so the next micro-batch, which continues each row's document with its next segment, reads this
 * one. Rows that start a new example (batch.resetRows) have their stream cleared first; padded positions are
 * neither scored, nor charged ponder cost, nor written. `act` (actScheduleAt): the ponder cost enters the loss
 * scaled, and during the ACT warmup the halting units get no gradient.
 */
export function microStep(
  model: CognateModel,
  batch: TokenBatch,
  varNames: string[],
  act: { trainHalting: boolean; ponderScale: number },
): { grads: tf.NamedTensorMap; scalars: { loss: number; ce: number; ponderCost: number; meanDepth: number } } {
  let ce!: tf.Scalar;
  let ponderCost!: tf.Scalar;
  let meanDepth = 0;
  let written: { entries: MemoryEntries; tokenLosses: tf.Tensor2D } | null = null;
  if (batch.resetRows && batch.resetRows.length > 0) model.memory?.resetStreams(batch.resetRows);
  const tokens = tf.tensor2d(batch.inputs, [batch.batchSize, batch.seqLen], 'int32');
  const targets = tf.tensor2d(batch.targets, [batch.batchSize, batch.seqLen], 'int32');
  const mask = batch.mask ? tf.tensor2d(batch.mask, [batch.batchSize, batch.seqLen], 'float32') : undefined;
  const { value, grads } = tf.variableGrads(() => {
    const out = model.loss(tokens, targets, mask, { training: true, skipHalted: 'auto' }); // see ForwardOptions.skipHalted
    ce = tf.keep(out.ce);
    ponderCost = tf.keep(out.ponderCost.mul(act.ponderScale)); // over the real positions (loss weights it by the mask)
    meanDepth = out.meanDepth;
    if (out.memoryEntries)
      written = {
        entries: { keys: tf.keep(out.memoryEntries.keys), values: tf.keep(out.memoryEntries.values) },
        tokenLosses: tf.keep(out.tokenLosses),
      };
    return out.ce.add(ponderCost);
  });
  if (written) {
    const { entries, tokenLosses } = written as { entries: MemoryEntries; tokenLosses: tf.Tensor2D };
    model.writeMemory(entries, tokenLosses, mask);
    tf.dispose([entries.keys, entries.values, tokenLosses]);
  }
  const scalars = { loss: value.dataSync()[0], ce: ce.dataSync()[0], ponderCost: ponderCost.dataSync()[0], meanDepth };
  // variableGrads names gradients by tfjs variable name; the optimizer and GrokFast key by parameter name.
  const byParam: tf.NamedTensorMap = {};
  const paramNames = model.params.map((p) => p.name);
  varNames.forEach((v, i) => {
    if (!grads[v]) return;
    if (!act.trainHalting && paramNames[i].includes('.halting.')) grads[v].dispose();
    else byParam[paramNames[i]] = grads[v];
  });
  tf.dispose([value, ce, ponderCost, tokens, targets, ...(mask ? [mask] : [])]);
  return { grads: byParam, scalars };
}

/** Mean cross-entropy, perplexity and next-token accuracy on the fixed held-out windows. */
export function evaluate(model: CognateModel, batches: TokenBatch[], step: number, memory: 'bank' | 'none' = 'bank'): ValidationResult {
  let ceSum = 0;
  let correct = 0;
  let tokens = 0;
  let depthSum = 0;
  for (const batch of batches) {
    const [ce, hits, depth] = tf.tidy(() => {
      const input = tf.tensor2d(batch.inputs, [batch.batchSize, batch.seqLen], 'int32');
      const target = tf.tensor1d(batch.targets, 'int32');
      const out = model.forward(input, { training: false, memory });
      const logits = tf.reshape<tf.Rank.R2>(out.logits, [batch.batchSize * batch.seqLen, -1]);
      const ceTotal = tf.sum(crossEntropyPerRow(logits, target)).dataSync()[0];
      const hitCount = tf.sum(tf.cast(tf.equal(tf.argMax(logits, -1), target), 'int32')).dataSync()[0];
      return [ceTotal, hitCount, out.meanDepth];
    });
    ceSum += ce;
    correct += hits;
    depthSum += depth * batch.batchSize;
    tokens += batch.batchSize * batch.seqLen;
  }
  const loss = ceSum / tokens;
  const sequences = batches.reduce((n, b) => n + b.batchSize, 0);
  return { step, loss, perplexity: Math.exp(loss), tokenAccuracy: correct / tokens, meanDepth: depthSum / sequences, tokens };
}

/** A checkpoint from another architecture or seed is not this run: refuse rather than silently mix. */
function checkResumable(
  s: CheckpointState,
  job: TrainJob,
  modelConfig: ModelConfig,
  warn: (m: string) => void,
  backend: BackendInfo,
): void {
  if (s.format !== CHECKPOINT_FORMAT) throw new NonRetryableError(`checkpoint format "${String(s.format)}" is not ${CHECKPOINT_FORMAT}`);
  const differing = (Object.keys(modelConfig) as (keyof ModelConfig)[]).filter((k) => s.modelConfig[k] !== modelConfig[k]);
  if (differing.length > 0 || s.seed !== job.seed) {
    const fields = [
      ...differing.map((k) => `${k} (${String(s.modelConfig[k])} → ${String(modelConfig[k])})`),
      ...(s.seed !== job.seed ? [`seed (${s.seed} → ${job.seed})`] : []),
    ];
    throw new NonRetryableError(
      `checkpoints in ${job.checkpointDir} belong to a different run: ${fields.join(', ')} changed. Use a new sessionId or remove the checkpoints.`,
    );
  }
  if ((s.progress.initFrom?.weightsSha256 ?? null) !== (job.initFrom?.weightsSha256 ?? null)) {
    throw new NonRetryableError(
      `checkpoints in ${job.checkpointDir} belong to a run ${s.progress.initFrom ? `fine-tuned from ${s.progress.initFrom.sessionId}/${s.progress.initFrom.model}` : 'trained from scratch'}, this run ${job.initFrom ? `starts from ${job.initFrom.sessionId}/${job.initFrom.model}` : 'starts from scratch'}. Use a new sessionId or remove the checkpoints.`,
    );
  }
  // A checkpoint written before a setting existed lacks its key: it ran with that setting's default, so its
  // config is read through the schema (filling defaults) before comparing; one the schema no longer accepts is
  // compared as stored.
  const known = Object.fromEntries(Object.entries(s.config).filter(([k]) => k in job.config));
  const parsed = CognateConfigSchema.safeParse(known);
  const before: Partial<CognateConfig> = parsed.success ? parsed.data : s.config;
  const changed = (Object.keys(job.config) as (keyof CognateConfig)[]).filter(
    (k) => JSON.stringify(before[k]) !== JSON.stringify(job.config[k]),
  );
  if (changed.length > 0) warn(`resuming with changed training settings: ${changed.join(', ')}`);
  if (s.backend.backend !== backend.backend)
    warn(
      `checkpoint was written on the ${s.backend.backend} backend, continuing on ${backend.backend}: results will not be bit-identical to an uninterrupted run`,
    );
}
