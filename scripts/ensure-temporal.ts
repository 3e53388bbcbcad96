// `npm install` step (postinstall, run with tsx): finds or installs the Temporal CLI (dev server + Web UI)
// once, so nothing downloads at test or run time. Order: an existing binary (common/temporal-cli.ts:
// FORGE_TEMPORAL_BIN, .tools/bin, PATH), else build the pinned release from Go modules, else download the
// official release. Never fails the install: workers against a remote cluster need no local server.
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { findTemporalBinary, LOCAL_TEMPORAL, PINNED_TEMPORAL_CLI as PINNED, runs, TOOLS_BIN } from '../common/temporal-cli';

const EXE = path.basename(LOCAL_TEMPORAL);
const HOW_TO =
  'Install the Temporal CLI yourself and put it on PATH (https://docs.temporal.io/cli#install), or install Go >= 1.22 and run\n' +
  `  GOBIN=${TOOLS_BIN} go install github.com/temporalio/cli/cmd/temporal@${PINNED}\n` +
  'or point FORGE_TEMPORAL_BIN at an existing binary.';

function buildWithGo(): string | null {
  const go = spawnSync('go', ['version'], { encoding: 'utf8' });
  if (go.status !== 0) return 'Go is not installed';
  console.log(`[forge] building the Temporal CLI ${PINNED} from Go modules into ${TOOLS_BIN} (once; a few minutes)...`);
  fs.mkdirSync(TOOLS_BIN, { recursive: true });
  const r = spawnSync('go', ['install', `github.com/temporalio/cli/cmd/temporal@${PINNED}`], {
    env: { ...process.env, GOBIN: TOOLS_BIN, CGO_ENABLED: process.env.CGO_ENABLED || '0' },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  return r.status === 0 ? null : `go install exited with ${r.status}`;
}

function downloadRelease(): string | null {
  const platform = ({ linux: 'linux', darwin: 'darwin' } as Record<string, string>)[process.platform];
  const arch = ({ x64: 'amd64', arm64: 'arm64' } as Record<string, string>)[process.arch];
  if (!platform || !arch) return `no official release for ${process.platform}/${process.arch}`;
  const url = `https://temporal.download/cli/archive/latest?platform=${platform}&arch=${arch}`;
  console.log(`[forge] downloading the Temporal CLI from ${url} ...`);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'temporal-cli-'));
  try {
    execFileSync('curl', ['-fsSL', '--max-time', '120', '-o', path.join(tmp, 'cli.tar.gz'), url], { stdio: 'inherit' });
    execFileSync('tar', ['-xzf', path.join(tmp, 'cli.tar.gz'), '-C', tmp]);
    fs.mkdirSync(TOOLS_BIN, { recursive: true });
    fs.copyFileSync(path.join(tmp, EXE), path.join(TOOLS_BIN, EXE));
    fs.chmodSync(path.join(TOOLS_BIN, EXE), 0o755);
    return null;
  } catch (err) {
    return `download failed: ${(err as Error).message.split('\n')[0]}`;
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

/** Find the binary, installing it into .tools/bin if needed. Throws with instructions when impossible. */
function ensureTemporalBinary(): string {
  const found = findTemporalBinary();
  if (found) return found;
  const problems: string[] = [];
  for (const attempt of [buildWithGo, downloadRelease]) {
    const problem = attempt();
    const local = path.join(TOOLS_BIN, EXE);
    if (!problem && fs.existsSync(local) && runs(local)) return local;
    problems.push(problem || 'the result did not run');
  }
  throw new Error(`could not install the Temporal CLI (${problems.join('; ')}).\n${HOW_TO}`);
}

if (process.env.FORGE_SKIP_TEMPORAL_INSTALL !== '1') {
  try {
    const bin = ensureTemporalBinary();
    console.log(`[forge] Temporal CLI: ${bin}`);
  } catch (err) {
    console.warn(`[forge] WARNING: ${(err as Error).message}`);
  }
}
