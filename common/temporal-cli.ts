// Where the Temporal CLI (dev server + Web UI) is: FORGE_TEMPORAL_BIN, else .tools/bin/temporal (what
// `npm install` builds), else `temporal` on PATH. Used at run time by the dev server and the tests, and
// by the install step (scripts/ensure-temporal.ts) to decide whether anything needs installing.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

/** The release `npm install` builds (newer tags carry a `replace` directive that breaks `go install`). */
export const PINNED_TEMPORAL_CLI = 'v1.5.1';
export const TOOLS_BIN = path.resolve(__dirname, '..', '.tools', 'bin');
const EXE = process.platform === 'win32' ? 'temporal.exe' : 'temporal';
export const LOCAL_TEMPORAL = path.join(TOOLS_BIN, EXE);

export function runs(bin: string): boolean {
  return spawnSync(bin, ['--version'], { encoding: 'utf8', timeout: 20_000 }).status === 0;
}

function onPath(): string | null {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    const candidate = path.join(dir, EXE);
    if (dir && fs.existsSync(candidate) && runs(candidate)) return candidate;
  }
  return null;
}

/** The binary to use, or null. Never installs anything; throws when FORGE_TEMPORAL_BIN is set but broken. */
export function findTemporalBinary(): string | null {
  const fromEnv = process.env.FORGE_TEMPORAL_BIN;
  if (fromEnv) {
    if (!runs(fromEnv)) throw new Error(`FORGE_TEMPORAL_BIN=${fromEnv} does not run ("${fromEnv} --version" failed)`);
    return fromEnv;
  }
  if (fs.existsSync(LOCAL_TEMPORAL) && runs(LOCAL_TEMPORAL)) return LOCAL_TEMPORAL;
  return onPath();
}
