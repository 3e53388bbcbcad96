// Export a trained Cognate model as a Hugging Face-style artifact directory, and load it back.
//
//   <outDir>/model.safetensors      weights, PyTorch names and layouts (linear weights [out, in])
//   <outDir>/pytorch_model.bin      the same tensors as a state dict torch.load(weights_only=True) reads
//   <outDir>/tfjs/model.json        the same tensors for tfjs (+ weights.bin); loadModelFromExport reads these
//   <outDir>/config.json            architectures ["CognateForCausalLM"], model_type "cognate", every hyperparameter,
//                                   parameter_count (= the tensors' total), backend/device of the run
//   <outDir>/ltm.safetensors        the long-term memory bank (when memEnabled), format cognate-ltm/2: keys, values
//                                   [streams, heads, capacity, head_dim] (pre-rotary attention keys/values of block
//                                   mem_layer; slot i of a stream is valid for i < fill), fill, next (FIFO write slot)
//                                   [streams] int64; config/counters in the metadata
//   <outDir>/configuration_cognate.py, modeling_cognate.py
//                                   the PyTorch implementation (hf/); config.json's auto_map names it, so
//                                   AutoModelForCausalLM.from_pretrained(outDir, trust_remote_code=True) loads the model
//   <outDir>/manifest.json          sha256 of every file
// `python3 scripts/verify_weights.py <outDir> --skip ltm.safetensors` checks the three weight copies agree.
import fs from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { backendInfo } from '../../../common/backend';
import { publishWeightsArtifact } from '../../../common/export/artifact';
import { verifyManifest, type Manifest } from '../../../common/export/files';
import { decodeSafetensors, encodeSafetensors } from '../../../common/export/safetensors';
import type { NamedTensor } from '../../../common/export/tensors';
import { readTfjsWeights } from '../../../common/export/tfjs';
import type { ModelConfig } from '../config';
import { HF_AUTO_MAP, hfCodeFiles } from './hf/code';
import type { LtmState } from './ltm';
import { CognateModel } from './model';

export const CONFIG_FILE = 'config.json';
export const LTM_FILE = 'ltm.safetensors';

export interface ExportExtra {
  /** Merged into config.json (e.g. model name, training steps, final loss). */
  config?: Record<string, unknown>;
  /** More files in the artifact (e.g. tokenizer.json, metrics.json); objects are written as JSON. */
  files?: Record<string, string | Uint8Array | object>;
  /** Extra top-level fields of manifest.json. */
  manifest?: Record<string, unknown>;
}

export interface CognateHfConfig {
  architectures: ['CognateForCausalLM'];
  model_type: 'cognate';
  auto_map: typeof HF_AUTO_MAP;
  vocab_size: number;
  hidden_size: number;
  num_hidden_layers: number;
  num_attention_heads: number;
  head_dim: number;
  intermediate_size: number;
  max_position_embeddings: number;
  hidden_act: 'silu';
  rms_norm_eps: number;
  rope_theta: number;
  tie_word_embeddings: false;
  torch_dtype: 'float32';
  act_enabled: boolean;
  act_threshold: number;
  ponder_cost: number;
  mem_enabled: boolean;
  mem_dim: number;
  mem_capacity: number;
  mem_top_k: number;
  mem_layer: number;
  mem_surprise_threshold: number | null;
  mem_novelty_threshold: number;
  parameter_count: number;
  parameter_breakdown: Record<string, number>;
  backend: string;
  device: string;
  /** The exact ModelConfig (camelCase) loadModelFromExport rebuilds from. */
  cognate_config: ModelConfig;
  ltm_file: string | null;
  [extra: string]: unknown;
}

/** Every parameter as a NamedTensor in PyTorch layout. */
export function modelTensors(model: CognateModel): NamedTensor[] {
  return model.params.map(({ name, variable, linear }) =>
    tf.tidy(() => {
      const t = linear ? tf.transpose(variable) : variable; // [in, out] → [out, in]
      return { name, shape: [...t.shape], dtype: 'float32' as const, data: t.dataSync() as Float32Array };
    }),
  );
}

