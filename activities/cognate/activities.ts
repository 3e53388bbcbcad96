// Cognate pretraining activities. Each one supervises a compute child process (common/child.ts) so the
// worker's event loop stays free for heartbeats, queries and cancellation.
import fs from 'node:fs';
import path from 'node:path';
import { Context } from '@temporalio/activity';
import type { Client } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { assertWritableDir, checkpointDir, sessionDir } from '../../common/paths';
import { FAILURE_TYPES } from '../../common/constants';
import { childModulePath } from '../../common/child';
import { writeRunReport } from '../../common/report/html';
import { tensorboardDir } from '../../common/tensorboard';
import { superviseChild, throttledSignal } from '../../common/supervise';
import { MODEL_PROGRESS_SIGNAL, type ModelProgressUpdate } from './config';
import { createCognateInitFromActivities } from './check-init-from';
import type { CognateParentRef } from './engine/init-from';
import type { CognateConfig, CognateModelSpec } from './config';
import type { PrepareEvent, PrepareJob, PrepareResult } from './data';
import type { TrainEvent, TrainJob, TrainSummary } from './engine/trainer';
import type { ExportJob, ExportResult } from './engine/artifacts';
import { cognateReportUnit } from './engine/report';
import { cognateTelemetry } from './telemetry';

export interface TrainedModel {
  model: string;
  focus?: string;
  seed: number;
  checkpointDir: string;
  /** Full training summary (loss curve, validation, ACT, LTM, resumes) as JSON on disk. */
  summaryPath: string;
  finalStep: number;
  finalLoss: number | null;
  validationLoss: number | null;
  resumedFromStep: number;
  stopped: boolean;
  /** Fine-tuning runs: validation loss of the parent on this run's datasets before the first step (validationLoss is after). */
  validationBefore?: number | null;
}


