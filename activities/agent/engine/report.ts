// Agent Forge's curves and report section. Sources, all measured: the per-batch history kept in each
// training checkpoint (reward, success and coordination of the ε-sampled training episodes; it survives
// a resume because it is checkpointed state) and the final seeded evaluation of the greedy policy beside
// a uniformly random policy on the same episodes (the "random level" each curve is drawn against).
import path from 'node:path';
import { downsample, movingAverage, renderChartFiles, type LineChart } from '../../../common/report/charts';
import { writeRunReport, type ReportUnit } from '../../../common/report/html';
import { tensorboardDir } from '../../../common/tensorboard';
import { writeAgentArtifacts, type ArtifactAgentInput, type ArtifactFile, type ArtifactJob } from './artifacts';
import { readCheckpoint, type HistoryEntry } from './checkpoint';
import type { EvalMetrics } from './train';

const METRICS = [
  { key: 'reward', field: 'reward', label: 'mean episode return', domain: undefined },
  { key: 'success', field: 'successRate', label: 'success rate', domain: [0, 1] as [number, number] },
  { key: 'coordination', field: 'coordinationScore', label: 'coordination score', domain: [0, 1] as [number, number] },
] as const;

export const AGENT_CHARTS = ['reward', 'success', 'coordination'] as const;
export const TEAM_CHARTS = ['team_reward', 'team_success', 'team_coordination'] as const;

/** Curves of one training phase (an agent alone, or the team) against the random and trained evaluations. */
export function phaseCharts(
  title: string,
  history: HistoryEntry[],
  evaluation: { trained: EvalMetrics; random: EvalMetrics },
  prefix = '',
): Record<string, LineChart> {
  const window = Math.max(1, Math.round(history.length / 20));
  const charts: Record<string, LineChart> = {};
  for (const m of METRICS) {
    const raw = history.map((h) => ({ x: h.episode, y: h[m.field] }));
    charts[`${prefix}${m.key}`] = {
      title: `${title}: ${m.label}`,
      xTitle: 'training episodes',
      yTitle: m.label,
      yDomain: m.domain,
      series: [
        { name: 'training batches (ε-sampled policy)', points: downsample(raw) },
        ...(window > 1 ? [{ name: `moving average over ${window} batches`, points: downsample(movingAverage(raw, window)) }] : []),
      ],
      levels: [
        { name: `trained policy: greedy evaluation, ${evaluation.trained.episodes} episodes`, y: evaluation.trained[m.field] },
        { name: 'uniformly random policy: same episodes', y: evaluation.random[m.field] },
      ],
    };
  }
  return charts;
}

function historyAt(checkpoint: string): HistoryEntry[] {
  return readCheckpoint(checkpoint).meta.trainer.history;
}

/** charts/*.svg and .png for one agent: its own training, and the team phase when there was one. */
export async function agentChartFiles(agent: ArtifactAgentInput): Promise<Record<string, string | Uint8Array>> {
  const charts = phaseCharts(`${agent.id} in ${agent.environment.id}`, historyAt(agent.trainingCheckpoint), agent.metrics);
  if (agent.team)
    Object.assign(
      charts,
      phaseCharts(`team in ${agent.team.environment.id}`, historyAt(agent.team.checkpoint), agent.team.metrics, 'team_'),
    );
  return renderChartFiles(charts);
}

function vsRandom(m: { trained: EvalMetrics; random: EvalMetrics }): Record<string, string> {
  const f = (v: number) => Number(v.toPrecision(4)).toString();
  return {
    'reward trained / random': `${f(m.trained.reward)} / ${f(m.random.reward)}`,
    'success trained / random': `${f(m.trained.successRate)} / ${f(m.random.successRate)}`,
    'coordination trained / random': `${f(m.trained.coordinationScore)} / ${f(m.random.coordinationScore)}`,
  };
}

function reportUnit(agent: ArtifactAgentInput): ReportUnit {
  const ckpt = readCheckpoint(agent.trainingCheckpoint).meta;
  return {
    name: agent.id,
    subtitle: `${agent.architecture}${agent.role ? ` (${agent.role})` : ''}, ${ckpt.units[0]?.parameterCount.toLocaleString('en-US') ?? '?'} parameters, trained in ${agent.environment.id}`,
    charts: [...AGENT_CHARTS, ...(agent.team ? TEAM_CHARTS : [])],
    metrics: {
      'episodes trained': ckpt.trainer.episode,
      'episodes to the success threshold': agent.episodesToThreshold,
      resumes: ckpt.trainer.resumes.length,
      ...vsRandom(agent.metrics),
      ...(agent.team ? Object.fromEntries(Object.entries(vsRandom(agent.team.metrics)).map(([k, v]) => [`team: ${k}`, v])) : {}),
    },
  };
}

/** Artifacts with curves for every agent, then the run's report.html; returns every file written. */
export async function writeAgentArtifactsWithReport(job: ArtifactJob): Promise<{ files: ArtifactFile[]; report: string }> {
  const charts: Record<string, Record<string, string | Uint8Array>> = {};
  for (const agent of job.agents) charts[agent.id] = await agentChartFiles(agent);
  const files = writeAgentArtifacts(job, charts);
  const report = writeRunReport(job.sessionDir, {
    title: `Agent Forge training — ${job.sessionId}`,
    pipeline: 'agent',
    sessionId: job.sessionId,
    units: job.agents.map(reportUnit),
    config: job.config,
    notes: [
      'Curves: per-batch values of the ε-sampled training episodes; horizontal lines: the final greedy evaluation and a uniformly random policy on the same seeded episodes.',
      // sessionDir is <dataDir>/agent/<sessionId> (common/paths sessionDir).
      `TensorBoard: tensorboard --logdir ${tensorboardDir(path.dirname(path.dirname(job.sessionDir)), 'agent', job.sessionId)}`,
    ],
  });
  files.push({ agentId: '(run report)', ...report });
  return { files, report: report.path };
}
