// Per-agent artifact set, published with common/export/artifact.ts (staging dir, one rename, cleaned up on failure):
//   agent_weights.safetensors  parameters by name in PyTorch layout: linear weights as nn.Linear's [out, in]
//   agent_weights.pt           the same tensors as a PyTorch state dict (torch.load(weights_only=True))
//   tfjs/model.json + weights.bin   the same tensors for tf.io reloading; linear weights are transposed back
//                              to [in, out] on load (model.json records the layout)
//   All three hold identical tensors, so scripts/verify_weights.py can compare them one to one.
//   agent_config.json          architecture, derived sizes, parameter count, environment and I/O layout, run config
//   behavior_policy.json       what the greedy policy does: action distributions in representative situations
//                              and action frequencies over seeded evaluation episodes, plus evaluation stats
//   training_stats.json        per-update reward/success history, resumes, evaluations (agent and team phases)
//   charts/*.svg, charts/*.png reward, success and coordination curves against a random policy (report.ts)
//   charts/*.svg, charts/*.png reward, success and coordination curves against a random policy (report.ts)
//   manifest.json              sha256 and size of every file
import fs from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { publishWeightsArtifact } from '../../../common/export/artifact';
import { MANIFEST_NAME, sha256File } from '../../../common/export/files';
import type { NamedTensor } from '../../../common/export/tensors';
import type { AgentArchitecture, AgentForgeConfig } from '../config';
import { readCheckpoint, type CheckpointMeta } from './checkpoint';
import { ACTION_COUNT, HEADER_SIZE, OBS_SIZE, createEnv, type EnvSettings, type EnvVariant } from './envs';
import { tidyValue } from './nn';
import { createPolicy, disposePolicy, parameterCount, type PolicyNetwork } from './policies';
import { Rng, hashSeed } from '../../../common/rng';
import { goalOneHot, rollout } from './rollout';
import { makeEnvs, networkSizes, type EvalMetrics } from './train';

export interface ArtifactAgentInput {
  id: string;
  architecture: AgentArchitecture;
  role?: string;
  /** Final weights: the team checkpoint after coordination, else the agent's own final checkpoint. */
  weightsCheckpoint: string;
  /** The agent's own training checkpoint (history of the individual phase). */
  trainingCheckpoint: string;
  environment: EnvSettings;
  variant: EnvVariant;
  metrics: { trained: EvalMetrics; random: EvalMetrics };
  episodesToThreshold: number | null;
  team?: {
    checkpoint: string;
    environment: EnvSettings;
    variant: EnvVariant;
    slots: number[];
    metrics: { trained: EvalMetrics; random: EvalMetrics };
  };
}

export interface ArtifactJob {
  kind: 'artifacts';
  sessionId: string;
  config: AgentForgeConfig;
  /** $dataDir/agent/<sessionId>: each agent's set goes to <sessionDir>/<agentId>. */
  sessionDir: string;
  agents: ArtifactAgentInput[];
}

export interface ArtifactFile {
  agentId: string;
  path: string;
  bytes: number;
  sha256: string;
}

const SITUATIONS_PER_SLOT = 3;

/** Parameters in PyTorch layout: linear weights [in, out] here become nn.Linear's [out, in]. */
function exportTensors(net: PolicyNetwork): NamedTensor[] {
  return net.store.params.map((p) => {
    const [rows, cols] = p.variable.shape;
    if (p.kind === 'linear_weight') {
      const data = tf.tidy(() => tf.transpose(p.variable).dataSync() as Float32Array);
      return { name: p.name, shape: [cols, rows], dtype: 'float32' as const, data: Float32Array.from(data) };
    }
    return {
      name: p.name,
      shape: [...p.variable.shape],
      dtype: 'float32' as const,
      data: Float32Array.from(p.variable.dataSync() as Float32Array),
    };
  });
}

function softmaxMasked(logits: Float32Array, mask: Float32Array): number[] {
  let max = -Infinity;
  for (let a = 0; a < logits.length; a++) if (mask[a]) max = Math.max(max, logits[a]);
  const p = Array.from(logits, (l, a) => (mask[a] ? Math.exp(l - max) : 0));
  const total = p.reduce((x, y) => x + y, 0);
  return p.map((x) => x / total);
}

/**
 * Representative situations: the first steps of seeded greedy episodes, for every slot and turn where the
 * agent has a real choice; what the policy would do there (top actions with probabilities) and its value.
 */
