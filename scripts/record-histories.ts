// Records the histories of short real runs of both workflows, for the replay tests in test/replay.test.ts:
// <pipeline>-<commit>.binpb (the History protobuf, what the replay reads) and .json (the format `temporal
// workflow show -o json` writes, for reading). Run it from a checkout of the release
// whose workflow code the histories must represent (the previous release), before changing workflow code:
//   npx tsx scripts/record-histories.ts <outDir>
// It starts its own dev server and workers on free ports, in a throw-away directory.
import { execFileSync } from 'node:child_process';
import { temporal } from '@temporalio/proto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort, startDevServer, temporalBinary } from '../common/dev-server';
import { loadEnv } from '../common/env';
import { createForgeWorker } from '../workers/run';
import { agentWorkerSpec } from '../workers/agent';
import { cognateWorkerSpec } from '../workers/cognate';
import { startRun } from '../client/runs';
import { TINY_COGNATE } from '../client/presets';

async function main(): Promise<void> {
  const outDir = path.resolve(process.argv[2] ?? 'test/histories');
  fs.mkdirSync(outDir, { recursive: true });
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'forge-record-'));
  const port = await freePort();
  const server = await startDevServer({
    dbFile: path.join(root, 'temporal.db'),
    port,
    uiPort: await freePort(),
    logFile: path.join(root, 'temporal.log'),
  });
  process.env.TEMPORAL_ADDRESS = server.address;
  process.env.FORGE_DATA_DIR = path.join(root, 'data');
  const env = loadEnv();
  const workers = [await createForgeWorker(agentWorkerSpec(), {}, env), await createForgeWorker(cognateWorkerSpec(), {}, env)];
  const running = workers.map((w) => w.worker.run());
  try {
    const client = workers[0].client;
    const commit = process.env.FORGE_RECORD_COMMIT ?? 'unknown';
    const runs = [
      await startRun(client, 'cognate', {
        sessionId: 'replay-cognate',
        config: { ...TINY_COGNATE, maxSteps: 12 },
        models: [{ name: 'm1' }],
      }),
      await startRun(client, 'agent', {
        sessionId: 'replay-agent',
        config: { maxEpisodes: 64, evalEpisodes: 16, checkpointEvery: 32 },
        agents: [
          { id: 'a1', architecture: 'reactive_agent' },
          { id: 'a2', architecture: 'reactive_agent' },
        ],
      }),
    ];
    for (const r of runs) {
      await r.handle.result();
      const json = execFileSync(
        temporalBinary(),
        ['workflow', 'show', '--workflow-id', r.workflowId, '--output', 'json', '--address', server.address],
        { maxBuffer: 64 << 20 },
      );
      const file = path.join(outDir, `${r.pipeline}-${commit}`);
      fs.writeFileSync(`${file}.json`, json);
      fs.writeFileSync(`${file}.binpb`, temporal.api.history.v1.History.encode(await r.handle.fetchHistory()).finish());
      console.log(`recorded ${r.workflowId} → ${file}.binpb, .json`);
    }
  } finally {
    for (const w of workers) w.worker.shutdown();
    await Promise.allSettled(running);
    for (const w of workers) await w.close();
    await server.stop();
    fs.rmSync(root, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
