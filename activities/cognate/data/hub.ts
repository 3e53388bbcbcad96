// Hugging Face hub downloads in the hub's own URL layout (as huggingface_hub's hf_hub_url builds it):
//   {endpoint}/datasets/{repo}/resolve/{url-encoded revision}/{path}
// The resolve URL answers with a redirect to the storage CDN whose headers carry the file's sha256
// (X-Linked-Etag), size (X-Linked-Size) and commit (X-Repo-Commit); the body is checked against them.
// Files are cached under <cacheDir>/hub/<owner>--<name>/<revision>/<path> with a .meta.json sidecar.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { NonRetryableError } from '../../../common/child';
import { sha256File, writeJsonAtomic } from '../../../common/export/files';

export const DEFAULT_HUB_ENDPOINT = 'https://huggingface.co';

/** The job's endpoint wins, then HF_ENDPOINT (same variable huggingface_hub reads), then the public hub. */
export function resolveHubEndpoint(jobEndpoint?: string): string {
  const endpoint = jobEndpoint || process.env.HF_ENDPOINT || DEFAULT_HUB_ENDPOINT;
  return endpoint.replace(/\/+$/, '');
}

export function hubFileUrl(endpoint: string, repo: string, revision: string, file: string): string {
  return `${endpoint}/datasets/${repo}/resolve/${encodeURIComponent(revision)}/${file.split('/').map(encodeURIComponent).join('/')}`;
}