export function createCognateActivities(deps: { client: Client; dataDir: string }) {
  const { client, dataDir } = deps;

  return {
    ...createCognateInitFromActivities(deps),
    async prepareDatasets(input: { sessionId: string; config: CognateConfig }): Promise<PrepareResult> {
      try {
        assertWritableDir(dataDir, 'FORGE_DATA_DIR');
      } catch (err) {
        throw ApplicationFailure.nonRetryable((err as Error).message, FAILURE_TYPES.invalidConfig);
      }
      let last: PrepareEvent | undefined;
      return superviseChild<PrepareJob, PrepareEvent, PrepareResult>({
        modulePath: childModulePath(path.join(__dirname, 'data'), 'prepare'),
        input: { config: input.config, dataDir, hubEndpoint: process.env.HF_ENDPOINT },
        onEvent: (e) => (last = e),
        details: () => last ?? { stage: 'starting' },
        nonRetryableType: FAILURE_TYPES.invalidDataset,
      });
    },

    async trainModels(input: { sessionId: string; config: CognateConfig; model: CognateModelSpec; datasetDir: string; initFrom?: CognateParentRef }): Promise<TrainedModel> {
      const { sessionId, config, model, datasetDir } = input;
      const ctx = Context.current();
      const ckptDir = checkpointDir(dataDir, 'cognate', sessionId, model.name);
      fs.mkdirSync(ckptDir, { recursive: true });
      const logPath = path.join(ckptDir, 'training_log.jsonl');
      const seed = config.seed + (model.seedOffset ?? 0);
      const signal = throttledSignal<ModelProgressUpdate>(client, MODEL_PROGRESS_SIGNAL, 2000);
      const live: ModelProgressUpdate = { model: model.name, phase: 'training', step: 0, totalSteps: config.maxSteps, loss: null, learningRate: null, message: 'starting' };
      let checkpoint: string | null = null;
      let resumedFromStep = 0;
      const telemetry = cognateTelemetry({ dataDir, sessionId, model: model.name, warn: (m) => ctx.log.warn(m) });

      const onEvent = (event: TrainEvent) => {
        fs.appendFileSync(logPath, `${JSON.stringify({ ...event, attempt: ctx.info.attempt, time: new Date().toISOString() })}\n`);
        telemetry.onEvent(event);
        switch (event.kind) {
          case 'step':
            Object.assign(live, { step: event.step, loss: event.loss, learningRate: event.learningRate, tokensPerSecond: event.tokensPerSecond, message: `step ${event.step}/${config.maxSteps} loss ${event.loss.toFixed(4)}` });
            signal.send({ ...live });
            break;
          case 'validation':
            Object.assign(live, { valLoss: event.loss, message: `validation at step ${event.step}: loss ${event.loss.toFixed(4)}, ppl ${event.perplexity.toFixed(1)}` });
            signal.send({ ...live }, true);
            break;
          case 'checkpoint':
            checkpoint = event.path;
            break;
          case 'resumed':
            resumedFromStep = event.fromStep;
            Object.assign(live, { step: event.fromStep, resumedFromStep: event.fromStep, message: `resumed from step ${event.fromStep} (attempt ${ctx.info.attempt})` });
            signal.send({ ...live }, true);
            break;
        }
      };

      const job: TrainJob = { config, seed, datasetDir, checkpointDir: ckptDir, modelName: model.name, ...(input.initFrom ? { initFrom: input.initFrom } : {}) };
      const summary = await superviseChild<TrainJob, TrainEvent, TrainSummary>({
        modulePath: childModulePath(path.join(__dirname, 'engine'), 'train'),
        input: job,
        onEvent,
        details: () => ({ step: live.step, checkpoint }),
      }).finally(() => telemetry.close());
      signal.send({ ...live, message: `finished at step ${summary.finalStep}` }, true);
      await signal.flush();

      const summaryPath = path.join(ckptDir, 'summary.json');
      fs.writeFileSync(summaryPath, JSON.stringify({ ...summary, model: model.name, focus: model.focus, seed }, null, 2));
      return {
        model: model.name,
        focus: model.focus,
        seed,
        checkpointDir: ckptDir,
        summaryPath,
        finalStep: summary.finalStep,
        finalLoss: summary.finalLoss,
        validationLoss: summary.validation?.loss ?? null,
        resumedFromStep,
        stopped: summary.stopped,
        ...(summary.initFrom ? { validationBefore: summary.initFrom.validationBefore.loss } : {}),
      };
    },

    async createModelArtifacts(input: { sessionId: string; config: CognateConfig; datasetDir: string; models: TrainedModel[] }): Promise<{ files: ExportResult['files']; report: string }> {
      const files: ExportResult['files'] = [];
      for (const m of input.models) {
        const job: ExportJob = {
          model: m.model,
          checkpointDir: m.checkpointDir,
          summaryPath: m.summaryPath,
          logPath: path.join(m.checkpointDir, 'training_log.jsonl'),
          datasetDir: input.datasetDir,
          outDir: path.join(sessionDir(dataDir, 'cognate', input.sessionId), m.model),
          config: input.config,
        };
        const result = await superviseChild<ExportJob, { stage: string }, ExportResult>({
          modulePath: childModulePath(path.join(__dirname, 'engine'), 'export'),
          input: job,
          onEvent: () => undefined,
          details: () => ({ model: m.model }),
        });
        files.push(...result.files);
      }
      // One page for the run: every model's curves and final metrics, and the config (forge report prints its path).
      const dir = sessionDir(dataDir, 'cognate', input.sessionId);
      const report = writeRunReport(dir, {
        title: `Cognate pretraining — ${input.sessionId}`,
        pipeline: 'cognate',
        sessionId: input.sessionId,
        units: input.models.map((m) => cognateReportUnit(path.join(dir, m.model))),
        config: input.config,
        notes: [`TensorBoard: tensorboard --logdir ${tensorboardDir(dataDir, 'cognate', input.sessionId)}`],
      });
      files.push({ ...report, model: '(run report)' });
      return { files, report: report.path };
    },
  };
}
