// The embedded Temporal dev server (`temporal server start-dev`): SQLite persistence in a project-local
// file, Web UI on. Used by `npm start`, `npm run demo` and the tests; nothing here downloads anything.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { SEARCH_ATTRIBUTES } from './search-attributes';
import { findTemporalBinary } from './temporal-cli';

export interface DevServerOptions {
  /** SQLite database file; reusing it keeps workflow histories across restarts. */
  dbFile: string;
  port?: number;
  uiPort?: number;
  namespace?: string;
  /** Where the server's own log goes. */
  logFile?: string;
  /** Extra `--dynamic-config-value KEY=VALUE` settings (e.g. lowered history limits in tests). */
  dynamicConfig?: Record<string, string | number | boolean>;
}

export interface DevServer {
  address: string;
  uiUrl: string;
  process: ChildProcess;
  /** SIGTERM and wait for exit. */
  stop(): Promise<void>;
}

export function temporalBinary(): string {
  const bin = findTemporalBinary();
  if (!bin) {
    throw new Error(
      'Temporal CLI not found. Run `npm install` (it builds or downloads it into .tools/bin), or set FORGE_TEMPORAL_BIN, or put `temporal` on PATH.',
    );
  }
  return bin;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

async function waitForPort(port: number, child: ChildProcess, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`temporal server exited with code ${child.exitCode} during start-up`);
    const ok = await new Promise<boolean>((resolve) => {
      const sock = net.connect(port, '127.0.0.1');
      sock.once('connect', () => {
        sock.destroy();
        resolve(true);
      });
      sock.once('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`temporal server did not listen on port ${port} within ${timeoutMs} ms`);
}

export async function startDevServer(opts: DevServerOptions): Promise<DevServer> {
  const port = opts.port ?? 7233;
  const uiPort = opts.uiPort ?? port + 1000;
  fs.mkdirSync(path.dirname(opts.dbFile), { recursive: true });
  const args = [
    'server',
    'start-dev',
    '--db-filename',
    opts.dbFile,
    '--ip',
    '127.0.0.1',
    '--port',
    String(port),
    '--ui-port',
    String(uiPort),
    '--namespace',
    opts.namespace ?? 'default',
    '--log-level',
    'warn',
    // Forge's search attributes, so runs can be found and filtered in the Web UI from the first start.
    ...SEARCH_ATTRIBUTES.flatMap((a) => ['--search-attribute', `${a.name}=${a.cliType}`]),
    ...Object.entries(opts.dynamicConfig ?? {}).flatMap(([k, v]) => ['--dynamic-config-value', `${k}=${JSON.stringify(v)}`]),
  ];
  const out = opts.logFile ? fs.openSync(opts.logFile, 'a') : 'ignore';
  const child = spawn(temporalBinary(), args, { stdio: ['ignore', out, out] });
  await waitForPort(port, child, 60_000);
  // The frontend accepts connections slightly before the namespace is registered.
  await new Promise((r) => setTimeout(r, 1500));
  return {
    address: `127.0.0.1:${port}`,
    uiUrl: `http://127.0.0.1:${uiPort}`,
    process: child,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
        setTimeout(() => child.kill('SIGKILL'), 10_000).unref();
      }),
  };
}
