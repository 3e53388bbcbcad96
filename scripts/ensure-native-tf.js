#!/usr/bin/env node
// Makes the native TensorFlow backend work after `npm install`/`npm ci` (run by the project's postinstall).
//
// @tensorflow/tfjs-node(-gpu)@4.22.0 download libtensorflow 2.9.1 from storage.googleapis.com in their own
// install script. Where that works, nothing is done here. Where it does not, that script fails, and npm,
// treating a failed optional dependency as absent, deletes the package. This script then:
//   1. puts the packages back with their dependencies (`npm install --no-save --ignore-scripts`: the
//      versions of package-lock.json, nothing saved);
//   2. fetches a pinned TensorFlow wheel from PyPI (cached in .tools/native-tf), and extracts its C library
//      (libtensorflow_cc.so.2 exports every TF_*/TFE_* function the binding calls) and the C API headers;
//   3. stages them in the package's deps/ as the official archive would be (libtensorflow.so.2.9.1 present
//      makes the package's install.js skip its download; scripts/custom-binary.json with a `tf-lib` makes
//      it build the addon from source) and runs that install.js, i.e. node-gyp against the local Node
//      headers, as npm would have;
//   4. checks the result: every TF_*/TFE_* symbol the addon imports is exported (nm -D), and in a child
//      process (LD_BIND_NOW=1) the package loads, reports the "tensorflow" backend and computes a matmul
//      equal to a plain-JS one.
// CPU machines build @tensorflow/tfjs-node against tensorflow-cpu==2.12.0 (232 MB). GPU workers set
// FORGE_TF_GPU=1: @tensorflow/tfjs-node-gpu against tensorflow==2.18.1 (CUDA 12) plus the NVIDIA wheels its
// `and-cuda` extra pins, unpacked into the package's deps/nvidia/ where TensorFlow looks for them. The
// package that is not built is removed again (as npm had done), so common/backend.ts, which tries
// tfjs-node-gpu first, never loads a half-installed package.
// Nothing here fails the install: on any problem it says why and the WebAssembly backend is used.
// FORGE_SKIP_NATIVE_TF=1 skips it. Plain JS: it runs before anything is compiled.
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const { ensureWheel } = require('./native-tf/pypi');
const { extract, listEntries } = require('./native-tf/unzip');

const ROOT = path.resolve(__dirname, '..');
const CACHE = path.resolve(ROOT, process.env.FORGE_NATIVE_TF_CACHE || path.join('.tools', 'native-tf'));
const TFJS_NODE_VERSION = '4.22.0';

/** Pinned builds: the package the code loads, and the wheel whose C library it is built against. */
const VARIANTS = {
  cpu: {
    package: '@tensorflow/tfjs-node',
    wheel: { name: 'tensorflow-cpu', version: '2.12.0', sha256: 'e8c7047552a2d759f3e65ac13e36dd24bb5fec2e6576e848287811ec44b3d62f' },
    cuda: false,
  },
  gpu: {
    package: '@tensorflow/tfjs-node-gpu',
    wheel: { name: 'tensorflow', version: '2.18.1', sha256: 'c9f87e5d2a680a4595f5dc30daf6bbaec9d4129b46d7ef1b2af63c46ac7d2828' },
    cuda: true,
  },
};
const ALL_PACKAGES = [VARIANTS.gpu.package, VARIANTS.cpu.package];
// Header folders the binding's two includes (c/c_api.h, c/eager/c_api.h) pull in, across TF 2.12..2.18
// (tsl moved from tensorflow/tsl to tsl/ and xla/tsl/).
const HEADER_PREFIXES = ['tensorflow/c/', 'tensorflow/core/platform/', 'tensorflow/tsl/', 'tsl/', 'xla/tsl/'];
const TF_LIBS = ['libtensorflow_cc.so.2', 'libtensorflow_framework.so.2'];

const log = (msg) => console.log(`[forge] native TensorFlow: ${msg}`);
const warn = (msg) => console.warn(`[forge] WARNING: native TensorFlow: ${msg}`);

const pkgDir = (name) => path.join(ROOT, 'node_modules', ...name.split('/'));

