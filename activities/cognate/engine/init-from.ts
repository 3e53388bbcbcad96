// Continued pretraining and fine-tuning of Cognate: where a parent model comes from, whether it fits the
// new run, and loading it into the trainer's model.
//
// A parent is a published export (engine/export.ts, engine/artifacts.ts): $FORGE_DATA_DIR/cognate/<sessionId>/<model>
// (`initFrom: { sessionId, model }`) or any such folder under FORGE_DATA_DIR (`initFrom: { path }`). The run
// reuses its weights, its LTM bank and its tokenizer (a different tokenizer is refused: token ids would
// mean other strings). The optimizer, GrokFast filter and learning-rate schedule start fresh from the new
// run's own settings, as a Hugging Face Trainer does when it is given a pretrained model (not a checkpoint).
import fs from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { NonRetryableError } from '../../../common/child';
import { MANIFEST_NAME, sha256File, type Manifest } from '../../../common/export/files';
import { openVerifiedArtifact, parentArtifactDir } from '../../../common/export/parent';
import type { CognateConfig, CognateInitFrom, ModelConfig } from '../config';
import { CONFIG_FILE, loadModelFromExport, type CognateHfConfig } from './export';
import type { CognateModel } from './model';

export const TOKENIZER_FILE = 'tokenizer.json';
export const WEIGHTS_FILE = 'model.safetensors';

/**
 * Model fields that shape the parameters, the rotary tables or the LTM bank: a parent fits only when they
 * are equal, except that ACT may be added to a parent without it (its halting units start fresh: the blocks
 * are trained first and halting learnt after, as bench:act's --halting-from-fixed measures). ACT and LTM
 * thresholds, top-k and the ponder cost may change in a fine-tuning run.
 */
export const COGNATE_SHAPE_FIELDS = [
  'vocabSize',
  'dModel',
  'nLayers',
  'nHeads',
  'dFF',
  'maxSeqLen',
  'dMem',
  'memCapacity',
  'memEnabled',
  'actEnabled',
] as const;
/** Every model field; the ones the input leaves unset are taken from the parent. */
export const COGNATE_INHERITED_FIELDS = [
  ...COGNATE_SHAPE_FIELDS,
  'actThreshold',
  'ponderCost',
  'memTopK',
  'memSurpriseThreshold',
  'memNoveltyThreshold',
] as const;

/** Hugging Face names of the shape fields, so an error reads in both vocabularies. */
const HF_NAME: Partial<Record<keyof ModelConfig, string>> = {
  vocabSize: 'vocab_size',
  dModel: 'hidden_size',
  nLayers: 'num_hidden_layers',
  nHeads: 'num_attention_heads',
  dFF: 'intermediate_size',
  maxSeqLen: 'max_position_embeddings',
  dMem: 'mem_dim',
  memCapacity: 'mem_capacity',
};

/** What a training job needs to start from the parent; JSON (workflow history, child-process boundary). */
export interface CognateParentRef {
  dir: string;
  sessionId: string;
  model: string;
  /** sha256 of model.safetensors as the check saw it (the manifest's). */
  weightsSha256: string;
  tokenizerSha256: string;
  /** The parent's tokenizer.json: the run's data is tokenized with it. */
  tokenizerPath: string;
  modelConfig: ModelConfig;
  trainingSteps: number | null;
}

export function cognateParentDir(dataDir: string, initFrom: CognateInitFrom): string {
  return parentArtifactDir(dataDir, 'cognate', initFrom, 'sessionId' in initFrom ? { field: 'model', value: initFrom.model } : null);
}

