// Read TensorBoard run directories back with TensorBoard's own loader (scripts/read_tensorboard.py).
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { pythonHas, ROOT } from './temporal';

export type Scalars = Record<string, [number, number, number][]>;

/** Scalars of a run directory as TensorBoard loads them; null (with a message) when tensorboard is not installed. */
export function readTensorBoard(dir: string): Scalars | null {
  if (!pythonHas('tensorboard')) {
    console.warn('python3 has no `tensorboard` package (pip install tensorboard): skipped reading the event files back with TensorBoard');
    return null;
  }
  return JSON.parse(
    execFileSync('python3', [path.join(ROOT, 'scripts', 'read_tensorboard.py'), dir], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    }),
  ) as Scalars;
}
