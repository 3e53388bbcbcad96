// `forge` — the project CLI on @temporalio/client. Run `forge help` for the commands.
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import YAML from 'yaml';
import type { Pipeline } from '../common/constants';
import { startDevServer } from '../common/dev-server';
import { loadEnv } from '../common/env';
import { sessionDir } from '../common/paths';
import { REPORT_FILE } from '../common/report/html';
import { tensorboardDir } from '../common/tensorboard';
import { InvalidInputError, parseOrThrow } from '../common/validation';
import { connectClient } from '../common/temporal';
import { lastInput, listRuns, queryProgress, runHandle, startRun } from '../client/runs';
import { pipelineInfo } from '../client/pipelines';
import { runDemo } from './demo';
import { watchRuns } from './progress';

const HELP = `forge — Forge Pipelines CLI (Temporal at $TEMPORAL_ADDRESS, default localhost:7233)

  forge start <agent|cognate> [--input run.yaml] [--config config.yaml] [--session ID] [--set key=value ...] [--watch]
        Validate and start a run. --input holds {sessionId, config, agents|models}; --config only the config;
        --set overrides one config field (value parsed as JSON when it can be).
  forge watch  <agent|cognate> <sessionId>     live progress bar until the run closes
  forge status <agent|cognate> <sessionId>     status and the progress query
  forge result <agent|cognate> <sessionId>     wait for the result and print it (artifacts included)
  forge cancel <agent|cognate> <sessionId>     cancel; training checkpoints and stops within seconds
  forge resume <agent|cognate> <sessionId>     start the session again with its last input; continues from checkpoints
  forge list   [agent|cognate]                 recent runs
  forge report <agent|cognate> <sessionId>     where the run's report.html, curves and TensorBoard logs are (opens nothing)
  forge validate <agent|cognate> [--input ...] [--config ...] [--set ...]   check input without starting
  forge server                                 run the embedded dev server (SQLite in .forge/) with its Web UI
  forge up                                     dev server + workers + demo runs, then keep serving (npm start)
  forge demo                                   the same demo, exit 0 when every run completed (npm run demo)
`;

function readStructured(file: string): unknown {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new Error(`cannot read ${file}: ${(err as Error).message}`);
  }
  try {
    return /\.ya?ml$/i.test(file) ? YAML.parse(text) : JSON.parse(text);
  } catch (err) {
    throw new Error(`${file} is not valid ${/\.ya?ml$/i.test(file) ? 'YAML' : 'JSON'}: ${(err as Error).message}`);
  }
}

function parseValue(raw: string): unknown {
  try {
    return JSON.parse(raw);
  } catch {
    return raw;
  }
}

function buildInput(values: { input?: string; config?: string; session?: string; set?: string[] }): Record<string, unknown> {
  const input: Record<string, unknown> = values.input ? { ...(readStructured(values.input) as object) } : {};
  if (values.config) input.config = readStructured(values.config);
  if (values.session) input.sessionId = values.session;
  if (!input.sessionId) input.sessionId = `run-${new Date().toISOString().replace(/[-:T.Z]/g, '').slice(0, 14)}`;
  for (const assignment of values.set ?? []) {
    const eq = assignment.indexOf('=');
    if (eq <= 0) throw new Error(`--set expects key=value (got "${assignment}")`);
    const key = assignment.slice(0, eq).replace(/^config\./, '');
    input.config = { ...((input.config as object) ?? {}), [key]: parseValue(assignment.slice(eq + 1)) };
  }
  return input;
}