function describeBehaviour(
  net: PolicyNetwork,
  settings: EnvSettings,
  variant: EnvVariant,
  slots: number[],
  seed: number,
  episodes: number,
) {
  const envs = makeEnvs(settings, Math.min(episodes, 32), variant);
  const rng = new Rng(hashSeed(seed, 0xbe4a));
  envs.forEach((e) => e.reset(new Rng(rng.nextUint32())));
  const run = rollout({ envs, controllers: [{ net, slots }], rng, mode: 'greedy', epsilon: 0, shaping: { coordination: 0, delivery: 0 } });
  const tr = run.trajectories[0];
  const labels = envs[0].spec.actionLabels;
  const frequencies: Record<string, Record<string, number>> = {};
  const situations: unknown[] = [];
  const perKey = new Map<string, number>();
  for (let t = 0; t < tr.steps; t++) {
    for (let r = 0; r < tr.rows; r++) {
      const i = t * tr.rows + r;
      const mask = tr.masks.subarray(i * ACTION_COUNT, (i + 1) * ACTION_COUNT);
      const valid = mask.reduce((s, v) => s + v, 0);
      if (valid < 2) continue;
      const slot = slots[r % slots.length];
      const phase = tr.obs[i * OBS_SIZE + 7] === 1 ? 'communicate' : 'act';
      const key = `agent ${slot}, ${phase} turn`;
      frequencies[key] ??= {};
      frequencies[key][labels[tr.actions[i]]] = (frequencies[key][labels[tr.actions[i]]] ?? 0) + 1;
      if ((perKey.get(key) ?? 0) >= SITUATIONS_PER_SLOT) continue;
      perKey.set(key, (perKey.get(key) ?? 0) + 1);
      const obs = tr.obs.subarray(i * OBS_SIZE, (i + 1) * OBS_SIZE);
      const out = tidyValue(() => {
        const o = net.forward({
          obs: tf.tensor2d(obs, [1, OBS_SIZE]),
          ...(net.contextLength > 1
            ? (() => {
                const w = net.contextLength;
                const ctx = new Float32Array(w * OBS_SIZE);
                const m = new Float32Array(w);
                for (let k = 0; k < w; k++) {
                  const step = t - (w - 1 - k);
                  if (step < 0) continue;
                  ctx.set(tr.obs.subarray((step * tr.rows + r) * OBS_SIZE, (step * tr.rows + r + 1) * OBS_SIZE), k * OBS_SIZE);
                  m[k] = 1;
                }
                return { context: tf.tensor3d(ctx, [1, w, OBS_SIZE]), contextMask: tf.tensor2d(m, [1, w]) };
              })()
            : {}),
          ...(net.goalCount > 0 ? { goal: tf.tensor2d(goalOneHot(Int32Array.of(tr.goals[i]), net.goalCount), [1, net.goalCount]) } : {}),
        });
        return {
          logits: Float32Array.from(o.logits.dataSync() as Float32Array),
          value: o.value.dataSync()[0],
          goals: o.goalLogits ? Array.from(tf.softmax(o.goalLogits).dataSync() as Float32Array) : null,
        };
      });
      const probs = softmaxMasked(out.logits, mask);
      const top = probs
        .map((p, a) => ({ action: labels[a], probability: Number(p.toFixed(4)) }))
        .filter((x) => x.probability > 0)
        .sort((a, b) => b.probability - a.probability)
        .slice(0, 5);
      situations.push({
        situation: `${key}, step ${t} of a seeded episode`,
        observation: Array.from(obs.subarray(HEADER_SIZE), (v) => Number(v.toFixed(3))),
        validActions: valid,
        topActions: top,
        chosen: labels[tr.actions[i]],
        value: Number(out.value.toFixed(4)),
        ...(out.goals ? { subGoalProbabilities: out.goals.map((g) => Number(g.toFixed(4))), subGoalInForce: tr.goals[i] } : {}),
      });
    }
  }
  for (const key of Object.keys(frequencies)) {
    const total = Object.values(frequencies[key]).reduce((a, b) => a + b, 0);
    frequencies[key] = Object.fromEntries(
      Object.entries(frequencies[key])
        .sort((a, b) => b[1] - a[1])
        .map(([k, v]) => [k, Number((v / total).toFixed(4))]),
    );
  }
  return {
    environment: settings.id,
    variant,
    episodes: envs.length,
    actionSelection: 'greedy (argmax of the masked policy)',
    successRate: run.success.filter(Boolean).length / envs.length,
    meanReturn: run.returns.reduce((a, b) => a + b, 0) / envs.length,
    actionFrequencies: frequencies,
    situations,
  };
}

function historyOf(checkpoint: string): Pick<CheckpointMeta['trainer'], 'history' | 'resumes' | 'episode' | 'episodesToThreshold'> {
  const { trainer } = readCheckpoint(checkpoint).meta;
  return { history: trainer.history, resumes: trainer.resumes, episode: trainer.episode, episodesToThreshold: trainer.episodesToThreshold };
}

/** The parent a fine-tuning run started from (recorded in its own training checkpoint), or null. */
function parentOf(checkpoint: string) {
  const p = readCheckpoint(checkpoint).meta.trainer.parent;
  return p
    ? { sessionId: p.sessionId, agent: p.agentId, weightsSha256: p.weightsSha256, artifactDir: p.dir, optimizerState: p.optimizerState }
    : null;
}

