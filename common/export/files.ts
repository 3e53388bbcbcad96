// Durable, all-or-nothing file publishing. A worker can be killed at any instant (Temporal retries the
// activity elsewhere), so a reader must see either the previous artifact set or the complete new one.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

export const MANIFEST_FILE = 'manifest.json';

export function sha256File(file: string): string {
  const hash = crypto.createHash('sha256');
  const fd = fs.openSync(file, 'r');
  try {
    const chunk = Buffer.allocUnsafe(1 << 20); // streamed: weight files can be larger than we want in memory twice
    let n: number;
    while ((n = fs.readSync(fd, chunk, 0, chunk.length, null)) > 0) hash.update(chunk.subarray(0, n));
  } finally {
    fs.closeSync(fd);
  }
  return hash.digest('hex');
}

function fsyncPath(p: string): void {
  const fd = fs.openSync(p, 'r');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/** Without this a crash right after rename can leave the new name pointing at nothing on some filesystems. */
export function fsyncDirectory(dir: string): void {
  fsyncPath(dir);
}

/** Write to a temp file in the same directory, fsync, rename over `file`, fsync the directory. */
export function atomicWriteFile(file: string, data: string | Uint8Array): void {
  const dir = path.dirname(file);
  fs.mkdirSync(dir, { recursive: true });
  const tmp = path.join(dir, `.${path.basename(file)}.tmp-${process.pid}-${crypto.randomBytes(4).toString('hex')}`);
  const fd = fs.openSync(tmp, 'w');
  try {
    fs.writeFileSync(fd, data);
    fs.fsyncSync(fd);
  } catch (err) {
    fs.closeSync(fd);
    fs.rmSync(tmp, { force: true });
    throw err;
  }
  fs.closeSync(fd);
  fs.renameSync(tmp, file);
  fsyncDirectory(dir);
}

export function writeJsonAtomic(file: string, value: unknown): void {
  atomicWriteFile(file, JSON.stringify(value, null, 2) + '\n');
}

/** Relative paths (with "/") of every regular file under dir, sorted so manifests are deterministic. */
export function listFilesRecursive(dir: string): string[] {
  const out: string[] = [];
  const walk = (rel: string): void => {
    for (const entry of fs.readdirSync(path.join(dir, rel), { withFileTypes: true })) {
      const child = rel ? `${rel}/${entry.name}` : entry.name;
      if (entry.isDirectory()) walk(child);
      else if (entry.isFile()) out.push(child);
      else throw new Error(`${path.join(dir, child)}: only regular files and directories can be published`);
    }
  };
  walk('');
  return out.sort();
}

/** The staging dir sits next to finalDir (same filesystem), so the final rename is a single atomic step. */
export function stagingDirFor(finalDir: string): string {
  return path.join(path.dirname(finalDir), `.${path.basename(finalDir)}.staging-${process.pid}-${crypto.randomBytes(4).toString('hex')}`);
}

/**
 * Move a fully written stagingDir to finalDir. Files are fsynced first so the rename cannot become
 * durable before their contents. An existing finalDir is first renamed aside and removed only after the
 * new set is in place: a crash in between leaves the old set at `<finalDir>.replaced-*`, never a mix.
 */
export function publishDirectory(stagingDir: string, finalDir: string): void {
  const staging = path.resolve(stagingDir);
  const final = path.resolve(finalDir);
  if (path.dirname(staging) !== path.dirname(final)) {
    throw new Error(`publishDirectory: staging dir ${staging} must be a sibling of ${final} so the rename is atomic`);
  }
  const files = listFilesRecursive(staging);
  for (const rel of files) fsyncPath(path.join(staging, rel));
  for (const dir of new Set([staging, ...files.map((rel) => path.dirname(path.join(staging, rel)))])) fsyncDirectory(dir);

  let replaced: string | undefined;
  if (fs.existsSync(final)) {
    replaced = `${final}.replaced-${process.pid}-${crypto.randomBytes(4).toString('hex')}`;
    fs.renameSync(final, replaced);
  }
  try {
    fs.renameSync(staging, final);
  } catch (err) {
    if (replaced) fs.renameSync(replaced, final); // put the previous set back
    throw err;
  }
  fsyncDirectory(path.dirname(final));
  if (replaced) fs.rmSync(replaced, { recursive: true, force: true });
}

export interface ManifestFile {
  path: string;
  bytes: number;
  sha256: string;
}

export interface Manifest {
  files: ManifestFile[];
  [extra: string]: unknown;
}

/** Hash every file under dir (except manifest.json itself) into dir/manifest.json; returns what it wrote. */
export function writeManifest(dir: string, extra: Record<string, unknown> = {}): Manifest {
  if ('files' in extra) throw new Error('writeManifest: "files" is reserved in manifest extras');
  const files = listFilesRecursive(dir)
    .filter((rel) => rel !== MANIFEST_FILE)
    .map((rel) => {
      const abs = path.join(dir, rel);
      return { path: rel, bytes: fs.statSync(abs).size, sha256: sha256File(abs) };
    });
  const manifest: Manifest = { ...extra, files };
  writeJsonAtomic(path.join(dir, MANIFEST_FILE), manifest);
  return manifest;
}

/** One human-readable line per problem; an empty list means every listed file is present and intact. */
export function verifyManifest(dir: string): string[] {
  let manifest: Manifest;
  try {
    manifest = JSON.parse(fs.readFileSync(path.join(dir, MANIFEST_FILE), 'utf8')) as Manifest;
  } catch (err) {
    return [`${MANIFEST_FILE}: cannot be read (${(err as Error).message})`];
  }
  if (!Array.isArray(manifest.files)) return [`${MANIFEST_FILE}: "files" is not a list`];
  const problems: string[] = [];
  const listed = new Set<string>();
  for (const f of manifest.files) {
    if (typeof f?.path !== 'string' || typeof f.bytes !== 'number' || typeof f.sha256 !== 'string') {
      problems.push(`${MANIFEST_FILE}: malformed entry ${JSON.stringify(f)}`);
      continue;
    }
    listed.add(f.path);
    const abs = path.join(dir, f.path);
    if (path.relative(dir, abs).startsWith('..')) {
      problems.push(`${f.path}: points outside the artifact directory`);
    } else if (!fs.existsSync(abs)) {
      problems.push(`${f.path}: missing`);
    } else if (fs.statSync(abs).size !== f.bytes) {
      problems.push(`${f.path}: ${fs.statSync(abs).size} bytes, manifest says ${f.bytes}`);
    } else if (sha256File(abs) !== f.sha256) {
      problems.push(`${f.path}: sha256 differs from the manifest`);
    }
  }
  for (const rel of listFilesRecursive(dir)) {
    if (rel !== MANIFEST_FILE && !listed.has(rel)) problems.push(`${rel}: present but not in the manifest`);
  }
  return problems;
}
