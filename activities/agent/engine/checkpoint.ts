// Agent training checkpoints, on the shared mechanism (common/checkpoint.ts: one checksummed file per
// checkpoint, atomic rename + fsync, a corrupt newest one skipped with a warning for the previous one,
// stale temp files and old staging folders cleaned). A checkpoint holds every unit's weights and Adam
// moments and the trainer state (episode counter, RNG state, curriculum/shift state, history).
import fs from 'node:fs';
import * as tf from '@tensorflow/tfjs-core';
import {
  listCheckpoints,
  loadLatestCheckpoint,
  readCheckpoint as readCheckpointFile,
  saveCheckpoint as saveCheckpointFile,
} from '../../../common/checkpoint';
import type { NamedTensor } from '../../../common/export/tensors';
import type { AgentArchitecture } from '../config';
import type { PolicyNetwork } from './policies';
import type { AdamW } from '../../../common/optim';
import type { RngState } from '../../../common/rng';

export const CHECKPOINT_FORMAT = 'forge-agent-checkpoint/2';
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

/** What the checkpoint file stores: the metadata and the tensors as plain arrays. */
interface StoredState {
  meta: CheckpointMeta;
  tensors: { name: string; shape: number[]; data: Float32Array }[];
}

/** Write a checkpoint for `trainer.episode`; returns its file. Older checkpoints beyond KEEP are removed. */
export function saveCheckpoint(dir: string, meta: Omit<CheckpointMeta, 'format' | 'units' | 'savedAt'>, units: TrainableUnit[]): string {
  const full: CheckpointMeta = {
    format: CHECKPOINT_FORMAT,
    ...meta,
    units: units.map((u) => ({ ...u.meta, adamStep: u.optimizer.step })),
    savedAt: new Date().toISOString(),
  };
  const tensors = units.flatMap((u) => unitTensors(u)).map((t) => ({ name: t.name, shape: t.shape, data: t.data as Float32Array }));
  return saveCheckpointFile(dir, meta.trainer.episode, { meta: full, tensors } satisfies StoredState, KEEP).path;
}

export interface LoadedCheckpoint {
  path: string;
  meta: CheckpointMeta;
  tensors: Map<string, NamedTensor>;
}

function loaded(file: string, state: StoredState): LoadedCheckpoint {
  if (state?.meta?.format !== CHECKPOINT_FORMAT) throw new Error(`${file} is not a ${CHECKPOINT_FORMAT} checkpoint`);
  return {
    path: file,
    meta: state.meta,
    tensors: new Map(state.tensors.map((t) => [t.name, { name: t.name, shape: t.shape, dtype: 'float32' as const, data: t.data }])),
  };
}

/** Read and verify one checkpoint file (throws CorruptCheckpointError when it does not verify). */
export function readCheckpoint(checkpointPath: string): LoadedCheckpoint {
  return loaded(checkpointPath, readCheckpointFile<StoredState>(checkpointPath).state);
}

/** The newest checkpoint in `dir` that verifies (a corrupt newer one is set aside with `warn`), or null. */
export function readLatestCheckpoint(dir: string, warn: (message: string) => void = (m) => console.warn(m)): LoadedCheckpoint | null {
  const found = loadLatestCheckpoint<StoredState>(dir, warn);
  return found ? loaded(found.path, found.state) : null;
}

/** The episode of the newest checkpoint file in `dir` (without reading it), or -1. */
export function newestCheckpointEpisode(dir: string): number {
  return fs.existsSync(dir) ? (listCheckpoints(dir)[0]?.step ?? -1) : -1;
}

/** Load unit `unitId`'s weights (and Adam state, when an optimizer is given) from a checkpoint. */
export function restoreUnit(ckpt: LoadedCheckpoint, unitId: string, net: PolicyNetwork, optimizer?: AdamW): void {
  const get = (name: string): NamedTensor => {
    const t = ckpt.tensors.get(name);
    if (!t) throw new Error(`checkpoint ${ckpt.path} has no tensor ${name}`);
    return t;
  };
  tf.tidy(() =>
    net.store.params.forEach((p) => {
      const w = get(`${unitId}.param.${p.name}`);
      if (w.shape.join(',') !== p.variable.shape.join(','))
        throw new Error(`checkpoint ${ckpt.path}: ${w.name} has shape [${w.shape}], the network expects [${p.variable.shape}]`);
      p.variable.assign(tf.tensor(w.data as Float32Array, w.shape));
      if (optimizer) {
        optimizer.moment('m', p.name).assign(tf.tensor(get(`${unitId}.adam_m.${p.name}`).data as Float32Array, w.shape));
        optimizer.moment('v', p.name).assign(tf.tensor(get(`${unitId}.adam_v.${p.name}`).data as Float32Array, w.shape));
      }
    }),
  );
  if (optimizer) {
    const unit = ckpt.meta.units.find((u) => u.id === unitId);
    if (!unit) throw new Error(`checkpoint ${ckpt.path} has no unit ${unitId}`);
    optimizer.step = unit.adamStep;
  }
}
