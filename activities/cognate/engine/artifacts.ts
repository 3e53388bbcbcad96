// createModelArtifacts' work: rebuild the model from its final checkpoint and publish the Hugging
// Face-style artifact directory (weights in three formats, config, tokenizer, stats, log, curves as SVG/PNG).
import fs from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../../../common/backend';
import { MANIFEST_NAME, sha256File, type ManifestFile } from '../../../common/export/files';
import type { CognateConfig, ModelConfig } from '../config';
import { loadLatestCheckpoint, type TensorState } from '../../../common/checkpoint';
import { exportModel } from './export';
import type { LtmState } from './ltm';
import { CognateModel } from './model';
import type { TrainSummary } from './trainer';
import { cognateChartFiles } from './report';

export interface ExportJob {
  model: string;
  checkpointDir: string;
  summaryPath: string;
  logPath: string;
  datasetDir: string;
  outDir: string;
  config: CognateConfig;
}

export interface ExportResult {
  files: (ManifestFile & { model: string; path: string })[];
}

/** The part of the trainer's checkpoint state an export needs. */
interface CheckpointWeights {
  modelConfig: ModelConfig;
  seed: number;
  step: number;
  weights: Record<string, TensorState>;
  memory: LtmState | null;
}

interface ResumeRecord {
  fromStep: number;
  attempt: number;
  time: string;
}

/** What training measured, for training_stats.json: nothing here is derived from settings alone. */
function trainingStats(summary: TrainSummary & { focus?: string; seed?: number }, log: Record<string, unknown>[], config: CognateConfig) {
  const resumes: ResumeRecord[] = log
    .filter((e) => e.kind === 'resumed')
    .map((e) => ({ fromStep: e.fromStep as number, attempt: e.attempt as number, time: e.time as string }));
  const curve = summary.lossCurve;
  const validations = summary.validationHistory;
  const best = validations.reduce<(typeof validations)[number] | null>((b, v) => (b === null || v.loss < b.loss ? v : b), null);
  const capabilities: Record<string, unknown> = {};
  if (summary.act.enabled && summary.act.meanDepth !== null)
    capabilities.adaptive_computation = { meanDepth: summary.act.meanDepth, nLayers: summary.act.nLayers };
  if (summary.ltm && summary.ltm.writes > 0) capabilities.long_term_memory = summary.ltm;
  if (summary.grokfast.mode !== 'off') capabilities.grokfast = summary.grokfast;
  return {
    model: summary.modelName,
    focus: summary.focus ?? null,
    seed: summary.seed ?? null,
    steps: summary.finalStep,
    totalSteps: summary.totalSteps,
    stopped: summary.stopped,
    lossCurve: curve,
    finalLoss: summary.finalLoss,
    validation: summary.validation,
    validationHistory: validations,
    convergence: {
      initialLoss: curve[0]?.loss ?? null,
      finalLoss: summary.finalLoss,
      lossReduction: curve.length && summary.finalLoss !== null ? curve[0].loss - summary.finalLoss : null,
      bestValidationLoss: best?.loss ?? null,
      bestValidationStep: best?.step ?? null,
    },
    act: summary.act,
    ltm: summary.ltm,
    grokfast: summary.grokfast,
    optimizer: summary.optimizer,
    parameters: summary.parameters,
    tokensSeen: summary.tokensSeen,
    tokensPerSecond: summary.tokensPerSecond,
    backend: summary.backend,
    resumes,
    capabilities,
    datasets: { sources: config.datasetSources, mode: config.datasetMode },
    // Fine-tuning runs: the parent, and validation on this run's datasets before its first step and after its last.
    parent: summary.initFrom
      ? {
          sessionId: summary.initFrom.sessionId,
          model: summary.initFrom.model,
          weightsSha256: summary.initFrom.weightsSha256,
          tokenizerSha256: summary.initFrom.tokenizerSha256,
          exportDir: summary.initFrom.dir,
        }
      : null,
    validationBefore: summary.initFrom?.validationBefore ?? null,
    validationAfter: summary.initFrom ? summary.validation : null,
  };
}

export async function exportArtifacts(job: ExportJob): Promise<ExportResult> {
  const backend = await initBackend();
  const warn = (m: string) => console.warn(`[export ${job.model}] ${m}`);
  const ckpt = loadLatestCheckpoint<CheckpointWeights>(job.checkpointDir, warn);
  if (!ckpt) throw new Error(`no usable checkpoint in ${job.checkpointDir} to export ${job.model} from`);
  const state = ckpt.state;
  const model = new CognateModel(state.modelConfig, state.seed);
  try {
    for (const { name, variable } of model.params) {
      const w = state.weights[name];
      if (!w) throw new Error(`checkpoint ${ckpt.path} has no weight "${name}"`);
      tf.tidy(() => variable.assign(tf.tensor(w.data, w.shape, 'float32')));
    }
    if (model.memory && state.memory) model.memory.load(state.memory);

    const summary = JSON.parse(fs.readFileSync(job.summaryPath, 'utf8')) as TrainSummary & { focus?: string; seed?: number };
    const logText = fs.existsSync(job.logPath) ? fs.readFileSync(job.logPath, 'utf8') : '';
    const log = logText.trim()
      ? logText
          .trim()
          .split('\n')
          .map((l) => JSON.parse(l) as Record<string, unknown>)
      : [];
    const manifest = JSON.parse(fs.readFileSync(path.join(job.datasetDir, 'manifest.json'), 'utf8')) as { tokenizer: string };
    const charts = await cognateChartFiles(job.model, summary, log);
    const { manifest: published } = exportModel(model, job.outDir, {
      config: {
        name_or_path: job.model,
        training_steps: summary.finalStep,
        final_loss: summary.finalLoss,
        checkpoint_step: ckpt.step,
        export_backend: backend,
        init_from: summary.initFrom
          ? { session_id: summary.initFrom.sessionId, model: summary.initFrom.model, weights_sha256: summary.initFrom.weightsSha256 }
          : null,
      },
      files: {
        'tokenizer.json': fs.readFileSync(path.join(job.datasetDir, manifest.tokenizer)),
        'training_stats.json': trainingStats(summary, log, job.config),
        'training_log.jsonl': logText,
        ...charts,
      },
    });
    const manifestPath = path.join(job.outDir, MANIFEST_NAME);
    const files = [...published.files, { path: MANIFEST_NAME, bytes: fs.statSync(manifestPath).size, sha256: sha256File(manifestPath) }];
    return { files: files.map((f) => ({ ...f, model: job.model, path: path.join(job.outDir, f.path) })) };
  } finally {
    model.dispose();
  }
}
