// A published artifact folder named as a parent for fine-tuning (`initFrom`), checked the same way for both
// pipelines before anything loads it: the folder is under FORGE_DATA_DIR, exists, holds a manifest that every
// file still matches, and its config file parses. What the config must then say is each pipeline's business.
import fs from 'node:fs';
import path from 'node:path';
import type { Pipeline } from '../constants';
import { NonRetryableError } from '../child';
import { assertSafeSegment } from '../paths';
import { MANIFEST_NAME, verifyManifest, type Manifest } from './files';

/**
 * `{sessionId, <unit>}` → $FORGE_DATA_DIR/<pipeline>/<session>/<unit>; `{path}` → that path, refused when it
 * leaves FORGE_DATA_DIR. `unitField` is the name the pipeline's schema gives the unit (model, agent).
 */
export function parentArtifactDir(
  dataDir: string,
  pipeline: Pipeline,
  initFrom: { sessionId: string } | { path: string },
  unit: { field: string; value: string } | null,
): string {
  if ('sessionId' in initFrom) {
    if (!unit) throw new Error('parentArtifactDir: a sessionId reference needs its unit');
    return path.join(
      dataDir,
      pipeline,
      assertSafeSegment(initFrom.sessionId, 'initFrom.sessionId'),
      assertSafeSegment(unit.value, `initFrom.${unit.field}`),
    );
  }
  const root = path.resolve(dataDir);
  const dir = path.resolve(root, initFrom.path);
  if (dir !== root && !dir.startsWith(root + path.sep))
    throw new NonRetryableError(`initFrom.path ${initFrom.path} is not under FORGE_DATA_DIR (${root})`);
  return dir;
}

/**
 * Opens `dir` as a verified artifact: every failure is a NonRetryableError that starts with `what` (how the
 * user named it) and says what is wrong. `kind` names what should be there ("an exported Cognate model").
 */
export function openVerifiedArtifact<C>(
  dir: string,
  what: string,
  kind: string,
  configFile: string,
): { manifest: Manifest; config: C; sha256: (file: string) => string } {
  if (!fs.existsSync(dir)) throw new NonRetryableError(`${what} does not exist (expected ${kind} there)`);
  if (!fs.existsSync(path.join(dir, MANIFEST_NAME))) throw new NonRetryableError(`${what} has no ${MANIFEST_NAME}: not ${kind}`);
  const problems = verifyManifest(dir);
  if (problems.length > 0) throw new NonRetryableError(`${what} does not match its manifest: ${problems.join('; ')}`);
  const manifest = JSON.parse(fs.readFileSync(path.join(dir, MANIFEST_NAME), 'utf8')) as Manifest;
  let config: C;
  try {
    config = JSON.parse(fs.readFileSync(path.join(dir, configFile), 'utf8')) as C;
  } catch (e) {
    throw new NonRetryableError(`${what}: ${configFile} cannot be read (${(e as Error).message})`);
  }
  return {
    manifest,
    config,
    sha256: (file) => {
      const f = manifest.files.find((x) => x.path === file);
      if (!f) throw new NonRetryableError(`${what}: ${file} is not in the manifest`);
      return f.sha256;
    },
  };
}
