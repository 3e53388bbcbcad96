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
import { setupSearchAttributes } from '../client/setup';
import { lastInput, listRuns, queryProgress, runHandle, startRun } from '../client/runs';
import { pipelineInfo } from '../client/pipelines';
import { runDemo } from './demo';
import { watchRuns } from './progress';

const HELP = `forge — Forge Pipelines CLI (Temporal at $TEMPORAL_ADDRESS, default localhost:7233)

  forge start <agent|cognate> [--input run.yaml] [--config config.yaml] [--session ID] [--set key=value ...] [--watch]
              [--init-from <session>/<agent|model> | --init-from <folder under FORGE_DATA_DIR>] [--init-optimizer-state]
        Validate and start a run. --input holds {sessionId, config, agents|models}; --config only the config;
        --set overrides one config field (value parsed as JSON when it can be). --init-from fine-tunes from an
        earlier run's published agent or model (its sizes and tokenizer are reused unless set); agents can also
        take the parent's Adam state (--init-optimizer-state).
  forge watch  <agent|cognate> <sessionId>     live progress bar until the run closes
  forge status <agent|cognate> <sessionId>     status and the progress query
  forge result <agent|cognate> <sessionId>     wait for the result and print it (artifacts included)
  forge cancel <agent|cognate> <sessionId>     cancel; training checkpoints and stops within seconds
  forge resume <agent|cognate> <sessionId>     start the session again with its last input; continues from checkpoints
  forge list   [agent|cognate] [--phase P] [--session S] [--query Q]
        recent runs with phase, step/episode, latest loss or success rate, backend and, for a fine-tuning
        run, its parent (<- session/unit) (search attributes)
  forge sample cognate <sessionId> <model> --prompt "..." [--max-tokens 40] [--temperature 0] [--top-k 0] [--seed 0]
        generate from the exported model (ACT and the LTM as at inference); temperature 0 is greedy
  forge setup                                  register Forge's search attributes on the cluster (idempotent)
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

/** `--init-from a/b` names a session and its agent or model; anything else is an artifact folder. */
function initFromArg(pipeline: Pipeline, value: string, optimizerState: boolean | undefined): Record<string, unknown> {
  const m = /^([A-Za-z0-9][A-Za-z0-9_.-]*)\/([A-Za-z0-9][A-Za-z0-9_.-]*)$/.exec(value);
  const ref: Record<string, unknown> =
    m && !value.startsWith('.') ? { sessionId: m[1], [pipeline === 'agent' ? 'agent' : 'model']: m[2] } : { path: value };
  if (optimizerState !== undefined) {
    if (pipeline !== 'agent')
      throw new Error('--init-optimizer-state applies to agent runs only (a Cognate export holds no optimizer state)');
    ref.optimizerState = optimizerState;
  }
  return ref;
}

function buildInput(
  values: { input?: string; config?: string; session?: string; set?: string[]; 'init-from'?: string; 'init-optimizer-state'?: boolean },
  pipeline?: Pipeline,
): Record<string, unknown> {
  const input: Record<string, unknown> = values.input ? { ...(readStructured(values.input) as object) } : {};
  if (values.config) input.config = readStructured(values.config);
  if (values.session) input.sessionId = values.session;
  if (!input.sessionId)
    input.sessionId = `run-${new Date()
      .toISOString()
      .replace(/[-:T.Z]/g, '')
      .slice(0, 14)}`;
  for (const assignment of values.set ?? []) {
    const eq = assignment.indexOf('=');
    if (eq <= 0) throw new Error(`--set expects key=value (got "${assignment}")`);
    const key = assignment.slice(0, eq).replace(/^config\./, '');
    input.config = { ...(input.config ?? {}), [key]: parseValue(assignment.slice(eq + 1)) };
  }
  if (values['init-from'] && pipeline) input.initFrom = initFromArg(pipeline, values['init-from'], values['init-optimizer-state']);
  else if (values['init-optimizer-state']) throw new Error('--init-optimizer-state needs --init-from');
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
      phase: { type: 'string' },
      prompt: { type: 'string' },
      'max-tokens': { type: 'string' },
      temperature: { type: 'string' },
      'top-k': { type: 'string' },
      seed: { type: 'string' },
      query: { type: 'string' },
      'init-from': { type: 'string' },
      'init-optimizer-state': { type: 'boolean' },
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
  if (command === 'sample') {
    if (rest[0] !== 'cognate') throw new Error('sample works on Cognate models: forge sample cognate <sessionId> <model> --prompt "..."');
    const [, sessionId, model] = rest;
    if (!sessionId || !model) throw new Error('sample needs a sessionId and a model name');
    if (values.prompt === undefined) throw new Error('sample needs --prompt "..."');
    const num = (flag: string, raw: string | undefined, integer: boolean): number | undefined => {
      if (raw === undefined) return undefined;
      const n = Number(raw);
      if (!Number.isFinite(n) || (integer && !Number.isInteger(n)))
        throw new Error(`--${flag} must be ${integer ? 'an integer' : 'a number'} (got "${raw}")`);
      return n;
    };
    const dir = path.join(sessionDir(loadEnv().dataDir, 'cognate', sessionId), model);
    if (!fs.existsSync(path.join(dir, 'manifest.json')))
      throw new Error(`no exported model at ${dir} (has session "${sessionId}" completed, and is FORGE_DATA_DIR the workers'?)`);
    const { initBackend } = await import('../common/backend');
    const { sampleFromExport } = await import('../activities/cognate/engine/sample');
    await initBackend();
    const sample = sampleFromExport(dir, values.prompt, {
      maxNewTokens: num('max-tokens', values['max-tokens'], true),
      temperature: num('temperature', values.temperature, false),
      topK: num('top-k', values['top-k'], true),
      seed: num('seed', values.seed, true),
    });
    process.stdout.write(`${sample.prompt}${sample.text}\n`);
    console.error(
      `[forge] ${sample.tokens.length} tokens, mean ACT depth ${sample.meanDepth.toFixed(2)} blocks${sample.stoppedAtEos ? ', stopped at end-of-text' : ''}`,
    );
    return 0;
  }
  if (command === 'report') {
    printReport(pipelineArg(rest[0]), requireSession(rest[1]));
    return 0;
  }
  if (command === 'validate') {
    const pipeline = pipelineArg(rest[0]);
    console.log(JSON.stringify(parseOrThrow(pipelineInfo(pipeline).schema, buildInput(values, pipeline)), null, 2));
    return 0;
  }

  const client = await connectClient();
  try {
    switch (command) {
      case 'start': {
        const pipeline = pipelineArg(rest[0]);
        const run = await startRun(client, pipeline, buildInput(values, pipeline));
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
        console.log(
          JSON.stringify(
            {
              workflowId: desc.workflowId,
              runId: desc.runId,
              status: desc.status.name,
              startTime: desc.startTime,
              closeTime: desc.closeTime,
              progress,
            },
            null,
            2,
          ),
        );
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
        const runs = await listRuns(client, {
          pipeline: rest[0] ? pipelineArg(rest[0]) : undefined,
          phase: values.phase,
          session: values.session,
          query: values.query,
        });
        for (const r of runs) {
          const metric =
            r.loss !== undefined ? `loss ${r.loss.toFixed(3)}` : r.successRate !== undefined ? `success ${r.successRate.toFixed(2)}` : '';
          const cols = [
            r.status.padEnd(10),
            r.workflowId.padEnd(36),
            (r.phase ?? '').padEnd(12),
            r.step !== undefined ? `step ${r.step}`.padEnd(11) : ''.padEnd(11),
            metric.padEnd(14),
            r.startTime.toISOString(),
          ];
          if (r.backend) cols.push(r.backend);
          if (r.parent) cols.push(`<- ${r.parent}`);
          console.log(cols.join(' '));
        }
        return 0;
      }
      case 'setup': {
        const env = loadEnv();
        const r = await setupSearchAttributes(client, env.temporalNamespace);
        console.log(
          `search attributes on ${env.temporalAddress} namespace "${env.temporalNamespace}": added [${r.added.join(', ')}], already present [${r.present.join(', ')}]`,
        );
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
