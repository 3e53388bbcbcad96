#!/usr/bin/env node
// Finds or installs the Temporal CLI (dev server + Web UI) once, at `npm install` time, so nothing
// downloads at test or run time. Order: FORGE_TEMPORAL_BIN, `temporal` on PATH, .tools/bin/temporal,
// build the pinned release from Go modules, download the official release. Plain JS: runs before any build.
'use strict';
const { execFileSync, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const PINNED = 'v1.5.1'; // newer tags carry a `replace` directive that breaks `go install`
const ROOT = path.resolve(__dirname, '..');
const TOOLS_BIN = path.join(ROOT, '.tools', 'bin');
const EXE = process.platform === 'win32' ? 'temporal.exe' : 'temporal';
const HOW_TO =
  'Install the Temporal CLI yourself and put it on PATH (https://docs.temporal.io/cli#install), or install Go >= 1.22 and run\n' +
  `  GOBIN=${TOOLS_BIN} go install github.com/temporalio/cli/cmd/temporal@${PINNED}\n` +
  'or point FORGE_TEMPORAL_BIN at an existing binary.';

function works(bin) {
  const r = spawnSync(bin, ['--version'], { encoding: 'utf8', timeout: 20000 });
  return r.status === 0;
}

function onPath() {
  for (const dir of (process.env.PATH || '').split(path.delimiter)) {
    const candidate = path.join(dir, EXE);
    if (dir && fs.existsSync(candidate) && works(candidate)) return candidate;
  }
  return null;
}

/** The binary to use, or null. Never installs anything. */
function findTemporalBinary() {
  const fromEnv = process.env.FORGE_TEMPORAL_BIN;
  if (fromEnv) {
    if (!works(fromEnv)) throw new Error(`FORGE_TEMPORAL_BIN=${fromEnv} does not run ("${fromEnv} --version" failed)`);
    return fromEnv;
  }
  const local = path.join(TOOLS_BIN, EXE);
  if (fs.existsSync(local) && works(local)) return local;
  return onPath();
}

function buildWithGo() {
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

function downloadRelease() {
  const platform = { linux: 'linux', darwin: 'darwin' }[process.platform];
  const arch = { x64: 'amd64', arm64: 'arm64' }[process.arch];
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
    return `download failed: ${err.message.split('\n')[0]}`;
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

/** Find the binary, installing it into .tools/bin if needed. Throws with instructions when impossible. */
function ensureTemporalBinary() {
  const found = findTemporalBinary();
  if (found) return found;
  const problems = [];
  for (const attempt of [buildWithGo, downloadRelease]) {
    const problem = attempt();
    const local = path.join(TOOLS_BIN, EXE);
    if (!problem && fs.existsSync(local) && works(local)) return local;
    problems.push(problem || 'the result did not run');
  }
  throw new Error(`could not install the Temporal CLI (${problems.join('; ')}).\n${HOW_TO}`);
}

module.exports = { findTemporalBinary, ensureTemporalBinary, TOOLS_BIN, PINNED };

if (require.main === module) {
  if (process.env.FORGE_SKIP_TEMPORAL_INSTALL === '1') process.exit(0);
  try {
    const bin = ensureTemporalBinary();
    console.log(`[forge] Temporal CLI: ${bin}`);
  } catch (err) {
    // Do not fail `npm install`: workers against a remote cluster need no local server.
    console.warn(`[forge] WARNING: ${err.message}`);
  }
}
