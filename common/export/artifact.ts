// One call that publishes a weights artifact set the same way in both pipelines (Cognate models and agents):
//   <finalDir>/model.safetensors, <finalDir>/pytorch_model.bin, <finalDir>/tfjs/{model.json,weights.bin}
//   (names overridable: agents publish agent_weights.safetensors / agent_weights.pt),
//   any extra files (config, tokenizer, metrics), and manifest.json with every file's sha256.
// Everything is written into a sibling staging dir and renamed into place, so <finalDir> is never partial.
// `python3 scripts/verify_weights.py <finalDir>` checks the three weight copies against each other.
import fs from 'node:fs';
import path from 'node:path';
import { atomicWriteFile, publishDirectory, stagingDirFor, writeJsonAtomic, writeManifest, type Manifest } from './files';
import { writeSafetensors } from './safetensors';
import { writeTfjsWeights, type TfjsWriteOptions } from './tfjs';
import { writeTorchStateDict } from './torch';
import type { NamedTensor } from './tensors';

export const ARTIFACT_FILES = { safetensors: 'model.safetensors', torch: 'pytorch_model.bin', tfjsDir: 'tfjs' } as const;

export interface WeightsArtifactOptions {
  fileNames?: Partial<Record<keyof typeof ARTIFACT_FILES, string>>; // other names for the three weight copies
  safetensorsMetadata?: Record<string, string>; // stored in the safetensors header's __metadata__
  tfjs?: TfjsWriteOptions; // model.json format / generatedBy / modelTopology / userDefinedMetadata
  extraFiles?: Record<string, string | Uint8Array | object>; // relative path -> contents; plain objects are written as JSON
  manifestExtra?: Record<string, unknown>; // extra top-level manifest.json fields (run id, config hash, ...)
}

/** Writes all formats + extras + manifest into staging, then publishes to `finalDir` (replacing it). Returns the manifest. */
export function publishWeightsArtifact(finalDir: string, tensors: readonly NamedTensor[], opts: WeightsArtifactOptions = {}): Manifest {
  const staging = stagingDirFor(finalDir);
  try {
    const names = { ...ARTIFACT_FILES, ...opts.fileNames };
    writeSafetensors(path.join(staging, names.safetensors), tensors, opts.safetensorsMetadata);
    writeTorchStateDict(path.join(staging, names.torch), tensors);
    writeTfjsWeights(path.join(staging, names.tfjsDir), tensors, opts.tfjs);
    for (const [rel, contents] of Object.entries(opts.extraFiles ?? {})) {
      const target = path.resolve(staging, rel);
      if (!target.startsWith(staging + path.sep)) throw new Error(`publishWeightsArtifact: extra file "${rel}" escapes the artifact dir`);
      if (typeof contents === 'string' || contents instanceof Uint8Array) atomicWriteFile(target, contents);
      else writeJsonAtomic(target, contents);
    }
    const manifest = writeManifest(staging, opts.manifestExtra);
    publishDirectory(staging, finalDir);
    return manifest;
  } catch (e) {
    fs.rmSync(staging, { recursive: true, force: true });
    throw e;
  }
}
