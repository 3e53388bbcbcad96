// Cognate's curves and report section. Sources, all measured during training:
//   - the loss curve kept in the checkpointed training progress (survives a resume; ≤512 points, stride
//     doubling), with the learning rate each kept step used;
//   - the validation history (every evalSteps);
//   - training_log.jsonl's step events, for the learning rate of runs whose checkpoints predate it in the
//     curve. After a resume the steps since the last checkpoint appear twice in the log: the later wins.
import fs from 'node:fs';
import path from 'node:path';
import { renderChartFiles, type LineChart, type Point } from '../../../common/report/charts';
import type { ReportUnit } from '../../../common/report/html';
import type { TrainSummary } from './trainer';

export const COGNATE_CHARTS = ['loss', 'validation_loss', 'learning_rate'] as const;

function lastPerStep(points: Point[]): Point[] {
  const byStep = new Map<number, number>();
  for (const p of points) byStep.set(p.x, p.y);
  return [...byStep.entries()].sort((a, b) => a[0] - b[0]).map(([x, y]) => ({ x, y }));
}

export function cognateCharts(
  model: string,
  summary: Pick<TrainSummary, 'lossCurve' | 'validationHistory'>,
  log: Record<string, unknown>[],
): Record<(typeof COGNATE_CHARTS)[number], LineChart> {
  const train = summary.lossCurve.map((p) => ({ x: p.step, y: p.loss }));
  const validation = lastPerStep(summary.validationHistory.map((v) => ({ x: v.step, y: v.loss })));
  const lrFromCurve = summary.lossCurve
    .filter((p) => typeof p.learningRate === 'number')
    .map((p) => ({ x: p.step, y: p.learningRate as number }));
  const lrFromLog = lastPerStep(
    log
      .filter((e) => e.kind === 'step' && typeof e.learningRate === 'number')
      .map((e) => ({ x: e.step as number, y: e.learningRate as number })),
  );
  const lr = lrFromCurve.length >= lrFromLog.length ? lrFromCurve : lrFromLog;
  return {
    loss: {
      title: `${model}: training and validation loss`,
      xTitle: 'optimizer step',
      yTitle: 'loss (nats per token)',
      series: [
        { name: 'training loss incl. ACT ponder cost (kept steps)', points: train },
        { name: 'validation cross-entropy', points: validation, dashed: true },
      ],
    },
    validation_loss: {
      title: `${model}: validation loss on held-out windows`,
      xTitle: 'optimizer step',
      yTitle: 'cross-entropy (nats per token)',
      series: [{ name: 'validation cross-entropy', points: validation }],
    },
    learning_rate: {
      title: `${model}: learning rate (warmup + cosine decay)`,
      xTitle: 'optimizer step',
      yTitle: 'learning rate',
      series: [{ name: 'learning rate used', points: lr }],
    },
  };
}

/** charts/<name>.svg and .png for one model, ready to go into its artifact directory. */
export async function cognateChartFiles(
  model: string,
  summary: Pick<TrainSummary, 'lossCurve' | 'validationHistory'>,
  log: Record<string, unknown>[],
): Promise<Record<string, string | Uint8Array>> {
  return renderChartFiles(cognateCharts(model, summary, log));
}

/** The report section of a published model directory (reads its training_stats.json). */
export function cognateReportUnit(modelDir: string): ReportUnit {
  const s = JSON.parse(fs.readFileSync(path.join(modelDir, 'training_stats.json'), 'utf8')) as {
    model: string;
    focus: string | null;
    steps: number;
    totalSteps: number;
    finalLoss: number | null;
    validation: { loss: number; perplexity: number; tokenAccuracy: number } | null;
    convergence: { initialLoss: number | null; bestValidationLoss: number | null; bestValidationStep: number | null };
    act: { enabled: boolean; meanDepth: number | null; nLayers: number };
    ltm: { fill: number; capacity: number; writes: number; streams?: number } | null;
    parameters: { total: number };
    tokensSeen: number;
    tokensPerSecond: number | null;
    backend: { backend: string; device: string };
    resumes: unknown[];
  };
  return {
    name: path.basename(modelDir),
    subtitle: `${s.parameters.total.toLocaleString('en-US')} parameters${s.focus ? `, focus: ${s.focus}` : ''}; ${s.backend.backend} backend on ${s.backend.device}`,
    charts: [...COGNATE_CHARTS],
    metrics: {
      'steps trained': `${s.steps} / ${s.totalSteps}`,
      'initial training loss': s.convergence.initialLoss,
      'final training loss': s.finalLoss,
      'final validation loss': s.validation?.loss ?? null,
      'final validation perplexity': s.validation?.perplexity ?? null,
      'final validation token accuracy': s.validation?.tokenAccuracy ?? null,
      'best validation loss (step)':
        s.convergence.bestValidationLoss === null
          ? null
          : `${Number(s.convergence.bestValidationLoss.toPrecision(4))} (${s.convergence.bestValidationStep})`,
      'ACT mean depth': s.act.enabled ? s.act.meanDepth : 'ACT off',
      'LTM fill': s.ltm
        ? `${s.ltm.fill} / ${s.ltm.capacity * Math.max(1, s.ltm.streams ?? 1)} (${s.ltm.streams ?? 1} streams of ${s.ltm.capacity}; ${s.ltm.writes} writes)`
        : 'LTM off',
      'tokens seen': s.tokensSeen,
      'tokens per second': s.tokensPerSecond,
      resumes: s.resumes.length,
    },
  };
}
