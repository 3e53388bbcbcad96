// Fine-tuning: where a parent agent comes from, whether it fits the new run, and loading it.
//
// A parent is a published artifact folder (activities/agent/engine/artifacts.ts): either
// $FORGE_DATA_DIR/agent/<sessionId>/<agentId> (`initFrom: { sessionId, agent }`) or any such folder under
// FORGE_DATA_DIR (`initFrom: { path }`). Its manifest is verified before anything trains, and the weights
// file's sha256 is carried in the job, so the child refuses a parent that changed after the check.
// The optimizer state (Adam moments) is not in the artifact: when asked for, it is read from the training
// checkpoint the artifact names (agent_config.json `weightsFrom`) after checking that the checkpoint holds
// exactly the exported weights.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { NonRetryableError } from '../../../common/child';
import { openVerifiedArtifact, parentArtifactDir } from '../../../common/export/parent';
import { readSafetensors } from '../../../common/export/safetensors';
import type { AgentArchitecture, AgentForgeConfig, AgentInitFrom } from '../config';
import { readCheckpoint, restoreUnit, type TrainableUnit } from './checkpoint';
import { ACTION_COUNT, OBS_SIZE } from './envs';
import { createPolicy, disposePolicy } from './policies';
import { Rng } from '../../../common/rng';

export const WEIGHTS_FILE = 'agent_weights.safetensors';
const CONFIG_FILE = 'agent_config.json';

/** Network-size fields of the config that shape the parameters (a parent's values are reused unless set). */
export const AGENT_SHAPE_FIELDS = ['hiddenSize', 'numLayers', 'numHeads', 'maxContextLength'] as const;

/** What a fine-tuning job needs to load its parent; JSON (it crosses the child-process boundary and is in the workflow history). */
export interface AgentParentRef {
  /** Absolute artifact folder. */
  dir: string;
  /** Session and agent that produced it (from its agent_config.json). */
  sessionId: string;
  agentId: string;
  architecture: AgentArchitecture;
  /** sha256 of agent_weights.safetensors as the check saw it. */
  weightsSha256: string;
  /** Load the Adam moments and step too (from `checkpoint`). */
  optimizerState: boolean;
  /** Training checkpoint the exported weights came from (optimizer state source). */
  checkpoint: string | null;
}

interface ExportedAgentConfig {
  agentId: string;
  role: string | null;
  architecture: AgentArchitecture;
  observationSize: number;
  actionCount: number;
  contextLength: number;
  parameters: { name: string; shape: number[]; torchShape: number[] }[];
  weightsFrom: string;
  config: AgentForgeConfig;
}

export interface InspectedAgentParent {
  ref: AgentParentRef;
  role: string | null;
  config: AgentForgeConfig;
  parameters: ExportedAgentConfig['parameters'];
  contextLength: number;
  observationSize: number;
  actionCount: number;
}

/** The artifact folder `initFrom` names; refuses paths that leave FORGE_DATA_DIR. */
export function agentParentDir(dataDir: string, initFrom: AgentInitFrom): string {
  return parentArtifactDir(dataDir, 'agent', initFrom, 'sessionId' in initFrom ? { field: 'agent', value: initFrom.agent } : null);
}

/** Verify the folder (exists, manifest holds) and read what it says about the agent. */
export function inspectAgentParent(dataDir: string, initFrom: AgentInitFrom): InspectedAgentParent {
  const dir = agentParentDir(dataDir, initFrom);
  const what = 'sessionId' in initFrom ? `initFrom ${initFrom.sessionId}/${initFrom.agent} (${dir})` : `initFrom.path ${dir}`;
  const opened = openVerifiedArtifact<ExportedAgentConfig>(dir, what, 'a published agent artifact folder', CONFIG_FILE);
  const { manifest, config: exported } = opened;
  const weights = { sha256: opened.sha256(WEIGHTS_FILE) };
  // weightsFrom names the checkpoint file (common/checkpoint.ts) the exported weights came from.
  const checkpoint =
    exported.weightsFrom && fs.existsSync(exported.weightsFrom) && fs.statSync(exported.weightsFrom).isFile() ? exported.weightsFrom : null;
  if (initFrom.optimizerState && !checkpoint) {
    throw new NonRetryableError(
      `${what}: initFrom.optimizerState asks for the Adam state, but the training checkpoint it came from (${exported.weightsFrom}) is gone; the artifact holds weights only`,
    );
  }
  return {
    ref: {
      dir,
      sessionId: typeof manifest.sessionId === 'string' ? manifest.sessionId : '',
      agentId: exported.agentId,
      architecture: exported.architecture,
      weightsSha256: weights.sha256,
      optimizerState: initFrom.optimizerState,
      checkpoint,
    },
    role: exported.role,
    config: exported.config,
    parameters: exported.parameters,
    contextLength: exported.contextLength,
    observationSize: exported.observationSize,
    actionCount: exported.actionCount,
  };
}