/** Loads `name` in a child process and returns check.js's verdict. */
function check(name) {
  if (!fs.existsSync(path.join(pkgDir(name), 'package.json'))) return { ok: false, package: name, error: 'not installed' };
  const r = spawnSync(process.execPath, [path.join(__dirname, 'native-tf', 'check.js'), name], {
    cwd: ROOT,
    encoding: 'utf8',
    timeout: 180000,
    env: { ...process.env, LD_BIND_NOW: '1', TF_CPP_MIN_LOG_LEVEL: process.env.TF_CPP_MIN_LOG_LEVEL || '2' },
  });
  const line = (r.stdout || '').trim().split('\n').pop();
  try {
    return JSON.parse(line);
  } catch {
    const err = `${r.stderr || ''}`.trim().split('\n').filter(Boolean).slice(-2).join(' / ');
    return { ok: false, package: name, error: err || `check exited with ${r.status}${r.signal ? ` (${r.signal})` : ''}` };
  }
}

function describe(result) {
  return `${result.package} ${TFJS_NODE_VERSION} on libtensorflow ${result.tfVersion}, ${result.gpu ? 'GPU' : 'CPU'}`;
}

function commandWorks(cmd, args = ['--version']) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 30000 });
  return r.status === 0;
}

/** node-gyp needs python3, make and a C++ compiler; say which are missing before downloading anything. */
function missingBuildTools() {
  const missing = [];
  if (!commandWorks('python3') && !commandWorks('python')) missing.push('python3');
  if (!commandWorks('make')) missing.push('make');
  if (!commandWorks('c++') && !commandWorks('g++') && !commandWorks('clang++')) missing.push('a C++ compiler (g++)');
  return missing;
}

/** Folder holding include/node/node_api.h for this node, so node-gyp downloads no headers. */
function localNodeDir() {
  if (process.env.npm_config_nodedir) return process.env.npm_config_nodedir;
  const candidates = [path.resolve(path.dirname(process.execPath), '..'), '/usr', '/usr/local'];
  return candidates.find((dir) => fs.existsSync(path.join(dir, 'include', 'node', 'node_api.h'))) || null;
}

