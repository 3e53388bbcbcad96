// Live progress lines fed by the workflows' `progress` query.
import type { WorkflowHandle } from '@temporalio/client';
import { queryProgress } from '../client/runs';

interface ProgressView {
  progress?: number;
  message?: string;
  phase?: string;
  episode?: number;
  totalEpisodes?: number;
  step?: number;
  totalSteps?: number;
  reward?: number;
  successRate?: number;
  loss?: number | null;
}

export function renderProgress(label: string, p: ProgressView): string {
  const width = 24;
  const frac = Math.max(0, Math.min(1, p.progress ?? 0));
  const bar = '#'.repeat(Math.round(frac * width)).padEnd(width, '.');
  const parts = [`${label} [${bar}] ${(frac * 100).toFixed(0).padStart(3)}% ${p.phase ?? ''}`];
  if (p.totalEpisodes) parts.push(`episode ${p.episode}/${p.totalEpisodes} reward ${fmt(p.reward)} success ${fmt(p.successRate)}`);
  if (p.totalSteps) parts.push(`step ${p.step}/${p.totalSteps} loss ${fmt(p.loss)}`);
  if (p.message) parts.push(`| ${p.message}`);
  return parts.join(' ');
}

function fmt(x: number | null | undefined): string {
  return typeof x === 'number' && Number.isFinite(x) ? x.toFixed(3) : '-';
}

/** Poll the progress query of several runs and print them until every run has closed. */
export async function watchRuns(runs: { label: string; handle: WorkflowHandle }[], intervalMs = 2000): Promise<void> {
  const tty = process.stdout.isTTY;
  let printedLines = 0;
  const open = new Set(runs.map((r) => r.label));
  const lastLine = new Map<string, string>();
  const printedText = new Map<string, string>();
  while (open.size > 0) {
    for (const run of runs.filter((r) => open.has(r.label))) {
      try {
        lastLine.set(run.label, renderProgress(run.label, await queryProgress<ProgressView>(run.handle)));
      } catch (err) {
        lastLine.set(run.label, `${run.label} (progress unavailable: ${(err as Error).message.split('\n')[0]})`);
      }
      const desc = await run.handle.describe().catch(() => null);
      if (desc && desc.status.name !== 'RUNNING') open.delete(run.label);
    }
    const lines = runs.map((r) => lastLine.get(r.label) ?? '');
    if (tty) {
      // Redraw the block of lines in place.
      if (printedLines > 0) process.stdout.write(`\x1b[${printedLines}A`);
      for (const line of lines) process.stdout.write(`\x1b[2K${line.slice(0, (process.stdout.columns || 200) - 1)}\n`);
      printedLines = lines.length;
    } else {
      // Logs and pipes: a line only when a run's state changed.
      for (const run of runs) {
        const line = lastLine.get(run.label);
        if (line && line !== printedText.get(run.label)) process.stdout.write(`${line}\n`);
        if (line) printedText.set(run.label, line);
      }
    }
    if (open.size > 0) await new Promise((r) => setTimeout(r, tty ? intervalMs : Math.max(intervalMs, 5000)));
  }
}
