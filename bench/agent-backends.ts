// Which backend trains Agent Forge faster: runs bench/agent.ts (environment speed with the policy in the
// loop, then the whole default run) once per backend, one after the other in child processes (a process
// has one tfjs backend), and writes both with the machine's load average to bench/results/agent-backends.json.
// common/backend.ts's PIPELINE_BACKEND.agent is set from this.   npm run bench:agent-backends
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

interface AgentBench {
  backend: { backend: string; device: string; package: string };
  environments: Record<string, { withPolicy: { envStepsPerSecond: number } }>;
  defaultRun: {
    wallSeconds: number;
    cpuSeconds: number;
    agents: { agentId: string; wallSeconds: number; trained: unknown }[];
    team: { wallSeconds: number; trained: unknown } | null;
  } | null;
}

function runOn(backend: 'wasm' | 'tensorflow') {
  const out = path.join(os.tmpdir(), `bench-agent-${backend}-${process.pid}.json`);
  const loadBefore = os.loadavg();
  const r = spawnSync(process.execPath, ['--import', 'tsx', path.join(__dirname, 'agent.ts')], {
    env: { ...process.env, FORGE_TF_BACKEND: backend, BENCH_AGENT_OUT: out },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  if (r.status !== 0) throw new Error(`bench/agent.ts on ${backend} exited with ${r.status}`);
  const result = JSON.parse(fs.readFileSync(out, 'utf8')) as AgentBench;
  fs.rmSync(out);
  return {
    backend: result.backend,
    loadAverage1mBeforeAfter: [loadBefore[0], os.loadavg()[0]],
    envStepsPerSecondWithPolicy: Object.fromEntries(
      Object.entries(result.environments).map(([k, v]) => [k, Math.round(v.withPolicy.envStepsPerSecond)]),
    ),
    defaultRunWallSeconds: result.defaultRun?.wallSeconds ?? null,
    defaultRunCpuSeconds: result.defaultRun?.cpuSeconds ?? null,
    perUnitWallSeconds: result.defaultRun
      ? Object.fromEntries([
          ...result.defaultRun.agents.map((a) => [a.agentId, a.wallSeconds]),
          ['team', result.defaultRun.team?.wallSeconds ?? null],
        ])
      : null,
    trained: result.defaultRun
      ? Object.fromEntries([
          ...result.defaultRun.agents.map((a) => [a.agentId, a.trained]),
          ['team', result.defaultRun.team?.trained ?? null],
        ])
      : null,
  };
}

// Run order: native, then wasm (BENCH_FIRST=wasm swaps it); results list the runs in that order.
const runs = [
  runOn(process.env.BENCH_FIRST === 'wasm' ? 'wasm' : 'tensorflow'),
  runOn(process.env.BENCH_FIRST === 'wasm' ? 'tensorflow' : 'wasm'),
];
const wasm = runs.find((r) => r.backend.backend === 'wasm')!;
const native = runs.find((r) => r.backend.backend === 'tensorflow')!;
// A worker runs one training activity per core (FORGE_AGENT_CONCURRENCY), so a run's CPU time decides
// throughput there; the wall time favours whichever backend uses more threads when the machine is shared.
const cheaper =
  wasm.defaultRunCpuSeconds !== null && native.defaultRunCpuSeconds !== null
    ? native.defaultRunCpuSeconds < wasm.defaultRunCpuSeconds
      ? 'tensorflow'
      : 'wasm'
    : null;
const faster =
  wasm.defaultRunWallSeconds !== null && native.defaultRunWallSeconds !== null
    ? native.defaultRunWallSeconds < wasm.defaultRunWallSeconds
      ? 'tensorflow'
      : 'wasm'
    : null;
const out = {
  generatedAt: new Date().toISOString(),
  machine: {
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model,
    node: process.version,
    note: 'shared machine: compare only runs of one invocation; the load average says how busy it was',
  },
  runs,
  fasterForAWholeDefaultRun: faster,
  lessCpuForAWholeDefaultRun: cheaper,
  nativeOverWasmCpuTime:
    wasm.defaultRunCpuSeconds && native.defaultRunCpuSeconds ? native.defaultRunCpuSeconds / wasm.defaultRunCpuSeconds : null,
  nativeOverWasmWallTime:
    wasm.defaultRunWallSeconds && native.defaultRunWallSeconds ? native.defaultRunWallSeconds / wasm.defaultRunWallSeconds : null,
};
const file = path.join(__dirname, 'results', 'agent-backends.json');
fs.mkdirSync(path.dirname(file), { recursive: true });
fs.writeFileSync(file, JSON.stringify(out, null, 2) + '\n');
console.log(JSON.stringify(out, null, 2));
