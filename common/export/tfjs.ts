// tfjs weights artifact in the layout tf.io loaders expect: model.json + one binary weights file.
//   model.json: { format, generatedBy, convertedBy, modelTopology, weightsManifest: [{ paths: ['weights.bin'],
//                 weights: [{ name, shape, dtype }] }] }
//   weights.bin: every tensor's little-endian bytes concatenated in manifest order, no padding.
// tfjs has no int64: int64 tensors are stored as int32 (refused if a value does not fit), so a reader gets int32 back.
import fs from 'node:fs';
import path from 'node:path';
import { atomicWriteFile, writeJsonAtomic } from './files';
import { numel, tensorBytes, tensorFromBytes, validateTensors, type NamedTensor } from './tensors';

export const TFJS_MODEL_JSON = 'model.json';
export const TFJS_WEIGHTS_BIN = 'weights.bin';

export interface TfjsWeightSpec {
  name: string;
  shape: number[];
  dtype: 'float32' | 'int32';
}

export interface TfjsModelJson {
  format: string; // e.g. 'forge-weights' or 'layers-model'; tfjs only reads it for information
  generatedBy: string; // producer and version
  convertedBy: null; // set by the Python converter; we write natively
  modelTopology: unknown; // caller-provided model description; null for weights-only artifacts
  weightsManifest: Array<{ paths: string[]; weights: TfjsWeightSpec[] }>;
  userDefinedMetadata?: Record<string, unknown>; // tf.io's slot for free-form metadata
}

export interface TfjsWriteOptions {
  format?: string; // default 'forge-weights'
  generatedBy?: string; // default 'forge-pipelines common/export'
  modelTopology?: unknown; // default null
  userDefinedMetadata?: Record<string, unknown>;
}

function toTfjsTensor(t: NamedTensor): NamedTensor & { dtype: 'float32' | 'int32' } {
  if (t.dtype !== 'int64') return t as NamedTensor & { dtype: 'float32' | 'int32' };
  const data = new Int32Array(t.data.length);
  (t.data as BigInt64Array).forEach((v, i) => {
    if (v < -2147483648n || v > 2147483647n) throw new Error(`tfjs: int64 tensor "${t.name}" value ${v} does not fit int32`);
    data[i] = Number(v);
  });
  return { ...t, dtype: 'int32', data };
}

/** Writes `dir/weights.bin` then `dir/model.json` (each atomically); returns the model.json written. */
export function writeTfjsWeights(dir: string, tensors: readonly NamedTensor[], opts: TfjsWriteOptions = {}): TfjsModelJson {
  validateTensors(tensors);
  const stored = tensors.map(toTfjsTensor);
  atomicWriteFile(path.join(dir, TFJS_WEIGHTS_BIN), Buffer.concat(stored.map(tensorBytes)));
  const modelJson: TfjsModelJson = {
    format: opts.format ?? 'forge-weights',
    generatedBy: opts.generatedBy ?? 'forge-pipelines common/export',
    convertedBy: null,
    modelTopology: opts.modelTopology ?? null,
    weightsManifest: [{ paths: [TFJS_WEIGHTS_BIN], weights: stored.map(({ name, shape, dtype }) => ({ name, shape: [...shape], dtype })) }],
    ...(opts.userDefinedMetadata ? { userDefinedMetadata: opts.userDefinedMetadata } : {}),
  };
  writeJsonAtomic(path.join(dir, TFJS_MODEL_JSON), modelJson);
  return modelJson;
}

/** Reads the weights of a model.json artifact (any number of groups/shards; float32 and int32 only). */
export function readTfjsWeights(dir: string): NamedTensor[] {
  const modelJson = JSON.parse(fs.readFileSync(path.join(dir, TFJS_MODEL_JSON), 'utf8')) as TfjsModelJson;
  if (!Array.isArray(modelJson.weightsManifest)) throw new Error(`tfjs: ${dir}/model.json has no weightsManifest`);
  const out: NamedTensor[] = [];
  for (const group of modelJson.weightsManifest) {
    // A group's shards are one byte stream split across files.
    const bytes = Buffer.concat(group.paths.map((p) => fs.readFileSync(path.join(dir, p))));
    let offset = 0;
    for (const spec of group.weights) {
      if (spec.dtype !== 'float32' && spec.dtype !== 'int32')
        throw new Error(`tfjs: weight "${spec.name}" has unsupported dtype ${String(spec.dtype)}`);
      if ('quantization' in spec) throw new Error(`tfjs: weight "${spec.name}" is quantized; not supported`);
      const n = numel(spec.shape) * 4;
      if (offset + n > bytes.length) throw new Error(`tfjs: weights file too short for "${spec.name}"`);
      out.push(tensorFromBytes(spec.name, spec.dtype, spec.shape, bytes.subarray(offset, offset + n)));
      offset += n;
    }
    if (offset !== bytes.length)
      throw new Error(`tfjs: ${group.paths.join(',')} holds ${bytes.length} bytes, manifest describes ${offset}`);
  }
  return out;
}