function pipelineArg(name: string | undefined): Pipeline {
  if (!name) throw new Error('name a pipeline: agent or cognate');
  return pipelineInfo(name).pipeline;
}

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      input: { type: 'string' },
      config: { type: 'string' },
      session: { type: 'string' },
      set: { type: 'string', multiple: true },
      watch: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  const [command, ...rest] = positionals;
  if (!command || command === 'help' || values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  if (command === 'up') return runDemo({ keepServing: true });
  if (command === 'demo') return runDemo({ keepServing: false });
  if (command === 'server') {
    const server = await startDevServer({ dbFile: path.join(process.cwd(), '.forge', 'temporal.db') });
    console.log(`Temporal dev server at ${server.address}, Web UI ${server.uiUrl}. Ctrl-C to stop.`);
    await new Promise<void>((resolve) => process.once('SIGINT', () => resolve()));
    await server.stop();
    return 0;
  }
  if (command === 'report') {
    printReport(pipelineArg(rest[0]), requireSession(rest[1]));
    return 0;
  }
  if (command === 'validate') {
    const pipeline = pipelineArg(rest[0]);
    console.log(JSON.stringify(parseOrThrow(pipelineInfo(pipeline).schema, buildInput(values)), null, 2));
    return 0;
  }

  const client = await connectClient();
  try {
    switch (command) {
      case 'start': {
        const pipeline = pipelineArg(rest[0]);
        const run = await startRun(client, pipeline, buildInput(values));
        console.log(JSON.stringify({ workflowId: run.workflowId, runId: run.runId, sessionId: run.sessionId }));
        if (values.watch) await watchRuns([{ label: pipeline, handle: run.handle }]);
        return 0;
      }
      case 'resume': {
        const pipeline = pipelineArg(rest[0]);
        const sessionId = rest[1];
        if (!sessionId) throw new Error('resume needs a sessionId');
        const desc = await runHandle(client, pipeline, sessionId).describe();
        if (desc.status.name === 'RUNNING') throw new Error(`session "${sessionId}" is still running (${desc.workflowId})`);
        const run = await startRun(client, pipeline, await lastInput(client, pipeline, sessionId));
        console.log(JSON.stringify({ workflowId: run.workflowId, runId: run.runId, resumedFromStatus: desc.status.name }));
        if (values.watch) await watchRuns([{ label: pipeline, handle: run.handle }]);
        return 0;
      }
      case 'watch': {
        const pipeline = pipelineArg(rest[0]);
        await watchRuns([{ label: pipeline, handle: runHandle(client, pipeline, requireSession(rest[1])) }]);
        return 0;
      }
      case 'status': {
        const pipeline = pipelineArg(rest[0]);
        const handle = runHandle(client, pipeline, requireSession(rest[1]));
        const desc = await handle.describe();
        const progress = await queryProgress(handle).catch((err: Error) => ({ unavailable: err.message }));
        console.log(JSON.stringify({ workflowId: desc.workflowId, runId: desc.runId, status: desc.status.name, startTime: desc.startTime, closeTime: desc.closeTime, progress }, null, 2));
        return 0;
      }
      case 'result': {
        const pipeline = pipelineArg(rest[0]);
        console.log(JSON.stringify(await runHandle(client, pipeline, requireSession(rest[1])).result(), null, 2));
        return 0;
      }
      case 'cancel': {
        const pipeline = pipelineArg(rest[0]);
        await runHandle(client, pipeline, requireSession(rest[1])).cancel();
        console.log('cancellation requested');
        return 0;
      }
      case 'list': {
        const runs = await listRuns(client, rest[0] ? pipelineArg(rest[0]) : undefined);
        for (const r of runs) console.log(`${r.status.padEnd(11)} ${r.type.padEnd(28)} ${r.workflowId}  ${r.startTime.toISOString()}`);
        return 0;
      }
      default:
        throw new Error(`unknown command "${command}"; see \`forge help\``);
    }
  } finally {
    await client.connection.close();
  }
}

/** Paths only, from FORGE_DATA_DIR: works without a Temporal server, on any machine that shares the data dir. */
function printReport(pipeline: Pipeline, sessionId: string): void {
  const { dataDir } = loadEnv();
  const dir = sessionDir(dataDir, pipeline, sessionId);
  const report = path.join(dir, REPORT_FILE);
  const tb = tensorboardDir(dataDir, pipeline, sessionId);
  if (!fs.existsSync(report)) {
    const hint = fs.existsSync(tb) ? `; the run has TensorBoard logs so far: tensorboard --logdir ${tb}` : '';
    throw new Error(`no report for ${pipeline} session "${sessionId}" at ${report} (it is written when the run's artifacts are)${hint}`);
  }
  console.log(report);
  for (const unit of fs.readdirSync(dir, { withFileTypes: true })) {
    const charts = path.join(dir, unit.name, 'charts');
    if (unit.isDirectory() && fs.existsSync(charts)) console.log(`  ${unit.name}: ${charts}`);
  }
  if (fs.existsSync(tb)) console.log(`  tensorboard --logdir ${tb}`);
}

function requireSession(id: string | undefined): string {
  if (!id) throw new Error('name the sessionId');
  return id;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: Error) => {
    console.error(`forge: ${err.message}`);
    process.exit(err instanceof InvalidInputError ? 2 : 1);
  },
);