/** The LTM bank as safetensors tensors + string metadata. */
export function ltmToSafetensors(state: LtmState): { tensors: NamedTensor[]; metadata: Record<string, string> } {
  const { capacity, nHeads, headDim } = state.config;
  const n = state.streams.length;
  const stacked = (field: 'keys' | 'values'): Float32Array => {
    const out = new Float32Array(n * nHeads * capacity * headDim);
    state.streams.forEach((s, i) => out.set(s[field], i * nHeads * capacity * headDim));
    return out;
  };
  const tensors: NamedTensor[] = [
    { name: 'keys', shape: [n, nHeads, capacity, headDim], dtype: 'float32', data: stacked('keys') },
    { name: 'values', shape: [n, nHeads, capacity, headDim], dtype: 'float32', data: stacked('values') },
    { name: 'fill', shape: [n], dtype: 'int64', data: BigInt64Array.from(state.streams, (s) => BigInt(s.fill)) },
    { name: 'next', shape: [n], dtype: 'int64', data: BigInt64Array.from(state.streams, (s) => BigInt(s.next)) },
  ];
  const metadata = {
    format: 'cognate-ltm/2',
    config: JSON.stringify(state.config),
    stats: JSON.stringify(state.stats),
    loss_stats: JSON.stringify(state.lossStats),
  };
  return { tensors, metadata };
}

export function ltmFromSafetensors(bytes: Buffer): LtmState {
  const { tensors, metadata } = decodeSafetensors(bytes);
  if (metadata.format !== 'cognate-ltm/2') throw new Error(`${LTM_FILE}: unknown format "${metadata.format}" (expected cognate-ltm/2)`);
  const need = (name: string): NamedTensor =>
    tensors.find((t) => t.name === name) ??
    (() => {
      throw new Error(`${LTM_FILE}: tensor "${name}" missing`);
    })();
  const config = JSON.parse(metadata.config) as LtmState['config'];
  const size = config.nHeads * config.capacity * config.headDim;
  const keys = need('keys').data as Float32Array;
  const values = need('values').data as Float32Array;
  const fill = need('fill').data as BigInt64Array;
  const next = need('next').data as BigInt64Array;
  return {
    version: 2,
    config,
    streams: Array.from(fill, (f, i) => ({
      fill: Number(f),
      next: Number(next[i]),
      keys: keys.slice(i * size, (i + 1) * size),
      values: values.slice(i * size, (i + 1) * size),
    })),
    stats: JSON.parse(metadata.stats) as LtmState['stats'],
    lossStats: JSON.parse(metadata.loss_stats) as LtmState['lossStats'],
  };
}

function currentDevice(): { backend: string; device: string } {
  try {
    const { backend, device } = backendInfo();
    return { backend, device };
  } catch {
    return { backend: tf.getBackend(), device: 'unknown (backend not chosen by initBackend)' };
  }
}

export function hfConfig(model: CognateModel, extra: Record<string, unknown> = {}): CognateHfConfig {
  const c = model.config;
  const { total, breakdown } = model.parameterCount();
  return {
    architectures: ['CognateForCausalLM'],
    model_type: 'cognate',
    auto_map: HF_AUTO_MAP,
    vocab_size: c.vocabSize,
    hidden_size: c.dModel,
    num_hidden_layers: c.nLayers,
    num_attention_heads: c.nHeads,
    head_dim: c.dModel / c.nHeads,
    intermediate_size: c.dFF,
    max_position_embeddings: c.maxSeqLen,
    hidden_act: 'silu',
    rms_norm_eps: 1e-6,
    rope_theta: 10000,
    tie_word_embeddings: false,
    torch_dtype: 'float32',
    act_enabled: c.actEnabled,
    act_threshold: c.actThreshold,
    ponder_cost: c.ponderCost,
    mem_enabled: c.memEnabled,
    mem_dim: c.dMem,
    mem_capacity: c.memCapacity,
    mem_top_k: c.memTopK,
    mem_layer: model.memLayer,
    mem_surprise_threshold: c.memSurpriseThreshold,
    mem_novelty_threshold: c.memNoveltyThreshold,
    parameter_count: total,
    parameter_breakdown: breakdown,
    ...currentDevice(),
    cognate_config: { ...c },
    ltm_file: model.memory ? LTM_FILE : null,
    ...extra,
  };
}

