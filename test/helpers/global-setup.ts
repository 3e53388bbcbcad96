// One real Temporal dev server (the CLI built at `npm install`) for the whole test run, on free ports with
// a throw-away SQLite file. Tests read TEMPORAL_ADDRESS and FORGE_DATA_DIR from the environment.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort, startDevServer, type DevServer } from '../../common/dev-server';

export default async function globalSetup(): Promise<void> {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'forge-test-'));
  const port = await freePort();
  const uiPort = await freePort();
  const server: DevServer = await startDevServer({
    dbFile: path.join(root, 'temporal.db'),
    port,
    uiPort,
    logFile: path.join(root, 'temporal.log'),
  });
  process.env.TEMPORAL_ADDRESS = server.address;
  process.env.TEMPORAL_NAMESPACE = 'default';
  process.env.FORGE_DATA_DIR = path.join(root, 'data');
  process.env.FORGE_TEST_ROOT = root;
  process.env.FORGE_TEST_SERVER_PORT = String(port);
  process.env.FORGE_TEST_SERVER_UI_PORT = String(uiPort);
  process.env.FORGE_TEST_SERVER_PID = String(server.process.pid);
  (globalThis as Record<string, unknown>).__FORGE_SERVER__ = server;
}
