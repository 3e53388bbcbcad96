// Agent Forge throughput: raw environment speed, speed with the policy in the loop (batched forward),
// and the wall time of the default run trained directly (no Temporal). Writes bench/results/agent.json.
//   npm run bench:agent            (BENCH_SKIP_DEFAULT_RUN=1 to skip the multi-minute default run;
//                                   BENCH_AGENT_OUT=file writes the results there instead)
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PIPELINE_BACKEND, backendInfo, initBackend } from '../common/backend';
import { ACTION_COUNT, OBS_SIZE, createEnv, type EnvKind } from '../activities/agent/engine/envs';
import { runAgentForgeDirect } from '../activities/agent/engine/run';
import { createPolicy } from '../activities/agent/engine/policies';
import { Rng } from '../common/rng';
import { rollout } from '../activities/agent/engine/rollout';
import { makeEnvs } from '../activities/agent/engine/train';
import { AgentForgeConfigSchema, DEFAULT_AGENTS } from '../activities/agent/config';

const KINDS: EnvKind[] = ['navigation', 'referential', 'delegation'];
const POLICY_FOR: Record<EnvKind, 'planning_agent' | 'reactive_agent' | 'hierarchical_agent'> = {
  navigation: 'planning_agent',
  referential: 'reactive_agent',
  delegation: 'hierarchical_agent',
};

function settings(kind: EnvKind) {
  return {
    id: kind,
    kind,
    numAgents: 3,
    protocols: ['direct', 'broadcast'] as ('direct' | 'broadcast')[],
    strategy: 'hierarchical' as const,
    seed: 1,
  };
}

function rawEnvSpeed(kind: EnvKind, seconds = 2) {
  const env = createEnv(settings(kind));
  const rng = new Rng(1);
  const obs = new Float32Array(OBS_SIZE);
  const mask = new Float32Array(ACTION_COUNT);
  let episodes = 0;
  let steps = 0;
  const t0 = performance.now();
  while (performance.now() - t0 < seconds * 1000) {
    env.reset(rng);
    for (let t = 0; t < env.spec.horizon; t++) {
      const actions = [0, 1, 2].map((i) => {
        env.observe(i, obs, 0);
        env.actionMask(i, mask, 0);
        return rng.categorical(mask);
      });
      env.step(actions);
      steps++;
    }
    env.outcome();
    episodes++;
  }
  const s = (performance.now() - t0) / 1000;
  return { episodesPerSecond: episodes / s, envStepsPerSecond: steps / s };
}

function policySpeed(kind: EnvKind, batch: number, seconds = 4) {
  const config = AgentForgeConfigSchema.parse({});
  const envs = makeEnvs(settings(kind), batch, { level: 1, shifted: false });
  const net = createPolicy(POLICY_FOR[kind], config, new Rng(1), envs[0].spec.horizon);
  const rng = new Rng(2);
  let episodes = 0;
  const t0 = performance.now();
  while (performance.now() - t0 < seconds * 1000) {
    envs.forEach((e) => e.reset(new Rng(rng.nextUint32())));
    rollout({
      envs,
      controllers: [{ net, slots: [0, 1, 2] }],
      rng,
      mode: 'sample',
      epsilon: 0.1,
      shaping: { coordination: 0, delivery: 0 },
    });
    episodes += batch;
  }
  const s = (performance.now() - t0) / 1000;
  return {
    architecture: POLICY_FOR[kind],
    batch,
    episodesPerSecond: episodes / s,
    envStepsPerSecond: (episodes * envs[0].spec.horizon) / s,
  };
}

async function main(): Promise<void> {
  await initBackend(undefined, PIPELINE_BACKEND.agent);
  const environments: Record<string, unknown> = {};
  for (const kind of KINDS) {
    environments[kind] = { raw: rawEnvSpeed(kind), withPolicy: policySpeed(kind, 16) };
    console.log(kind, JSON.stringify(environments[kind]));
  }
  let defaultRun: unknown = null;
  if (!process.env.BENCH_SKIP_DEFAULT_RUN) {
    const config = AgentForgeConfigSchema.parse({});
    const agents = DEFAULT_AGENTS.map((a) => ({ id: a.id, architecture: a.architecture ?? config.agentArchitecture, role: a.role }));
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-agent-'));
    const cpuBefore = process.cpuUsage();
    const r = await runAgentForgeDirect({ sessionId: 'bench', config, agents, dataDir, log: (l) => console.log(l) });
    const cpu = process.cpuUsage(cpuBefore);
    defaultRun = {
      // CPU time of every thread of this process (native TensorFlow runs a thread pool, wasm one thread):
      // on a busy or fully subscribed worker this, not the wall time, is what a run costs.
      cpuSeconds: (cpu.user + cpu.system) / 1e6,
      note: 'default config, the 3 default agents trained one after another in this process (the workflow trains them in parallel), then the team, then artifacts; greedy evaluation on config.evalEpisodes seeded episodes',
      wallSeconds: r.wallSeconds,
      agents: r.agents.map((a) => ({
        agentId: a.label,
        architecture: a.units[0].architecture,
        parameterCount: a.units[0].parameterCount,
        environmentId: a.environmentId,
        episodes: a.episodesRun,
        wallSeconds: a.wallSeconds,
        trained: a.metrics?.trained,
        random: a.metrics?.random,
        episodesToThreshold: a.episodesToThreshold,
      })),
      team: r.team
        ? {
            environmentId: r.team.environmentId,
            episodes: r.team.episodesRun,
            wallSeconds: r.team.wallSeconds,
            trained: r.team.metrics?.trained,
            random: r.team.metrics?.random,
          }
        : null,
      artifactFiles: r.files.length,
    };
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
  const out = {
    generatedAt: new Date().toISOString(),
    machine: { cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model, node: process.version },
    backend: backendInfo(),
    environments,
    defaultRun,
  };
  const file = process.env.BENCH_AGENT_OUT || path.join(__dirname, 'results', 'agent.json');
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, JSON.stringify(out, null, 2) + '\n');
  console.log(JSON.stringify(out, null, 2));
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
