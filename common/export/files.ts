// Crash-safe publishing. Readers must never see a half-written file or a half-written artifact set:
// files are written to a temp name and renamed (rename is atomic within one filesystem), artifact
// sets are assembled in a sibling staging dir and renamed into place, and a sha256 manifest lets
// anyone check afterwards that what is on disk is what was published.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

export const MANIFEST_NAME = 'manifest.json';
export const MANIFEST_FORMAT = 'forge-manifest/1';

export interface ManifestFile {
  path: string; // relative to the artifact dir, '/'-separated
  bytes: number;
  sha256: string; // lowercase hex
}

export interface Manifest {
  format: typeof MANIFEST_FORMAT;
  files: ManifestFile[]; // sorted by path; excludes manifest.json itself
  [extra: string]: unknown; // caller-provided fields (run id, config hash, ...)
}

let tempCounter = 0;
function tempNameFor(target: string, kind: string): string {
  return path.join(path.dirname(target), `.${path.basename(target)}.${kind}-${process.pid}-${++tempCounter}`);
}

/** fsync a file or directory by path. */
function fsyncPath(p: string): void {
  const fd = fs.openSync(p, 'r');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/** A rename or create inside `dir` is only durable once the directory itself is fsynced. */
export function fsyncDirectory(dir: string): void {
  fsyncPath(dir);
}

export function sha256File(filePath: string): string {
  const hash = crypto.createHash('sha256');
  const fd = fs.openSync(filePath, 'r');
  try {
    const chunk = Buffer.allocUnsafe(1 << 20); // stream in 1 MiB pieces so large weights don't need RAM
    for (let n; (n = fs.readSync(fd, chunk, 0, chunk.length, null)) > 0;) hash.update(chunk.subarray(0, n));
  } finally {
    fs.closeSync(fd);
  }
  return hash.digest('hex');
}

/** Write to a temp file in the same dir, fsync, rename over `filePath`, fsync the dir. Creates parent dirs. */
export function atomicWriteFile(filePath: string, data: string | Uint8Array): void {
  fs.mkdirSync(path.dirname(filePath), { recursive: true });
  const tmp = tempNameFor(filePath, 'tmp');
  try {
    const fd = fs.openSync(tmp, 'wx');
    try {
      fs.writeFileSync(fd, data);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, filePath);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw e;
  }
  fsyncPath(path.dirname(filePath));
}

export function writeJsonAtomic(filePath: string, value: unknown): void {
  atomicWriteFile(filePath, JSON.stringify(value, null, 2) + '\n');
}

/** A fresh, empty staging dir next to `finalDir` (same filesystem, so publishDirectory's rename is atomic). */
export function stagingDirFor(finalDir: string): string {
  const staging = tempNameFor(path.resolve(finalDir), 'staging');
  fs.mkdirSync(staging, { recursive: true });
  return staging;
}

/** Regular files under `dir`, relative '/'-separated paths, sorted. */
function listFiles(dir: string): string[] {
  const out: string[] = [];
  const walk = (rel: string): void => {
    for (const ent of fs.readdirSync(path.join(dir, rel), { withFileTypes: true })) {
      const r = rel ? `${rel}/${ent.name}` : ent.name;
      if (ent.isDirectory()) walk(r);
      else if (ent.isFile()) out.push(r);
      else throw new Error(`${path.join(dir, r)} is neither a file nor a directory; artifacts hold only regular files`);
    }
  };
  walk('');
  return out.sort();
}

function fsyncTree(dir: string): void {
  for (const rel of listFiles(dir)) fsyncPath(path.join(dir, rel));
  const syncDirs = (d: string): void => {
    for (const ent of fs.readdirSync(d, { withFileTypes: true })) if (ent.isDirectory()) syncDirs(path.join(d, ent.name));
    fsyncPath(d);
  };
  syncDirs(dir);
}

/**
 * Moves a fully written `stagingDir` to `finalDir` with rename, so `finalDir` is either the old complete
 * set or the new complete set. An existing `finalDir` is first renamed aside and deleted after the swap
 * (restored if the swap fails). Linux has no portable atomic directory exchange, so for an instant
 * between the two renames `finalDir` is absent (never partial); after a crash in that instant the
 * previous set survives as `.<name>.old-*` next to it.
 */
export function publishDirectory(stagingDir: string, finalDir: string): void {
  const staging = path.resolve(stagingDir);
  const final = path.resolve(finalDir);
  if (!fs.statSync(staging).isDirectory()) throw new Error(`publishDirectory: ${staging} is not a directory`);
  const parent = path.dirname(final);
  fs.mkdirSync(parent, { recursive: true });
  if (fs.statSync(staging).dev !== fs.statSync(parent).dev) {
    throw new Error(`publishDirectory: ${staging} and ${parent} are on different filesystems; rename would not be atomic`);
  }
  fsyncTree(staging);
  const old = fs.existsSync(final) ? tempNameFor(final, 'old') : null;
  if (old) fs.renameSync(final, old);
  try {
    fs.renameSync(staging, final);
  } catch (e) {
    if (old) fs.renameSync(old, final);
    throw e;
  }
  fsyncPath(parent);
  if (old) fs.rmSync(old, { recursive: true, force: true });
}

/** Hashes every file in `dir` (except manifest.json) and writes manifest.json atomically. */
export function writeManifest(dir: string, extra: Record<string, unknown> = {}): Manifest {
  if ('format' in extra || 'files' in extra) throw new Error('writeManifest: "format" and "files" are reserved manifest keys');
  const files = listFiles(dir)
    .filter((rel) => rel !== MANIFEST_NAME)
    .map((rel) => ({ path: rel, bytes: fs.statSync(path.join(dir, rel)).size, sha256: sha256File(path.join(dir, rel)) }));
  const manifest: Manifest = { format: MANIFEST_FORMAT, ...extra, files };
  writeJsonAtomic(path.join(dir, MANIFEST_NAME), manifest);
  return manifest;
}

/** Every way `dir` differs from its manifest.json; empty means intact. */
export function verifyManifest(dir: string): string[] {
  let manifest: Manifest;
  try {
    manifest = JSON.parse(fs.readFileSync(path.join(dir, MANIFEST_NAME), 'utf8')) as Manifest;
  } catch (e) {
    return [`${MANIFEST_NAME}: cannot be read (${(e as Error).message})`];
  }
  if (manifest.format !== MANIFEST_FORMAT || !Array.isArray(manifest.files)) return [`${MANIFEST_NAME}: not a ${MANIFEST_FORMAT} manifest`];
  const problems: string[] = [];
  const listed = new Set<string>();
  for (const f of manifest.files as unknown[] as Array<Partial<ManifestFile> | null>) {
    // A hand-edited or damaged manifest must come back as a problem, not a TypeError.
    if (f === null || typeof f !== 'object' || typeof f.bytes !== 'number' || typeof f.sha256 !== 'string') {
      problems.push(`${MANIFEST_NAME}: malformed entry ${JSON.stringify(f)}`);
      continue;
    }
    listed.add(String(f.path));
    if (typeof f.path !== 'string' || path.isAbsolute(f.path) || f.path.split('/').includes('..')) {
      problems.push(`${String(f.path)}: unsafe path in manifest`);
      continue;
    }
    const abs = path.join(dir, f.path);
    if (!fs.existsSync(abs)) {
      problems.push(`${f.path}: missing`);
      continue;
    }
    const bytes = fs.statSync(abs).size;
    if (bytes !== f.bytes) problems.push(`${f.path}: size ${bytes} bytes, manifest says ${f.bytes}`);
    else if (sha256File(abs) !== f.sha256) problems.push(`${f.path}: sha256 differs from manifest`);
  }
  for (const rel of listFiles(dir)) if (rel !== MANIFEST_NAME && !listed.has(rel)) problems.push(`${rel}: not listed in manifest`);
  return problems;
}