/** npm's bundled node-gyp (node-pre-gyp runs it through npm_config_node_gyp), else one on PATH. */
function nodeGyp() {
  if (process.env.npm_config_node_gyp && fs.existsSync(process.env.npm_config_node_gyp)) return process.env.npm_config_node_gyp;
  const prefix = path.resolve(path.dirname(process.execPath), '..');
  const candidates = [
    process.env.npm_execpath && path.join(path.dirname(process.env.npm_execpath), '..', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
    path.join(prefix, 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
    '/usr/share/nodejs/node-gyp/bin/node-gyp.js',
  ].filter(Boolean);
  return candidates.find((p) => fs.existsSync(p)) || null;
}

/** Re-creates the optional packages npm deleted after their install script failed, without running it. */
function restorePackages() {
  const npmCli = process.env.npm_execpath;
  const [cmd, pre] = npmCli && fs.existsSync(npmCli) ? [process.execPath, [npmCli]] : ['npm', []];
  log('restoring @tensorflow/tfjs-node(-gpu) from package-lock.json (their own libtensorflow download failed)...');
  const r = spawnSync(
    cmd,
    [...pre, 'install', '--no-save', '--ignore-scripts', '--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error'],
    {
      cwd: ROOT,
      encoding: 'utf8',
      timeout: 10 * 60 * 1000,
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  if (r.status !== 0)
    throw new Error(`npm install --no-save --ignore-scripts failed: ${`${r.stderr}`.trim().split('\n').slice(-2).join(' / ')}`);
}

function linkOrCopy(from, to) {
  fs.rmSync(to, { force: true });
  try {
    fs.linkSync(from, to);
  } catch {
    fs.copyFileSync(from, to);
  }
}

function linkTree(fromDir, toDir) {
  fs.mkdirSync(toDir, { recursive: true });
  for (const entry of fs.readdirSync(fromDir, { withFileTypes: true })) {
    const from = path.join(fromDir, entry.name);
    const to = path.join(toDir, entry.name);
    if (entry.isDirectory()) linkTree(from, to);
    else linkOrCopy(from, to);
  }
}

/** Extracts the TF C library and headers of a wheel once into the cache; returns that folder. */
async function unpackTensorFlow(wheelFile, wheel) {
  const dir = path.join(CACHE, `${wheel.name}-${wheel.version}`);
  const marker = path.join(dir, '.complete');
  if (fs.existsSync(marker)) return dir;
  fs.rmSync(dir, { recursive: true, force: true });
  log(`extracting the TensorFlow C library from ${path.basename(wheelFile)}...`);
  const n = await extract(wheelFile, dir, (name) => {
    if (TF_LIBS.some((lib) => name === `tensorflow/${lib}`)) return path.join('lib', path.basename(name));
    const inc = 'tensorflow/include/';
    if (name.startsWith(inc) && HEADER_PREFIXES.some((p) => name.startsWith(inc + p))) return path.join('include', name.slice(inc.length));
    return null;
  });
  for (const lib of TF_LIBS)
    if (!fs.existsSync(path.join(dir, 'lib', lib))) throw new Error(`${path.basename(wheelFile)} has no tensorflow/${lib}`);
  if (!fs.existsSync(path.join(dir, 'include', 'tensorflow', 'c', 'eager', 'c_api.h')))
    throw new Error(`${path.basename(wheelFile)} has no C API headers`);
  fs.writeFileSync(marker, `${JSON.stringify({ wheel: path.basename(wheelFile), files: n })}\n`);
  return dir;
}

/** The NVIDIA wheels a TF wheel pins for its `and-cuda` extra (name, version), read from its METADATA. */
async function cudaRequirements(wheelFile) {
  const meta = listEntries(wheelFile).find((e) => /\.dist-info\/METADATA$/.test(e.name));
  if (!meta) throw new Error(`${path.basename(wheelFile)} has no METADATA`);
  const tmp = fs.mkdtempSync(path.join(CACHE, 'meta-'));
  try {
    await extract(wheelFile, tmp, (name) => (name === meta.name ? 'METADATA' : null));
    const reqs = [];
    for (const line of fs.readFileSync(path.join(tmp, 'METADATA'), 'utf8').split('\n')) {
      const m = /^Requires-Dist:\s*(nvidia-[A-Za-z0-9_.-]+)\s*\(?==\s*([^\s;)]+)\)?\s*;\s*extra\s*==\s*["']and-cuda["']/.exec(line);
      if (m) reqs.push({ name: m[1], version: m[2] });
    }
    if (reqs.length === 0) throw new Error(`${path.basename(wheelFile)} lists no NVIDIA wheels for its and-cuda extra`);
    return reqs;
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

/** Downloads and unpacks the CUDA 12 user-space libraries (nvidia/<lib>/lib/...) once; returns that folder. */
async function unpackCuda(tfWheelFile, wheel) {
  const dir = path.join(CACHE, `cuda-for-${wheel.name}-${wheel.version}`);
  const marker = path.join(dir, '.complete');
  if (fs.existsSync(marker)) return dir;
  fs.rmSync(dir, { recursive: true, force: true });
  const reqs = await cudaRequirements(tfWheelFile);
  log(`fetching the ${reqs.length} NVIDIA CUDA 12 wheels tensorflow[and-cuda]==${wheel.version} pins (about 1.8 GB, once)...`);
  for (const req of reqs) {
    const file = await ensureWheel(req, path.join(CACHE, 'wheels'), log);
    await extract(file, dir, (name) => (/^nvidia\/[^/]+\/lib\/[^/]+$/.test(name) ? name : null));
  }
  fs.writeFileSync(marker, `${JSON.stringify({ wheels: reqs })}\n`);
  return dir;
}

/** Puts the libraries and headers where the package's binding.gyp and install.js expect them. */
function stage(variant, tfDir, cudaDir) {
  const deps = path.join(pkgDir(variant.package), 'deps');
  fs.rmSync(deps, { recursive: true, force: true });
  const lib = path.join(deps, 'lib');
  fs.mkdirSync(lib, { recursive: true });
  for (const name of TF_LIBS) linkOrCopy(path.join(tfDir, 'lib', name), path.join(lib, name));
  // binding.gyp links -ltensorflow -ltensorflow_framework; the sonames (libtensorflow_cc.so.2,
  // libtensorflow_framework.so.2) are what the addon then needs at run time, found by its rpath deps/lib.
  fs.symlinkSync('libtensorflow_cc.so.2', path.join(lib, 'libtensorflow.so'));
  fs.symlinkSync('libtensorflow_framework.so.2', path.join(lib, 'libtensorflow_framework.so'));
  // The file install.js looks for to decide that libtensorflow is already there.
  fs.symlinkSync('libtensorflow_cc.so.2', path.join(lib, 'libtensorflow.so.2.9.1'));
  fs.cpSync(path.join(tfDir, 'include'), path.join(deps, 'include'), { recursive: true });
  if (cudaDir) linkTree(path.join(cudaDir, 'nvidia'), path.join(deps, 'nvidia'));
  fs.writeFileSync(
    path.join(pkgDir(variant.package), 'scripts', 'custom-binary.json'),
    `${JSON.stringify({ 'tf-lib': `pypi:${variant.wheel.name}==${variant.wheel.version}` }, null, 2)}\n`,
  );
}

/** The built addon, lib/napi-v<N>/tfjs_binding.node, or null. */
function builtAddon(dir) {
  const libDir = path.join(dir, 'lib');
  if (!fs.existsSync(libDir)) return null;
  for (const sub of fs.readdirSync(libDir)) {
    const file = path.join(libDir, sub, 'tfjs_binding.node');
    if (/^napi-v\d+$/.test(sub) && fs.existsSync(file)) return file;
  }
  return null;
}

/** Runs the package's own install.js as npm would (node-gyp through node-pre-gyp), logging to a file. */
function buildAddon(variant, logFile) {
  const dir = pkgDir(variant.package);
  const env = {
    ...process.env,
    PATH: [path.join(ROOT, 'node_modules', '.bin'), path.join(dir, 'node_modules', '.bin'), process.env.PATH].join(path.delimiter),
  };
  const nodedir = localNodeDir();
  if (nodedir) env.npm_config_nodedir = nodedir;
  const gyp = nodeGyp();
  if (gyp) env.npm_config_node_gyp = gyp;
  const args = [path.join('scripts', 'install.js'), ...(variant.cuda ? ['gpu'] : [])];
  const r = spawnSync(process.execPath, args, { cwd: dir, env, encoding: 'utf8', timeout: 15 * 60 * 1000 });
  fs.writeFileSync(
    logFile,
    `$ ${nodedir ? `npm_config_nodedir=${nodedir} ` : ''}node ${args.join(' ')}\n${r.stdout || ''}\n${r.stderr || ''}`,
  );
  const addon = builtAddon(dir);
  if (r.status !== 0 || !addon) {
    const tail = `${r.stdout || ''}\n${r.stderr || ''}`.trim().split('\n').filter(Boolean).slice(-3).join(' / ');
    throw new Error(`building the addon failed (${tail || `exit ${r.status}`}); full log: ${logFile}`);
  }
  return addon;
}

/** Every TF_* and TFE_* symbol the addon imports must be exported by the staged libraries. */
function checkSymbols(addon, libDir) {
  // Names come versioned (TF_NewStatus@tensorflow imported, TF_NewStatus@@tensorflow exported): compare bare.
  const nm = (args) => spawnSync('nm', args, { encoding: 'utf8', maxBuffer: 1 << 28 });
  const bare = (line) => line.trim().split(/\s+/).pop().split('@')[0];
  const imported = nm(['-D', '--undefined-only', addon]);
  if (imported.status !== 0) return 'nm not available: symbols checked by loading with LD_BIND_NOW=1 only';
  const wanted = [
    ...new Set(
      imported.stdout
        .split('\n')
        .map(bare)
        .filter((s) => /^TFE?_/.test(s)),
    ),
  ];
  const exported = new Set();
  for (const lib of TF_LIBS) {
    const r = nm(['-D', '--defined-only', path.join(libDir, lib)]);
    for (const l of r.stdout.split('\n')) exported.add(bare(l));
  }
  const missing = wanted.filter((s) => !exported.has(s));
  if (missing.length)
    throw new Error(`the TensorFlow library lacks ${missing.length} function(s) the binding calls: ${missing.join(', ')}`);
  return `all ${wanted.length} TF_*/TFE_* functions the binding calls are exported`;
}

/** Builds (or restores from the cache) one variant and checks it. Returns check.js's verdict. */
async function buildVariant(variant) {
  const started = Date.now();
  const wheelFile = await ensureWheel(variant.wheel, path.join(CACHE, 'wheels'), log);
  const tfDir = await unpackTensorFlow(wheelFile, variant.wheel);
  const cudaDir = variant.cuda && process.env.FORGE_TF_CUDA_WHEELS !== '0' ? await unpackCuda(wheelFile, variant.wheel) : null;
  stage(variant, tfDir, cudaDir);
  // A previously built addon for the same package, TF build and N-API version is reused: the addon links
  // to deps/lib through its rpath, so it does not depend on where the package sits.
  const cachedAddonRoot = path.join(tfDir, 'addon', `${variant.package.replace('/', '+')}-${TFJS_NODE_VERSION}`);
  const cached = builtAddon(cachedAddonRoot);
  if (cached) {
    const dest = path.join(pkgDir(variant.package), 'lib', path.basename(path.dirname(cached)), 'tfjs_binding.node');
    fs.mkdirSync(path.dirname(dest), { recursive: true });
    fs.copyFileSync(cached, dest);
    const result = check(variant.package);
    if (result.ok) return { ...result, how: `reused the addon built earlier, ${((Date.now() - started) / 1000).toFixed(0)} s` };
    fs.rmSync(path.join(pkgDir(variant.package), 'lib'), { recursive: true, force: true });
  }
  log(`building ${variant.package} against ${variant.wheel.name}==${variant.wheel.version} with node-gyp (about 30 s)...`);
  const addon = buildAddon(variant, path.join(CACHE, `build-${variant.package.split('/').pop()}.log`));
  const symbols = checkSymbols(addon, path.join(pkgDir(variant.package), 'deps', 'lib'));
  const result = check(variant.package);
  if (!result.ok) throw new Error(`the built ${variant.package} does not work: ${result.error}`);
  const keep = path.join(cachedAddonRoot, 'lib', path.basename(path.dirname(addon)), 'tfjs_binding.node');
  fs.mkdirSync(path.dirname(keep), { recursive: true });
  fs.copyFileSync(addon, keep);
  return { ...result, how: `built in ${((Date.now() - started) / 1000).toFixed(0)} s; ${symbols}` };
}

/** Removes packages that do not load (what npm itself does with a failed optional dependency). */
function removeBroken(except) {
  for (const name of ALL_PACKAGES) {
    if (name === except || !fs.existsSync(pkgDir(name))) continue;
    if (!check(name).ok) fs.rmSync(pkgDir(name), { recursive: true, force: true });
  }
}

async function main() {
  if (process.env.FORGE_SKIP_NATIVE_TF === '1') {
    log('skipped (FORGE_SKIP_NATIVE_TF=1); training uses whatever backend is installed, else WebAssembly.');
    return;
  }
  const wantGpu = process.env.FORGE_TF_GPU === '1';
  const order = wantGpu ? [VARIANTS.gpu, VARIANTS.cpu] : [VARIANTS.cpu];
  // 1. Already working (the official download succeeded, or an earlier run of this script built it)?
  if (/\boptional\b/.test(process.env.npm_config_omit || '')) {
    log('skipped: optional dependencies are omitted (--omit=optional); training uses WebAssembly.');
    return;
  }
  // (A GPU worker whose CPU package works still gets the GPU one built. On a GPU worker the official
  // tfjs-node-gpu, libtensorflow 2.9.1 for CUDA 11.2, is replaced too: with CUDA 12 it silently runs on the
  // CPU, and the image is built where no GPU can tell.)
  const current = check(order[0].package);
  if (current.ok && (!order[0].cuda || current.tfVersion === order[0].wheel.version)) {
    log(`ready: ${describe(current)}.`);
    return;
  }
  if (current.ok) log(`${describe(current)} works but is not the CUDA 12 build; replacing it.`);
  if (process.platform !== 'linux' || process.arch !== 'x64') {
    warn(
      `no official build installed and the PyPI route covers Linux x86-64 only (this is ${process.platform}/${process.arch}); the WebAssembly backend will be used.`,
    );
    return;
  }
  const missing = missingBuildTools();
  if (missing.length) {
    warn(
      `building it needs ${missing.join(', ')} (Debian/Ubuntu: apt-get install python3 make g++); the WebAssembly backend will be used. Install them and run: node scripts/ensure-native-tf.js`,
    );
    return;
  }
  const problems = [];
  try {
    if (ALL_PACKAGES.some((name) => !fs.existsSync(path.join(pkgDir(name), 'package.json')))) restorePackages();
  } catch (err) {
    problems.push(err.message);
  }
  for (const variant of problems.length ? [] : order) {
    try {
      const result = await buildVariant(variant);
      removeBroken(variant.package);
      log(`ready: ${describe(result)} (${result.how}).`);
      if (variant.cuda && !result.gpu)
        log(
          'no CUDA device is visible here, so it computes on the CPU; on a machine with an NVIDIA driver it uses the GPU (check with scripts/gpu-smoke).',
        );
      return;
    } catch (err) {
      problems.push(`${variant.package}: ${err.message}`);
      if (fs.existsSync(pkgDir(variant.package))) fs.rmSync(path.join(pkgDir(variant.package), 'lib'), { recursive: true, force: true });
    }
  }
  removeBroken(null);
  warn(
    `${problems.join('; ')}.\n  The WebAssembly backend will be used. To retry: node scripts/ensure-native-tf.js (FORGE_SKIP_NATIVE_TF=1 skips this step).`,
  );
}

module.exports = { VARIANTS, check };

if (require.main === module) {
  main().catch((err) => {
    // Never fail `npm install`: the WebAssembly backend works everywhere.
    warn(`${err.message}; the WebAssembly backend will be used.`);
  });
}
