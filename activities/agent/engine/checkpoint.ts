// Training checkpoints: one directory per checkpoint, published atomically (staging dir + rename), then
// a LATEST pointer file replaced atomically. Holds every unit's weights and Adam moments (safetensors),
// and the trainer state (episode counter, RNG state, curriculum/shift state, history) as JSON.
import fs from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { atomicWriteFile, publishDirectory, stagingDirFor, writeJsonAtomic } from '../../../common/export/files';
import { readSafetensors, writeSafetensors } from '../../../common/export/safetensors';
import type { NamedTensor } from '../../../common/export/tensors';
import type { AgentArchitecture } from '../config';
import type { PolicyNetwork } from './policies';
import type { AdamW } from '../../../common/optim';
import type { RngState } from '../../../common/rng';

export const CHECKPOINT_FORMAT = 'forge-agent-checkpoint/1';
const LATEST = 'LATEST';
const KEEP = 2;

export interface HistoryEntry {
  episode: number;
  /** Mean unscaled return of the batch's training episodes (epsilon-mixed sampling). */
  reward: number;
  successRate: number;
  coordinationScore: number;
  level: number;
  shifted: boolean;
  policyLoss: number;
  valueLoss: number;
  entropy: number;
  /** Training batches this entry averages (absent: one). Long runs merge neighbouring entries to stay bounded. */
  batches?: number;
}

export interface TrainerState {
  episode: number;
  rng: RngState;
  level: number;
  levelStartEpisode: number;
  shifted: boolean;
  shiftEpisode: number | null;
  /** Episodes it took the batch success rate to reach adaptationThreshold (after the shift in behavior_adaptation). */
  episodesToThreshold: number | null;
  /** Training finished (the budget was spent or the mode's goal was reached). */
  finished: boolean;
  history: HistoryEntry[];
  resumes: { fromEpisode: number; at: string }[];
  /** Fine-tuning runs: the parent the weights started from (session, agent, artifact folder, sha256 of its weights). */
  parent?: { sessionId: string; agentId: string; dir: string; weightsSha256: string; optimizerState: boolean };
}

export interface UnitMeta {
  id: string;
  architecture: AgentArchitecture;
  slots: number[];
  parameterCount: number;
  adamStep: number;
}

export interface CheckpointMeta {
  format: typeof CHECKPOINT_FORMAT;
  kind: 'agent' | 'team';
  /** Hash of everything that shapes the run; a checkpoint from another config is never resumed. */
  fingerprint: string;
  environmentId: string;
  units: UnitMeta[];
  trainer: TrainerState;
  savedAt: string;
}

export interface TrainableUnit {
  meta: Omit<UnitMeta, 'adamStep'>;
  net: PolicyNetwork;
  optimizer: AdamW;
}

function tensorOf(name: string, t: tf.Tensor): NamedTensor {
  return { name, shape: [...t.shape], dtype: 'float32', data: Float32Array.from(t.dataSync() as Float32Array) };
}

export function unitTensors(unit: { meta: { id: string }; net: PolicyNetwork; optimizer?: AdamW }): NamedTensor[] {
  const out: NamedTensor[] = [];
  unit.net.store.params.forEach((p) => {
    out.push(tensorOf(`${unit.meta.id}.param.${p.name}`, p.variable));
    if (unit.optimizer) {
      out.push(tensorOf(`${unit.meta.id}.adam_m.${p.name}`, unit.optimizer.moment('m', p.name)));
      out.push(tensorOf(`${unit.meta.id}.adam_v.${p.name}`, unit.optimizer.moment('v', p.name)));
    }
  });
  return out;
}

/** Write a checkpoint for `trainer.episode`; returns its directory. Older checkpoints beyond KEEP are removed. */
export function saveCheckpoint(dir: string, meta: Omit<CheckpointMeta, 'format' | 'units' | 'savedAt'>, units: TrainableUnit[]): string {
  fs.mkdirSync(dir, { recursive: true });
  const name = `ep-${String(meta.trainer.episode).padStart(8, '0')}`;
  const finalDir = path.join(dir, name);
  const staging = stagingDirFor(finalDir);
  const full: CheckpointMeta = {
    format: CHECKPOINT_FORMAT,
    ...meta,
    units: units.map((u) => ({ ...u.meta, adamStep: u.optimizer.step })),
    savedAt: new Date().toISOString(),
  };
  writeSafetensors(path.join(staging, 'tensors.safetensors'), units.flatMap((u) => unitTensors(u)), { format: CHECKPOINT_FORMAT });
  writeJsonAtomic(path.join(staging, 'state.json'), full);
  publishDirectory(staging, finalDir);
  atomicWriteFile(path.join(dir, LATEST), name + '\n');
  const old = fs.readdirSync(dir).filter((f) => /^ep-\d{8}$/.test(f)).sort();
  for (const f of old.slice(0, Math.max(0, old.length - KEEP))) if (f !== name) fs.rmSync(path.join(dir, f), { recursive: true, force: true });
  return finalDir;
}

export interface LoadedCheckpoint {
  path: string;
  meta: CheckpointMeta;
  tensors: Map<string, NamedTensor>;
}

export function readCheckpoint(checkpointPath: string): LoadedCheckpoint {
  const meta = JSON.parse(fs.readFileSync(path.join(checkpointPath, 'state.json'), 'utf8')) as CheckpointMeta;
  if (meta.format !== CHECKPOINT_FORMAT) throw new Error(`${checkpointPath} is not a ${CHECKPOINT_FORMAT} checkpoint`);
  const { tensors } = readSafetensors(path.join(checkpointPath, 'tensors.safetensors'));
  return { path: checkpointPath, meta, tensors: new Map(tensors.map((t) => [t.name, t])) };
}

/** The checkpoint LATEST points to, or null when `dir` holds none. */
export function readLatestCheckpoint(dir: string): LoadedCheckpoint | null {
  const pointer = path.join(dir, LATEST);
  if (!fs.existsSync(pointer)) return null;
  return readCheckpoint(path.join(dir, fs.readFileSync(pointer, 'utf8').trim()));
}

/** Load unit `unitId`'s weights (and Adam state, when an optimizer is given) from a checkpoint. */
export function restoreUnit(ckpt: LoadedCheckpoint, unitId: string, net: PolicyNetwork, optimizer?: AdamW): void {
  const get = (name: string): NamedTensor => {
    const t = ckpt.tensors.get(name);
    if (!t) throw new Error(`checkpoint ${ckpt.path} has no tensor ${name}`);
    return t;
  };
  tf.tidy(() => net.store.params.forEach((p) => {
    const w = get(`${unitId}.param.${p.name}`);
    if (w.shape.join(',') !== p.variable.shape.join(',')) throw new Error(`checkpoint ${ckpt.path}: ${w.name} has shape [${w.shape}], the network expects [${p.variable.shape}]`);
    p.variable.assign(tf.tensor(w.data as Float32Array, w.shape));
    if (optimizer) {
      optimizer.moment('m', p.name).assign(tf.tensor(get(`${unitId}.adam_m.${p.name}`).data as Float32Array, w.shape));
      optimizer.moment('v', p.name).assign(tf.tensor(get(`${unitId}.adam_v.${p.name}`).data as Float32Array, w.shape));
    }
  }));
  if (optimizer) {
    const unit = ckpt.meta.units.find((u) => u.id === unitId);
    if (!unit) throw new Error(`checkpoint ${ckpt.path} has no unit ${unitId}`);
    optimizer.step = unit.adamStep;
  }
}