/** Exists, manifest holds (every file's sha256), is a Cognate export with a tokenizer. */
export function inspectCognateParent(dataDir: string, initFrom: CognateInitFrom): CognateParentRef {
  const dir = cognateParentDir(dataDir, initFrom);
  const what = 'sessionId' in initFrom ? `initFrom ${initFrom.sessionId}/${initFrom.model} (${dir})` : `initFrom.path ${dir}`;
  const opened = openVerifiedArtifact<CognateHfConfig>(dir, what, 'an exported Cognate model', CONFIG_FILE);
  const hf = opened.config;
  const sha = opened.sha256;
  if (hf.model_type !== 'cognate' || !hf.cognate_config)
    throw new NonRetryableError(`${what}: ${CONFIG_FILE} is not a Cognate config (model_type ${JSON.stringify(hf.model_type)})`);
  return {
    dir,
    sessionId: 'sessionId' in initFrom ? initFrom.sessionId : path.basename(path.dirname(dir)),
    model: typeof hf.name_or_path === 'string' ? hf.name_or_path : path.basename(dir),
    weightsSha256: sha(WEIGHTS_FILE),
    tokenizerSha256: sha(TOKENIZER_FILE),
    tokenizerPath: path.join(dir, TOKENIZER_FILE),
    modelConfig: hf.cognate_config,
    trainingSteps: typeof hf.training_steps === 'number' ? hf.training_steps : null,
  };
}

/** Every way the parent does not fit `config`; empty = it loads. */
export function cognateParentMismatches(parent: CognateParentRef, config: CognateConfig): string[] {
  const out: string[] = [];
  for (const k of COGNATE_SHAPE_FIELDS) {
    if (k === 'actEnabled' && !parent.modelConfig.actEnabled && config.actEnabled) continue; // ACT added: see above
    if (parent.modelConfig[k] !== config[k])
      out.push(`${k}${HF_NAME[k] ? ` (${HF_NAME[k]})` : ''}: parent ${String(parent.modelConfig[k])}, this run ${String(config[k])}`);
  }
  if (config.tokenizerPath) {
    const theirs = fs.existsSync(config.tokenizerPath) ? sha256File(config.tokenizerPath) : null;
    if (theirs !== parent.tokenizerSha256)
      out.push(
        `tokenizer: config.tokenizerPath ${config.tokenizerPath} is not the parent's tokenizer.json (sha256 ${theirs ?? 'missing'} vs ${parent.tokenizerSha256}); a fine-tuning run must reuse the parent's tokenizer`,
      );
  }
  return out;
}

/**
 * Load the parent's weights and LTM bank into `model` (built from the same shapes). Checks first that the
 * export is still the one the run was checked against. Runs in the training child, on a fresh start only.
 * Halting units a parent without ACT lacks keep the model's start (actHaltingInit, else 1/(2 nLayers)).
 */
export function loadCognateParent(ref: CognateParentRef, model: CognateModel): void {
  if (!fs.existsSync(path.join(ref.dir, MANIFEST_NAME))) throw new NonRetryableError(`parent ${ref.dir} is gone (no ${MANIFEST_NAME})`);
  const manifest = JSON.parse(fs.readFileSync(path.join(ref.dir, MANIFEST_NAME), 'utf8')) as Manifest;
  const now = manifest.files.find((f) => f.path === WEIGHTS_FILE)?.sha256;
  if (now !== ref.weightsSha256)
    throw new NonRetryableError(
      `parent ${ref.dir} changed since the run was checked (${WEIGHTS_FILE} sha256 ${now ?? 'missing'}, checked ${ref.weightsSha256})`,
    );
  let parent: CognateModel;
  try {
    parent = loadModelFromExport(ref.dir);
  } catch (e) {
    throw new NonRetryableError(`parent ${ref.dir} cannot be loaded: ${(e as Error).message}`);
  }
  try {
    const theirs = new Map(parent.params.map((p) => [p.name, p.variable]));
    for (const { name, variable } of model.params) {
      const w = theirs.get(name);
      if (!w && !ref.modelConfig.actEnabled && name.includes('.halting.')) continue;
      if (!w || w.shape.join(',') !== variable.shape.join(','))
        throw new NonRetryableError(
          `parent ${ref.dir}: weight "${name}" ${w ? `has shape [${w.shape}], expected [${variable.shape}]` : 'is missing'}`,
        );
      tf.tidy(() => variable.assign(w));
    }
    if (model.memory && parent.memory) model.memory.load(parent.memory.state());
  } finally {
    parent.dispose();
  }
}