/** Write and publish every agent's artifact set; returns the files (manifest included). */
export function writeAgentArtifacts(
  job: ArtifactJob,
  extraFiles: Record<string, Record<string, string | Uint8Array>> = {},
): ArtifactFile[] {
  const files: ArtifactFile[] = [];
  for (const agent of job.agents) {
    const env = createEnv(agent.environment);
    const net = createPolicy(
      agent.architecture,
      networkSizes(job.config),
      new Rng(0),
      Math.max(env.spec.horizon, agent.team ? createEnv(agent.team.environment).spec.horizon : 0),
    );
    const ckpt = readCheckpoint(agent.weightsCheckpoint);
    // Rebuilding the network with the horizon it was trained with keeps the transformer window identical.
    const unitId = agent.id;
    tf.tidy(() => {
      for (const p of net.store.params) {
        const t = ckpt.tensors.get(`${unitId}.param.${p.name}`);
        if (!t) throw new Error(`checkpoint ${ckpt.path} has no weights for ${unitId} (${p.name})`);
        p.variable.assign(tf.tensor(t.data as Float32Array, t.shape));
      }
    });
    const parent = parentOf(agent.trainingCheckpoint);
    const finalDir = path.join(job.sessionDir, agent.id);
    const meta = { agentId: agent.id, architecture: agent.architecture, sessionId: job.sessionId, format: 'forge-agent-weights/1' };
    const tensors = exportTensors(net);
    const layout = 'pytorch: linear weights are [out, in]; transpose them for tfjs matMul';
    const evalSeed = hashSeed(job.config.seed, 0xe1a1);
    const manifest = publishWeightsArtifact(finalDir, tensors, {
      fileNames: { safetensors: 'agent_weights.safetensors', torch: 'agent_weights.pt' },
      safetensorsMetadata: { ...meta, layout },
      tfjs: {
        format: 'forge-agent-weights',
        generatedBy: 'forge-pipelines activities/agent',
        modelTopology: { architecture: agent.architecture, sizes: net.sizes, observationSize: OBS_SIZE, actionCount: ACTION_COUNT, layout },
      },
      extraFiles: {
        'agent_config.json': {
          agentId: agent.id,
          role: agent.role ?? null,
          architecture: agent.architecture,
          parameterCount: parameterCount(net),
          sizes: net.sizes,
          contextLength: net.contextLength,
          subGoals: net.goalCount,
          observationSize: OBS_SIZE,
          actionCount: ACTION_COUNT,
          parameters: net.store.params.map((p) => ({
            name: p.name,
            shape: p.variable.shape,
            torchShape: p.kind === 'linear_weight' ? [...p.variable.shape].reverse() : p.variable.shape,
          })),
          environment: { settings: agent.environment, spec: env.spec, evaluatedVariant: agent.variant },
          team: agent.team
            ? { environment: agent.team.environment.id, slots: agent.team.slots, strategy: agent.team.environment.strategy }
            : null,
          weightsFrom: agent.weightsCheckpoint,
          parent,
          config: job.config,
        },
        'behavior_policy.json': {
          agentId: agent.id,
          architecture: agent.architecture,
          ownEnvironment: describeBehaviour(
            net,
            agent.environment,
            agent.variant,
            Array.from({ length: agent.environment.numAgents }, (_, i) => i),
            evalSeed,
            job.config.evalEpisodes,
          ),
          teamEnvironment: agent.team
            ? describeBehaviour(net, agent.team.environment, agent.team.variant, agent.team.slots, evalSeed, job.config.evalEpisodes)
            : null,
          evaluation: { own: agent.metrics, team: agent.team?.metrics ?? null },
        },
        'training_stats.json': {
          agentId: agent.id,
          parent,
          individual: {
            environment: agent.environment.id,
            ...historyOf(agent.trainingCheckpoint),
            evaluation: agent.metrics,
            episodesToThreshold: agent.episodesToThreshold,
          },
          team: agent.team
            ? { environment: agent.team.environment.id, ...historyOf(agent.team.checkpoint), evaluation: agent.team.metrics }
            : null,
        },
        ...extraFiles[agent.id], // charts (engine/report.ts)
      },
      manifestExtra: { agentId: agent.id, sessionId: job.sessionId, architecture: agent.architecture },
    });
    disposePolicy(net);
    for (const f of manifest.files) files.push({ agentId: agent.id, path: path.join(finalDir, f.path), bytes: f.bytes, sha256: f.sha256 });
    const manifestPath = path.join(finalDir, MANIFEST_NAME);
    files.push({ agentId: agent.id, path: manifestPath, bytes: fs.statSync(manifestPath).size, sha256: sha256File(manifestPath) });
  }
  return files;
}
