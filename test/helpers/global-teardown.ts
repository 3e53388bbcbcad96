import fs from 'node:fs';
import path from 'node:path';
import type { DevServer } from '../../common/dev-server';

export default async function globalTeardown(): Promise<void> {
  const server = (globalThis as Record<string, unknown>).__FORGE_SERVER__ as DevServer | undefined;
  await server?.stop();
  // A test may have restarted the server under a new pid (it records it in server.pid): stop that one too.
  const pidFile = process.env.FORGE_TEST_ROOT ? path.join(process.env.FORGE_TEST_ROOT, 'server.pid') : '';
  const pid = pidFile && fs.existsSync(pidFile) ? Number(fs.readFileSync(pidFile, 'utf8')) : 0;
  if (pid && pid !== server?.process.pid) {
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      /* already gone */
    }
  }
  if (process.env.FORGE_TEST_ROOT && !process.env.FORGE_KEEP_TEST_FILES)
    fs.rmSync(process.env.FORGE_TEST_ROOT, { recursive: true, force: true });
}
