// Fetches one pinned wheel from PyPI into a cache folder: with pip when it is installed (it honours the
// user's index, proxy and certificate settings, and its HTTP cache serves a repeated download), otherwise
// with Node's https from the index's JSON simple API (PEP 691). Either way the file's sha256 is checked
// against the pinned or the index-published digest before it is used. Only Linux x86-64 wheels are asked
// for: the C libraries inside do not depend on the Python version, so one CPython tag (3.11) is pinned.
'use strict';
const crypto = require('node:crypto');
const fs = require('node:fs');
const https = require('node:https');
const path = require('node:path');
const { spawnSync } = require('node:child_process');

const PLATFORMS = ['manylinux2014_x86_64', 'manylinux_2_17_x86_64', 'manylinux_2_27_x86_64', 'manylinux_2_28_x86_64'];
const PYTHON_VERSION = '3.11';

function sha256(file) {
  const hash = crypto.createHash('sha256');
  const fd = fs.openSync(file, 'r');
  const buf = Buffer.alloc(1 << 22);
  try {
    for (;;) {
      const n = fs.readSync(fd, buf, 0, buf.length, null);
      if (n === 0) break;
      hash.update(buf.subarray(0, n));
    }
  } finally {
    fs.closeSync(fd);
  }
  return hash.digest('hex');
}

function normalise(name) {
  return name.toLowerCase().replace(/[-_.]+/g, '_');
}

/** A wheel of `name==version` already in `dir`, or null. */
function findCached(dir, name, version) {
  if (!fs.existsSync(dir)) return null;
  // Wheel file names are {distribution}-{version}-{tags}.whl, the distribution with - and . as _.
  const hit = fs.readdirSync(dir).find((f) => {
    const [dist, ver] = f.split('-');
    return f.endsWith('.whl') && normalise(dist) === normalise(name) && ver === version;
  });
  return hit ? path.join(dir, hit) : null;
}

function pipAvailable() {
  for (const python of ['python3', 'python']) {
    const r = spawnSync(python, ['-m', 'pip', '--version'], { encoding: 'utf8', timeout: 30000 });
    if (r.status === 0) return python;
  }
  return null;
}

function downloadWithPip(python, name, version, dir) {
  const args = [
    '-m',
    'pip',
    'download',
    '--no-deps',
    '--only-binary=:all:',
    '--python-version',
    PYTHON_VERSION,
    ...PLATFORMS.flatMap((p) => ['--platform', p]),
    '--retries',
    '2',
    '--timeout',
    '60',
    '--disable-pip-version-check',
    '--progress-bar',
    'off',
    '-d',
    dir,
    `${name}==${version}`,
  ];
  const r = spawnSync(python, args, { encoding: 'utf8', timeout: 30 * 60 * 1000, stdio: ['ignore', 'pipe', 'pipe'] });
  if (r.status !== 0) {
    const why =
      `${r.stderr || ''}${r.stdout || ''}`.trim().split('\n').slice(-3).join(' / ') || (r.error && r.error.message) || `exit ${r.status}`;
    throw new Error(`pip download ${name}==${version} failed: ${why}`);
  }
}

function get(url, redirects = 5, headers = {}) {
  return new Promise((resolve, reject) => {
    const req = https.get(url, { headers: { 'user-agent': 'forge-pipelines-install', ...headers }, timeout: 60000 }, (res) => {
      if ([301, 302, 303, 307, 308].includes(res.statusCode) && res.headers.location && redirects > 0) {
        res.resume();
        resolve(get(new URL(res.headers.location, url).toString(), redirects - 1, headers));
      } else if (res.statusCode !== 200) {
        res.resume();
        reject(new Error(`GET ${url}: HTTP ${res.statusCode}`));
      } else resolve(res);
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${url}: timed out`)));
    req.on('error', reject);
  });
}

/**
 * Chooses the file pip would choose for our pinned Python tag and platforms from the index's JSON simple API
 * (PEP 691, what pip itself reads; PIP_INDEX_URL is honoured), and checks the sha256 the index publishes.
 */
async function downloadWithHttps(name, version, dir) {
  const index = (process.env.PIP_INDEX_URL || 'https://pypi.org/simple').replace(/\/+$/, '');
  const project = name.toLowerCase().replace(/[-_.]+/g, '-');
  const res = await get(`${index}/${project}/`, 5, { accept: 'application/vnd.pypi.simple.v1+json' });
  let body = '';
  for await (const chunk of res) body += chunk;
  const files = (JSON.parse(body).files || []).filter((f) => f.filename.split('-')[1] === version);
  const tag = `cp${PYTHON_VERSION.replace('.', '')}`;
  const fits = (f) => /\.whl$/.test(f.filename) && /manylinux[^-]*x86_64\.whl$/.test(f.filename) && !f.yanked;
  const file =
    files.find((f) => fits(f) && f.filename.includes(`-${tag}-${tag}-`)) || files.find((f) => fits(f) && /-py3-none-/.test(f.filename));
  if (!file) throw new Error(`${index} has no Linux x86-64 wheel of ${name}==${version} for ${tag}`);
  const out = path.join(dir, file.filename);
  const part = `${out}.part`;
  const { pipeline } = require('node:stream/promises');
  await pipeline(await get(new URL(file.url, `${index}/${project}/`).toString()), fs.createWriteStream(part));
  if (file.hashes && file.hashes.sha256 && sha256(part) !== file.hashes.sha256) {
    fs.rmSync(part, { force: true });
    throw new Error(`${file.filename}: sha256 differs from the one the index publishes`);
  }
  fs.renameSync(part, out);
}

/**
 * Path of the wheel `name==version` in `dir`, downloading it when absent. `expectSha256` (optional) pins the
 * exact file; a cached file that does not match is removed and fetched again.
 */
async function ensureWheel({ name, version, sha256: expectSha256 }, dir, log) {
  fs.mkdirSync(dir, { recursive: true });
  let file = findCached(dir, name, version);
  if (file && expectSha256 && sha256(file) !== expectSha256) {
    log(`cached ${path.basename(file)} does not match its pinned sha256; downloading it again`);
    fs.rmSync(file);
    file = null;
  }
  if (!file) {
    const python = pipAvailable();
    log(`downloading ${name}==${version} from PyPI${python ? ' with pip' : ''} (once; cached in ${dir})...`);
    if (python) downloadWithPip(python, name, version, dir);
    else await downloadWithHttps(name, version, dir);
    file = findCached(dir, name, version);
    if (!file) throw new Error(`the download of ${name}==${version} left no wheel in ${dir}`);
    if (expectSha256) {
      const got = sha256(file);
      if (got !== expectSha256) {
        fs.rmSync(file);
        throw new Error(`${path.basename(file)} has sha256 ${got}, expected the pinned ${expectSha256}`);
      }
    }
  }
  return file;
}

module.exports = { ensureWheel, sha256 };
