// Where files live under FORGE_DATA_DIR: the session, checkpoint and dataset folders of both pipelines are
// built here (with their names checked); files inside them are named by the code that writes them.
import fs from 'node:fs';
import path from 'node:path';
import type { Pipeline } from './constants';

/** sessionIds are validated by the zod schemas; this re-check guards every path built from one. */
export function assertSafeSegment(name: string, what: string): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/.test(name) || name.includes('..')) {
    throw new Error(`${what} "${name}" is not a safe path segment (letters, digits, _ . - only; no "..")`);
  }
  return name;
}

/** $FORGE_DATA_DIR/<pipeline>/<sessionId>: artifacts and per-run state of one session. */
export function sessionDir(dataDir: string, pipeline: Pipeline, sessionId: string): string {
  return path.join(dataDir, pipeline, assertSafeSegment(sessionId, 'sessionId'));
}

/** Checkpoints are kept apart from published artifacts so a half-finished run never looks finished. */
export function checkpointDir(dataDir: string, pipeline: Pipeline, sessionId: string, unit: string): string {
  return path.join(dataDir, 'checkpoints', pipeline, assertSafeSegment(sessionId, 'sessionId'), assertSafeSegment(unit, 'name'));
}

/** Downloaded and prepared datasets, shared across sessions. */
export function datasetCacheDir(dataDir: string): string {
  return path.join(dataDir, 'datasets');
}

/** Fail early, and clearly, when FORGE_DATA_DIR (or a folder in it) cannot be written. */
export function assertWritableDir(dir: string, what: string): void {
  try {
    fs.mkdirSync(dir, { recursive: true });
    const probe = path.join(dir, `.write-probe-${process.pid}`);
    fs.writeFileSync(probe, '');
    fs.unlinkSync(probe);
  } catch (err) {
    throw new Error(`${what} ${dir} is not writable: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}