export interface RetryPolicy {
  /** Tries per file, the first included. */
  attempts: number;
  /** Delay before the second try; doubles each time (with up to 25% jitter). */
  baseDelayMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { attempts: 5, baseDelayMs: 1000 };

export interface HubFileRequest {
  endpoint: string;
  cacheDir: string;
  repo: string;
  revision: string;
  file: string;
}

export interface CachedHubFile {
  /** Local path of the verified file. */
  localPath: string;
  url: string;
  sha256: string;
  bytes: number;
  /** The commit the hub resolved the revision to, when it said. */
  commit: string | null;
  fromCache: boolean;
}

interface CacheMeta {
  url: string;
  repo: string;
  revision: string;
  file: string;
  sha256: string;
  bytes: number;
  commit: string | null;
  downloadedAt: string;
}

export function hubCachePath(cacheDir: string, repo: string, revision: string, file: string): string {
  const safe = (s: string) => s.replace(/[^A-Za-z0-9._-]+/g, '--');
  return path.join(cacheDir, 'hub', safe(repo), safe(revision), ...file.split('/').map(safe));
}

/** A cached file whose bytes still match the checksum recorded at download time, or null. */
export function readHubCache(req: HubFileRequest): CachedHubFile | null {
  const localPath = hubCachePath(req.cacheDir, req.repo, req.revision, req.file);
  const metaPath = `${localPath}.meta.json`;
  if (!fs.existsSync(localPath) || !fs.existsSync(metaPath)) return null;
  let meta: CacheMeta;
  try {
    meta = JSON.parse(fs.readFileSync(metaPath, 'utf8')) as CacheMeta;
  } catch {
    return null;
  }
  if (fs.statSync(localPath).size !== meta.bytes || sha256File(localPath) !== meta.sha256) return null;
  return { localPath, url: meta.url, sha256: meta.sha256, bytes: meta.bytes, commit: meta.commit, fromCache: true };
}

class TransientError extends Error {}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function hubHeaders(): Record<string, string> {
  const token = process.env.HF_TOKEN || process.env.HUGGING_FACE_HUB_TOKEN;
  return { 'user-agent': 'forge-pipelines/0.1', ...(token ? { authorization: `Bearer ${token}` } : {}) };
}

function unquoteEtag(etag: string | null): string | null {
  if (!etag) return null;
  const value = etag.replace(/^W\//, '').replace(/"/g, '');
  return /^[0-9a-f]{64}$/.test(value) ? value : null; // only LFS etags are sha256 digests
}

/** Return the cached file, or download it with retries on 5xx, 429, resets and short or corrupt bodies. */
export async function fetchHubFile(
  req: HubFileRequest,
  retry: RetryPolicy = DEFAULT_RETRY,
  onRetry?: (message: string) => void,
): Promise<CachedHubFile> {
  const cached = readHubCache(req);
  if (cached) return cached;
  const url = hubFileUrl(req.endpoint, req.repo, req.revision, req.file);
  let lastError = '';
  for (let attempt = 1; attempt <= retry.attempts; attempt++) {
    try {
      return await downloadOnce(req, url);
    } catch (err) {
      if (!(err instanceof TransientError)) throw err;
      lastError = err.message;
      if (attempt === retry.attempts) break;
      const delay = retry.baseDelayMs * 2 ** (attempt - 1) * (1 + Math.random() * 0.25);
      onRetry?.(`${lastError}; retry ${attempt}/${retry.attempts - 1} in ${Math.round(delay)} ms`);
      await sleep(delay);
    }
  }
  // Still retryable one level up: the activity may succeed later when the hub recovers.
  throw new Error(`download of ${url} failed after ${retry.attempts} attempts: ${lastError}`);
}

function statusError(url: string, status: number, req: HubFileRequest): Error {
  if (status === 404) {
    return new NonRetryableError(`${url}: 404 not found (check dataset "${req.repo}", revision "${req.revision}" and file "${req.file}")`);
  }
  if (status === 401 || status === 403) {
    return new NonRetryableError(`${url}: ${status} access denied (gated or private dataset? set HF_TOKEN to a token with access)`);
  }
  if (status === 429 || status >= 500) return new TransientError(`${url}: HTTP ${status}`);
  return new NonRetryableError(`${url}: unexpected HTTP ${status}`);
}

async function request(url: string, headers: Record<string, string>): Promise<Response> {
  try {
    return await fetch(url, { headers, redirect: 'manual' });
  } catch (err) {
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    throw new TransientError(`${url}: ${cause?.code ?? cause?.message ?? (err as Error).message}`);
  }
}

async function downloadOnce(req: HubFileRequest, url: string): Promise<CachedHubFile> {
  const headers = hubHeaders();
  let res = await request(url, headers);
  let expectedSha = unquoteEtag(res.headers.get('x-linked-etag'));
  const linkedSize = res.headers.get('x-linked-size');
  const commit = res.headers.get('x-repo-commit');
  for (let hops = 0; res.status >= 300 && res.status < 400; hops++) {
    const location = res.headers.get('location');
    await res.body?.cancel();
    if (!location || hops >= 5) throw new NonRetryableError(`${url}: redirect without a usable Location header`);
    const next = new URL(location, url);
    // The CDN URL is pre-signed: the hub token must not travel to another host.
    const sameOrigin = next.origin === new URL(url).origin;
    res = await request(next.toString(), sameOrigin ? headers : { 'user-agent': headers['user-agent'] });
    expectedSha ??= unquoteEtag(res.headers.get('x-linked-etag'));
  }
  if (!res.ok) {
    await res.body?.cancel();
    throw statusError(url, res.status, req);
  }
  if (!res.body) throw new TransientError(`${url}: empty response body`);
  const expectedBytes = Number(linkedSize ?? res.headers.get('content-length') ?? NaN);

  const localPath = hubCachePath(req.cacheDir, req.repo, req.revision, req.file);
  fs.mkdirSync(path.dirname(localPath), { recursive: true });
  // Streamed to a temp file next to the target and renamed only once complete and verified.
  const tmp = `${localPath}.partial-${process.pid}-${crypto.randomBytes(4).toString('hex')}`;
  const hash = crypto.createHash('sha256');
  let bytes = 0;
  const hasher = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      hash.update(chunk);
      bytes += chunk.length;
      done(null, chunk);
    },
  });
  try {
    try {
      // pipeline() tears every stream down on failure, so a dropped connection leaves no write in flight
      await pipeline(Readable.fromWeb(res.body as import('node:stream/web').ReadableStream<Uint8Array>), hasher, fs.createWriteStream(tmp));
    } catch (err) {
      throw new TransientError(`${url}: connection lost after ${bytes} bytes (${(err as Error).message})`);
    }
    if (Number.isFinite(expectedBytes) && bytes !== expectedBytes)
      throw new TransientError(`${url}: truncated body, got ${bytes} of ${expectedBytes} bytes`);
    const sha256 = hash.digest('hex');
    if (expectedSha && sha256 !== expectedSha) throw new TransientError(`${url}: sha256 ${sha256} does not match the hub's ${expectedSha}`);
    const fd = fs.openSync(tmp, 'r');
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    fs.renameSync(tmp, localPath);
    const meta: CacheMeta = {
      url,
      repo: req.repo,
      revision: req.revision,
      file: req.file,
      sha256,
      bytes,
      commit,
      downloadedAt: new Date().toISOString(),
    };
    writeJsonAtomic(`${localPath}.meta.json`, meta);
    return { localPath, url, sha256, bytes, commit, fromCache: false };
  } finally {
    fs.rmSync(tmp, { force: true });
  }
}