/** Publish the model (all weight formats, config.json, the LTM bank, manifest) to outDir, replacing it atomically. */
export function exportModel(model: CognateModel, outDir: string, extra: ExportExtra = {}): { manifest: Manifest; config: CognateHfConfig } {
  const tensors = modelTensors(model);
  const config = hfConfig(model, extra.config);
  const tensorTotal = tensors.reduce((n, t) => n + t.data.length, 0);
  if (tensorTotal !== config.parameter_count)
    throw new Error(`export: tensors hold ${tensorTotal} values, parameterCount() says ${config.parameter_count}`);
  const files: Record<string, string | Uint8Array | object> = { ...extra.files, ...hfCodeFiles(), [CONFIG_FILE]: config };
  if (model.memory) {
    const { tensors: bank, metadata } = ltmToSafetensors(model.memory.state());
    files[LTM_FILE] = encodeSafetensors(bank, metadata);
  }
  const manifest = publishWeightsArtifact(outDir, tensors, {
    safetensorsMetadata: { format: 'pt', model_type: 'cognate' },
    tfjs: {
      format: 'cognate-weights',
      generatedBy: 'forge-pipelines activities/cognate/engine/export.ts',
      userDefinedMetadata: { cognate_config: config.cognate_config },
    },
    extraFiles: files,
    manifestExtra: { model_type: 'cognate', parameter_count: config.parameter_count, ...extra.manifest },
  });
  return { manifest, config };
}

/** Rebuild a model from an exported directory: checks the manifest, the names and shapes, then loads the tfjs weights and the LTM. */
export function loadModelFromExport(dir: string): CognateModel {
  const problems = verifyManifest(dir);
  if (problems.length > 0) throw new Error(`export at ${dir} does not match its manifest: ${problems.join('; ')}`);
  const config = JSON.parse(fs.readFileSync(path.join(dir, CONFIG_FILE), 'utf8')) as CognateHfConfig;
  if (config.model_type !== 'cognate')
    throw new Error(`${dir}/${CONFIG_FILE}: model_type is "${String(config.model_type)}", expected "cognate"`);
  const weights = new Map(readTfjsWeights(path.join(dir, 'tfjs')).map((t) => [t.name, t]));
  const model = new CognateModel(config.cognate_config, 0);
  try {
    for (const { name, variable, linear } of model.params) {
      const w = weights.get(name);
      if (!w) throw new Error(`${dir}: weight "${name}" missing`);
      const expected = linear ? [...variable.shape].reverse() : variable.shape;
      if (w.shape.join(',') !== expected.join(','))
        throw new Error(`${dir}: weight "${name}" has shape [${w.shape}], expected [${expected}]`);
      tf.tidy(() => {
        const t = tf.tensor(w.data as Float32Array, w.shape, 'float32');
        variable.assign(linear ? tf.transpose(t) : t); // [out, in] → [in, out]
      });
      weights.delete(name);
    }
    if (weights.size > 0) throw new Error(`${dir}: weights not in this model: ${[...weights.keys()].slice(0, 5).join(', ')}`);
    if (model.memory) model.memory.load(ltmFromSafetensors(fs.readFileSync(path.join(dir, LTM_FILE))));
    return model;
  } catch (e) {
    model.dispose();
    throw e;
  }
}