/**
 * Every way the parent does not fit an agent of `architecture` under `config` in an environment of
 * `horizon` steps: architecture, network sizes, observation/action layout, then parameter by parameter.
 * Empty means the weights load one to one.
 */
export function agentParentMismatches(
  parent: InspectedAgentParent,
  agent: { id: string; architecture: AgentArchitecture },
  config: AgentForgeConfig,
  horizon: number,
): string[] {
  const out: string[] = [];
  if (parent.observationSize !== OBS_SIZE) out.push(`observationSize (parent ${parent.observationSize}, this build ${OBS_SIZE})`);
  if (parent.actionCount !== ACTION_COUNT) out.push(`actionCount (parent ${parent.actionCount}, this build ${ACTION_COUNT})`);
  if (parent.ref.architecture !== agent.architecture)
    out.push(`architecture (parent ${parent.ref.architecture}, agent "${agent.id}" ${agent.architecture})`);
  for (const k of AGENT_SHAPE_FIELDS)
    if (parent.config[k] !== config[k]) out.push(`${k} (parent ${parent.config[k]}, this run ${config[k]})`);
  if (out.length > 0) return out;
  const sizes = {
    hiddenSize: config.hiddenSize,
    numLayers: config.numLayers,
    numHeads: config.numHeads,
    maxContextLength: config.maxContextLength,
  };
  const net = createPolicy(agent.architecture, sizes, new Rng(0), horizon);
  try {
    // The transformer's window may differ (sinusoidal positions cost no parameters): only shapes matter.
    const theirs = new Map(parent.parameters.map((p) => [p.name, p.shape]));
    for (const p of net.store.params) {
      const shape = theirs.get(p.name);
      if (!shape) out.push(`parameter ${p.name} (missing in the parent)`);
      else if (shape.join(',') !== p.variable.shape.join(','))
        out.push(`parameter ${p.name} (parent [${shape}], this run [${p.variable.shape}])`);
      theirs.delete(p.name);
    }
    for (const name of theirs.keys()) out.push(`parameter ${name} (only in the parent)`);
  } finally {
    disposePolicy(net);
  }
  return out;
}

/**
 * Put the parent's weights into `unit` (exported in PyTorch layout: linear weights transposed back), and its
 * Adam state when the ref asks for it. Runs in the training child, once, on a fresh start only.
 */
export function loadAgentParent(ref: AgentParentRef, unit: TrainableUnit): void {
  const file = path.join(ref.dir, WEIGHTS_FILE);
  if (!fs.existsSync(file)) throw new NonRetryableError(`parent weights ${file} are gone`);
  const bytes = fs.readFileSync(file);
  const sha = crypto.createHash('sha256').update(bytes).digest('hex');
  if (sha !== ref.weightsSha256)
    throw new NonRetryableError(`parent weights ${file} changed since the run was checked (sha256 ${sha}, checked ${ref.weightsSha256})`);
  const tensors = new Map(readSafetensors(file).tensors.map((t) => [t.name, t]));
  tf.tidy(() => {
    for (const p of unit.net.store.params) {
      const t = tensors.get(p.name);
      if (!t) throw new NonRetryableError(`parent weights ${file} have no tensor ${p.name}`);
      const value = tf.tensor(t.data as Float32Array, t.shape, 'float32');
      const loaded = p.kind === 'linear_weight' ? tf.transpose(value) : value;
      if (loaded.shape.join(',') !== p.variable.shape.join(','))
        throw new NonRetryableError(`parent tensor ${p.name} has shape [${loaded.shape}], the network expects [${p.variable.shape}]`);
      p.variable.assign(loaded);
    }
  });
  if (!ref.optimizerState) return;
  if (!ref.checkpoint) throw new NonRetryableError(`parent ${ref.dir}: no training checkpoint to take the optimizer state from`);
  const ckpt = readCheckpoint(ref.checkpoint);
  // The checkpoint must hold exactly the exported weights, or its moments belong to other parameters.
  for (const p of unit.net.store.params) {
    const saved = ckpt.tensors.get(`${ref.agentId}.param.${p.name}`);
    const now = p.variable.dataSync() as Float32Array;
    if (!saved || saved.data.length !== now.length || !(saved.data as Float32Array).every((v, i) => v === now[i])) {
      throw new NonRetryableError(
        `parent checkpoint ${ref.checkpoint} does not hold the exported weights (${p.name} differs); its optimizer state cannot be used`,
      );
    }
  }
  restoreUnit(ckpt, ref.agentId, unit.net, unit.optimizer);
}
