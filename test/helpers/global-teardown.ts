import fs from 'node:fs';
import type { DevServer } from '../../common/dev-server';

export default async function globalTeardown(): Promise<void> {
  const server = (globalThis as Record<string, unknown>).__FORGE_SERVER__ as DevServer | undefined;
  await server?.stop();
  // The server may have been restarted by a test under a new pid: stop that one too.
  const pid = Number(process.env.FORGE_TEST_SERVER_PID);
  if (pid && pid !== server?.process.pid) {
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      /* already gone */
    }
  }
  if (process.env.FORGE_TEST_ROOT && !process.env.FORGE_KEEP_TEST_FILES) fs.rmSync(process.env.FORGE_TEST_ROOT, { recursive: true, force: true });
}
